//! Name resolution with the nameservers of `/etc/resolv.conf` (hickory-resolver).
//!
//! A name means exactly that name (SPEC section 4): every name is looked up as
//! absolute. The resolver is built without the search list and domain of
//! `/etc/resolv.conf`, and each name is asked for fully qualified, so neither a
//! Kubernetes `search ns.svc.cluster.local ...` line nor `ndots` can turn an allowed
//! `github.com` into the Service `github` of a namespace `com`.

use std::net::IpAddr;
use std::time::Instant;

use hickory_resolver::config::ResolverConfig;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{TokioResolver, system_conf};

use crate::error::{Error, Result};

/// Which address records to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Families {
    /// A and AAAA.
    Both,
    /// A only.
    V4,
    /// AAAA only.
    V6,
}

impl Families {
    /// `"IPv4 "`, `"IPv6 "` or nothing (both), to put before "address" in a message.
    pub fn qualifier(self) -> &'static str {
        match self {
            Families::Both => "",
            Families::V4 => "IPv4 ",
            Families::V6 => "IPv6 ",
        }
    }

    /// The record types asked for.
    fn record_types(self) -> &'static [RecordType] {
        match self {
            Families::Both => &[RecordType::A, RecordType::AAAA],
            Families::V4 => &[RecordType::A],
            Families::V6 => &[RecordType::AAAA],
        }
    }
}

/// The addresses of a name and how long they may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    /// Every address found (IPv4 first), never empty.
    pub addresses: Vec<IpAddr>,
    /// When the first of the records' TTLs runs out.
    pub valid_until: Instant,
}

/// A caching stub resolver using the nameservers of `/etc/resolv.conf`, never its
/// search list.
#[derive(Clone)]
pub struct Resolver(TokioResolver);

impl Resolver {
    /// Reads `/etc/resolv.conf`: its nameservers and options, without its `search` and
    /// `domain` lines.
    pub fn from_system() -> Result<Self> {
        let unreadable =
            |e: hickory_resolver::net::NetError| Error::State(format!("/etc/resolv.conf: {e}"));
        let (config, mut options) = system_conf::read_system_conf().map_err(unreadable)?;
        let (_, _, name_servers) = config.into_parts();
        options.ndots = 0;
        let config = ResolverConfig::from_parts(None, Vec::new(), name_servers);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = options;
        builder.build().map(Resolver).map_err(unreadable)
    }

    /// Every address of `name` of `families`, looked up as an absolute name; an error
    /// says why there is none.
    pub async fn lookup(
        &self,
        name: &str,
        families: Families,
    ) -> std::result::Result<Addresses, String> {
        let absolute = absolute(name)?;
        let lookups = families.record_types().iter().map(|record_type| {
            let absolute = absolute.clone();
            async move { self.0.lookup(absolute, *record_type).await }
        });
        let mut addresses = Vec::new();
        let mut valid_until: Option<Instant> = None;
        let mut failure = None;
        for found in futures::future::join_all(lookups).await {
            match found {
                Ok(found) => {
                    let before = addresses.len();
                    addresses.extend(found.answers().iter().filter_map(|r| r.data.ip_addr()));
                    if addresses.len() > before {
                        let until = found.valid_until();
                        valid_until = Some(valid_until.map_or(until, |v| v.min(until)));
                    }
                }
                Err(e) if e.is_no_records_found() || e.is_nx_domain() => {}
                Err(e) => {
                    failure.get_or_insert(format!("resolving {name}: {e}"));
                }
            }
        }
        match valid_until {
            Some(valid_until) if !addresses.is_empty() => Ok(Addresses {
                addresses,
                valid_until,
            }),
            _ => {
                Err(failure
                    .unwrap_or_else(|| format!("{name} has no {}address", families.qualifier())))
            }
        }
    }
}

/// `name` as an absolute (fully qualified) DNS name: one trailing dot is allowed and
/// implied.
pub fn absolute(name: &str) -> std::result::Result<Name, String> {
    let text = name.strip_suffix('.').unwrap_or(name);
    let mut parsed =
        Name::from_ascii(text).map_err(|e| format!("{name:?} is not a host name: {e}"))?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_looked_up_as_absolute_with_or_without_the_trailing_dot() {
        for written in ["allowed.example", "allowed.example.", "Allowed.Example"] {
            let name = absolute(written).unwrap();
            assert!(name.is_fqdn(), "{written}");
            assert_eq!(name.to_ascii().to_ascii_lowercase(), "allowed.example.");
        }
        assert!(absolute("bad..name").is_err());
    }

    #[test]
    fn families_ask_for_their_record_types_only() {
        assert_eq!(
            Families::Both.record_types(),
            [RecordType::A, RecordType::AAAA]
        );
        assert_eq!(Families::V4.record_types(), [RecordType::A]);
        assert_eq!(Families::V6.record_types(), [RecordType::AAAA]);
    }
}
