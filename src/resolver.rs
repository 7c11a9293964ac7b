//! Name resolution with the nameservers of `/etc/resolv.conf` (hickory-resolver).

use std::net::IpAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;

use crate::error::{Error, Result};

/// A caching stub resolver configured from `/etc/resolv.conf`.
#[derive(Clone)]
pub struct Resolver(TokioResolver);

impl Resolver {
    /// Reads `/etc/resolv.conf`; asks for A and AAAA records, A first.
    pub fn from_system() -> Result<Self> {
        let unreadable =
            |e: hickory_resolver::net::NetError| Error::State(format!("/etc/resolv.conf: {e}"));
        let mut builder = TokioResolver::builder_tokio().map_err(unreadable)?;
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        builder.build().map(Resolver).map_err(unreadable)
    }

    /// Every address of `name`; an error says why there is none.
    pub async fn lookup(&self, name: &str) -> std::result::Result<Vec<IpAddr>, String> {
        match self.0.lookup_ip(name).await {
            Ok(found) => {
                let addresses: Vec<IpAddr> = found.iter().collect();
                if addresses.is_empty() {
                    Err(format!("{name} has no address"))
                } else {
                    Ok(addresses)
                }
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {
                Err(format!("{name} has no address"))
            }
            Err(e) => Err(format!("resolving {name}: {e}")),
        }
    }
}
