//! What the proxies share: [`shutdown`] the signal notice; [`listener`] listening and
//! the accept loop; [`limits`] the open-file limit, the connection cap and the drain;
//! [`relay`] the splice relay between two connections; [`access_log`] the one log line
//! per connection; [`resolver`] the resolv.conf resolver.

pub mod access_log;
pub mod limits;
pub mod listener;
pub mod relay;
pub mod resolver;
pub mod shutdown;
