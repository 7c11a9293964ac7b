//! Name resolution with the nameservers of `/etc/resolv.conf` (hickory-resolver).

use std::net::IpAddr;
use std::time::Instant;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;

use crate::error::{Error, Result};

/// Which address records to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Families {
    /// A and AAAA, A first: every address, for the HTTP proxy's checks.
    Both,
    /// A; AAAA only when there is no A record (the DNS proxy's "IPv4 preferred").
    Ipv4Preferred,
}

/// The addresses of a name and how long they may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    /// Every address found, never empty.
    pub addresses: Vec<IpAddr>,
    /// When the records' TTL runs out.
    pub valid_until: Instant,
}

/// A caching stub resolver configured from `/etc/resolv.conf`.
#[derive(Clone)]
pub struct Resolver(TokioResolver);

impl Resolver {
    /// Reads `/etc/resolv.conf`.
    pub fn from_system(families: Families) -> Result<Self> {
        let unreadable =
            |e: hickory_resolver::net::NetError| Error::State(format!("/etc/resolv.conf: {e}"));
        let mut builder = TokioResolver::builder_tokio().map_err(unreadable)?;
        builder.options_mut().ip_strategy = match families {
            Families::Both => LookupIpStrategy::Ipv4AndIpv6,
            Families::Ipv4Preferred => LookupIpStrategy::Ipv4thenIpv6,
        };
        builder.build().map(Resolver).map_err(unreadable)
    }

    /// Every address of `name`; an error says why there is none.
    pub async fn lookup(&self, name: &str) -> std::result::Result<Addresses, String> {
        match self.0.lookup_ip(name).await {
            Ok(found) => {
                let addresses: Vec<IpAddr> = found.iter().collect();
                if addresses.is_empty() {
                    Err(format!("{name} has no address"))
                } else {
                    Ok(Addresses {
                        addresses,
                        valid_until: found.valid_until(),
                    })
                }
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {
                Err(format!("{name} has no address"))
            }
            Err(e) => Err(format!("resolving {name}: {e}")),
        }
    }
}
