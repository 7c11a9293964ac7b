//! Parsing of redirect lists: `EGRESS_DESTINATION` (SPEC sections 3, 10 and 13) and the
//! CNI plugin's `destinations` (SPEC section 7).
//!
//! One entry a line (or a JSON array element): `PORT PROTO TARGET` or `PORT PROTO
//! TARGET DESTPORT`, then `TARGET` (the fallback: one a family, after every port entry);
//! each local port once a family. A target is an IPv4 or IPv6 address (without
//! brackets) or, in the variable only, a host name (SPEC section 13), which stands for
//! every family the router has a source of: its local port is then taken in both
//! families, and a name fallback is the fallback of both. The variable skips blank
//! lines and `#` comments and takes exactly `tcp` and `udp`; the CNI dialect also takes
//! what OpenShift's cluster network operator renders: protocols in any case, `sctp`, and
//! addresses with a `/prefix` (the address is meant, the prefix is ignored), and refuses
//! names (the plugin runs once and cannot follow DNS).

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use crate::config::family::Family;
use crate::config::lines;
use crate::error::{Error, Result};

mod line;

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

/// Where an entry sends its traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// An outside server's address.
    Address(IpAddr),
    /// A host name (lower case, without trailing dot), resolved by the init container
    /// and followed by the redirect container (SPEC section 13).
    Name(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Address(address) => write!(f, "{address}"),
            Target::Name(name) => f.write_str(name),
        }
    }
}

/// One validated entry of the redirect list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Traffic to local `port`/`protocol` goes to `target`, on `target_port` when given.
    Port {
        /// Local port the traffic arrives for.
        port: u16,
        /// Protocol the redirect applies to.
        protocol: Protocol,
        /// The outside server.
        target: Target,
        /// Port on the outside server; `None` keeps the local port.
        target_port: Option<u16>,
    },
    /// Everything of its family not matched earlier goes to this target, same port
    /// and protocol.
    Fallback(Target),
}

impl Destination {
    /// Where the entry sends its traffic.
    pub fn target(&self) -> &Target {
        match self {
            Destination::Port { target, .. } | Destination::Fallback(target) => target,
        }
    }

    /// The outside server's address; `None` for a name.
    pub fn address(&self) -> Option<IpAddr> {
        match self.target() {
            Target::Address(address) => Some(*address),
            Target::Name(_) => None,
        }
    }

    /// The host name the entry sends to; `None` for an address.
    pub fn name(&self) -> Option<&str> {
        match self.target() {
            Target::Name(name) => Some(name),
            Target::Address(_) => None,
        }
    }

    /// The family an address entry redirects; `None` for a name, which redirects every
    /// family the router has a source of.
    pub fn family(&self) -> Option<Family> {
        self.address().map(Family::of)
    }

    /// Whether the entry redirects traffic of `family`: an address of it, or a name.
    pub fn redirects(&self, family: Family) -> bool {
        self.family().is_none_or(|f| f == family)
    }

    /// Whether the entry is the fallback.
    pub fn is_fallback(&self) -> bool {
        matches!(self, Destination::Fallback(_))
    }
}

impl fmt::Display for Destination {
    /// The entry as a line of `EGRESS_DESTINATION`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Port {
                port,
                protocol,
                target,
                target_port: None,
            } => {
                write!(f, "{port} {protocol} {target}")
            }
            Destination::Port {
                port,
                protocol,
                target,
                target_port: Some(port_there),
            } => {
                write!(f, "{port} {protocol} {target} {port_there}")
            }
            Destination::Fallback(target) => write!(f, "{target}"),
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
        .filter_map(|(line, entry)| Some((line, entry.family()?)))
        .find(|(_, family)| !has_source(*family))
}

/// Whether traffic of `family` is forwarded when `entries` are redirected: IPv4 as it
/// always was (every redirect mode), IPv6 only when IPv6 clients are redirected (an
/// IPv6 line, or a name; forwarding makes the pod a router on every interface).
pub fn forwards(family: Family, entries: &[Destination]) -> bool {
    family == Family::V4 || entries.iter().any(|e| e.redirects(family))
}

/// The names of `entries`, each once, in the order they first appear.
pub fn names(entries: &[Destination]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for name in entries.iter().filter_map(Destination::name) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
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
    /// Host names as targets.
    names: bool,
}

const ENV: Dialect = Dialect {
    field: "EGRESS_DESTINATION",
    entry: "line",
    operator_forms: false,
    names: true,
};

const CNI: Dialect = Dialect {
    field: "destinations",
    entry: "entry",
    operator_forms: true,
    names: false,
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
        let entry = line::parse_line(line, dialect).map_err(|reason| fail(&reason))?;
        // An address entry's family, or both for a name.
        let families: Vec<Family> = Family::ALL
            .into_iter()
            .filter(|f| entry.redirects(*f))
            .collect();
        let fallback_of = |family: Family| {
            entries
                .iter()
                .any(|e| e.is_fallback() && e.redirects(family))
        };
        // A list of one family reads as it did before IPv6 lines existed.
        let one_family = entries.iter().all(|e| e.family() == entry.family());
        let taken_fallback = families.iter().copied().find(|f| fallback_of(*f));
        let after_fallback = match entry {
            Destination::Port { .. } => fallback_of(Family::V4) || fallback_of(Family::V6),
            Destination::Fallback(_) => taken_fallback.is_some(),
        };
        match (&entry, taken_fallback) {
            _ if after_fallback && one_family => {
                return Err(fail(
                    "comes after the fallback address, which must be the last entry",
                ));
            }
            (Destination::Port { .. }, _) if after_fallback => {
                return Err(fail(
                    "comes after a fallback address, which must come after every port entry",
                ));
            }
            (Destination::Fallback(Target::Address(_)), Some(family)) => {
                return Err(fail(&format!(
                    "is a second {family} fallback address: one a family, the last entries"
                )));
            }
            (Destination::Fallback(Target::Name(_)), Some(family)) => {
                return Err(fail(&format!(
                    "is a second {family} fallback: a name's fallback is the fallback of every family, the last entry"
                )));
            }
            (Destination::Port { port, .. }, _) => {
                let port = *port;
                if let Some(family) = families.iter().find(|f| seen_ports.contains(&(**f, port))) {
                    let scope = if one_family {
                        String::new()
                    } else {
                        format!(" for {family}")
                    };
                    return Err(fail(&format!(
                        "local port {port} appears more than once{scope}"
                    )));
                }
                seen_ports.extend(families.iter().map(|f| (*f, port)));
            }
            _ => {}
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod cni_tests;
#[cfg(test)]
mod names_tests;
#[cfg(test)]
mod tests;
