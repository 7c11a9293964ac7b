//! Parsing of redirect lists: `EGRESS_DESTINATION` (SPEC section 3) and the CNI
//! plugin's `destinations` (SPEC section 7).
//!
//! One entry a line (or a JSON array element): `PORT PROTO IP` or `PORT PROTO IP
//! DESTPORT`, then `IP` (the fallback: one a family, after every port entry); IPv4 or
//! IPv6 (without brackets), each local port once a family. The variable skips blank lines and
//! `#` comments and takes exactly `tcp` and `udp`; the CNI dialect also takes what
//! OpenShift's cluster network operator renders: protocols in any case, `sctp`, and
//! addresses with a `/prefix` (the address is meant, the prefix is ignored).

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use crate::config::address::{ipv4_in_ipv6, is_unicast};
use crate::config::family::Family;
use crate::config::lines;
use crate::config::names;
use crate::error::{Error, Result};

/// A transport protocol a port redirect applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP (CNI `destinations` only).
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// One validated entry of the redirect list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Traffic to local `port`/`protocol` goes to `address`, on `target_port` when given.
    Port {
        /// Local port the traffic arrives for.
        port: u16,
        /// Protocol the redirect applies to.
        protocol: Protocol,
        /// Outside server address.
        address: IpAddr,
        /// Port on the outside server; `None` keeps the local port.
        target_port: Option<u16>,
    },
    /// Everything of its family not matched earlier goes to this address, same port
    /// and protocol.
    Fallback(IpAddr),
}

impl Destination {
    /// The outside server's address.
    pub fn address(&self) -> IpAddr {
        match self {
            Destination::Port { address, .. } | Destination::Fallback(address) => *address,
        }
    }

    /// The family the entry redirects.
    pub fn family(&self) -> Family {
        Family::of(self.address())
    }
}

impl fmt::Display for Destination {
    /// The entry as a line of `EGRESS_DESTINATION`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Port {
                port,
                protocol,
                address,
                target_port: None,
            } => {
                write!(f, "{port} {protocol} {address}")
            }
            Destination::Port {
                port,
                protocol,
                address,
                target_port: Some(target),
            } => {
                write!(f, "{port} {protocol} {address} {target}")
            }
            Destination::Fallback(address) => write!(f, "{address}"),
        }
    }
}

/// The first entry whose family `has_source` refuses, with its line (or array
/// element) as written in `lines`, the list the entries were parsed from.
pub fn first_without_source<'a>(
    lines: impl Iterator<Item = &'a str>,
    entries: &[Destination],
    has_source: impl Fn(Family) -> bool,
) -> Option<(&'a str, Family)> {
    lines
        .zip(entries)
        .map(|(line, entry)| (line, entry.family()))
        .find(|(_, family)| !has_source(*family))
}

/// Whether traffic of `family` is forwarded when `entries` are redirected: IPv4 as it
/// always was (every redirect mode), IPv6 only when IPv6 clients are redirected
/// (forwarding makes the pod a router on every interface).
pub fn forwards(family: Family, entries: &[Destination]) -> bool {
    family == Family::V4 || entries.iter().any(|e| e.family() == family)
}

/// Where a list comes from: what its entries may hold and how errors name them.
#[derive(Clone, Copy)]
struct Dialect {
    /// The variable or field, first in every error.
    field: &'static str,
    /// What one entry is called in errors.
    entry: &'static str,
    /// Protocols in any case, `sctp`, and `/prefix` after addresses.
    operator_forms: bool,
}

const ENV: Dialect = Dialect {
    field: "EGRESS_DESTINATION",
    entry: "line",
    operator_forms: false,
};

const CNI: Dialect = Dialect {
    field: "destinations",
    entry: "entry",
    operator_forms: true,
};

/// Parses the whole `EGRESS_DESTINATION` value.
pub fn parse_destinations(text: &str) -> Result<Vec<Destination>> {
    let entries = parse_entries(lines::entries(text), ENV)?;
    if entries.is_empty() {
        return Err(Error::config(
            ENV.field,
            format!("no destination in {text:?}"),
        ));
    }
    Ok(entries)
}

/// Parses the CNI `destinations` array; errors name the field `destinations` and
/// quote the entry. An empty array is an empty list (no redirect).
pub fn parse_cni_destinations(entries: &[String]) -> Result<Vec<Destination>> {
    parse_entries(entries.iter().map(|entry| entry.trim()), CNI)
}

fn parse_entries<'a>(
    lines: impl Iterator<Item = &'a str>,
    dialect: Dialect,
) -> Result<Vec<Destination>> {
    let mut entries: Vec<Destination> = Vec::new();
    let mut seen_ports = HashSet::new();
    for line in lines {
        let fail = |reason: &str| {
            Error::config(
                dialect.field,
                format!("{} {line:?}: {reason}", dialect.entry),
            )
        };
        let entry = parse_line(line, dialect).map_err(|reason| fail(&reason))?;
        let family = entry.family();
        let fallback_of = |family: Family| {
            entries
                .iter()
                .any(|e| matches!(e, Destination::Fallback(_)) && e.family() == family)
        };
        // A list of one family reads as it did before IPv6 lines existed.
        let one_family = entries.iter().all(|e| e.family() == family);
        let after_fallback = match entry {
            Destination::Port { .. } => fallback_of(Family::V4) || fallback_of(Family::V6),
            Destination::Fallback(_) => fallback_of(family),
        };
        match entry {
            _ if after_fallback && one_family => {
                return Err(fail(
                    "comes after the fallback address, which must be the last entry",
                ));
            }
            Destination::Port { .. } if after_fallback => {
                return Err(fail(
                    "comes after a fallback address, which must come after every port entry",
                ));
            }
            Destination::Fallback(_) if after_fallback => {
                return Err(fail(&format!(
                    "is a second {family} fallback address: one a family, the last entries"
                )));
            }
            Destination::Port { port, .. } if !seen_ports.insert((family, port)) => {
                let scope = if one_family {
                    String::new()
                } else {
                    format!(" for {family}")
                };
                return Err(fail(&format!(
                    "local port {port} appears more than once{scope}"
                )));
            }
            _ => {}
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// One entry, or why it is wrong.
fn parse_line(line: &str, dialect: Dialect) -> Result<Destination, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [ip] => Ok(Destination::Fallback(parse_address(ip, dialect)?)),
        [port, proto, ip] | [port, proto, ip, _] => Ok(Destination::Port {
            port: parse_port(port)?,
            protocol: parse_protocol(proto, dialect)?,
            address: parse_address(ip, dialect)?,
            target_port: fields.get(3).map(|p| parse_port(p)).transpose()?,
        }),
        _ => Err("expected `IP`, `PORT PROTO IP` or `PORT PROTO IP DESTPORT`".into()),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    names::parse_port(text).ok_or_else(|| format!("port {text:?} is not a number from 1 to 65535"))
}

fn parse_protocol(text: &str, dialect: Dialect) -> Result<Protocol, String> {
    let name = if dialect.operator_forms {
        text.to_ascii_lowercase()
    } else {
        text.to_owned()
    };
    match name.as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" if dialect.operator_forms => Ok(Protocol::Sctp),
        _ if dialect.operator_forms => Err(format!("protocol {text:?} is not tcp, udp or sctp")),
        _ => Err(format!("protocol {text:?} is not tcp or udp")),
    }
}

fn parse_address(text: &str, dialect: Dialect) -> Result<IpAddr, String> {
    if text.starts_with('[') {
        return Err(format!(
            "{text:?}: write an IPv6 address without brackets, and a port as a field of its own"
        ));
    }
    let (address_text, prefix) = match text.split_once('/') {
        Some((address, prefix)) if dialect.operator_forms => (address, Some(prefix)),
        _ => (text, None),
    };
    let address: IpAddr = address_text
        .parse()
        .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 address"))?;
    let max = Family::of(address).max_prefix();
    if let Some(prefix) = prefix
        && !prefix
            .parse::<u8>()
            .is_ok_and(|p| p <= max && p.to_string() == prefix)
    {
        return Err(format!(
            "{text:?} has a prefix length that is not from 0 to {max}"
        ));
    }
    match address {
        IpAddr::V4(v4) if !is_unicast(v4) => Err(format!("{text:?} is not a unicast address")),
        IpAddr::V6(v6) => match ipv4_in_ipv6(v6) {
            Some(v4) => Err(format!(
                "{text:?} is an IPv4 address written as IPv6: write {v4}"
            )),
            _ if v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unicast_link_local() =>
            {
                Err(format!(
                    "{text:?} is not a unicast address a router can forward to"
                ))
            }
            _ => Ok(address),
        },
        IpAddr::V4(_) => Ok(address),
    }
}

#[cfg(test)]
mod cni_tests;
#[cfg(test)]
mod tests;
