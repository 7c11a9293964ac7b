//! What the proxies share: [`shutdown`] the signal notice; [`listener`] listening and
//! the accept loop; [`limits`] the open-file limit, the connection cap and the drain;
//! [`relay`] the splice relay between two connections; [`access_log`] the one log line
//! per connection; [`resolver`] the resolv.conf resolver (absolute names only);
//! [`workers`] a worker thread per core, each with its own runtime and listening
//! sockets; [`egress`] each family's egress address and dialing through it;
//! [`pod_addresses`] the pod's addresses, kept current; [`list_watch`] a list file's
//! changes; [`off_runtime`] work that must not hold a runtime thread; [`screen`] what a
//! DNS answer may point at (the DNS proxy's backends and the redirect's name entries).

pub mod access_log;
pub mod egress;
pub mod limits;
pub mod list_watch;
pub mod listener;
pub mod off_runtime;
pub mod pod_addresses;
pub mod relay;
pub mod resolver;
pub mod screen;
pub mod shutdown;
pub mod workers;
