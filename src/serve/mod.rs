//! What the proxies share: [`process`] signals, listeners, the connection cap and the
//! accept loop; [`relay`] the splice relay between two connections; [`resolver`] the
//! resolv.conf resolver.

pub mod process;
pub mod relay;
pub mod resolver;
