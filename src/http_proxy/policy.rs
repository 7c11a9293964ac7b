//! The allow/deny decision for one target: a pure function returning a decision with
//! its reason, so it is tested on a table and fuzzed.
//!
//! A decision about a host name may need its addresses (address rules match when a
//! resolved address is inside). [`decide`] says so instead of resolving, so a name
//! denied by a name rule is never looked up (in report mode it is, to let it through),
//! and an allow always comes with the exact addresses that were checked: the only ones
//! the proxy may dial.
//!
//! Before any rule is read, every address is put in its one spelling
//! ([`address::canonical`]) and screened: addresses of [`Class::Never`], the pod's
//! own addresses (any port) and the proxy's own listener are never dialed; loopback and link-local addresses
//! ([`Class::LocalOnly`]) only when an address rule inside their range allows them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::rules::{Matcher, Rule};
use crate::config::address::{self, Class, OwnSockets};
use crate::config::names::{ends_in_number, normalize_host_name, parse_ipv4};

/// The host part of a request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name, lower-cased, without a trailing dot.
    Name(String),
    /// An IP literal, canonical.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Host {
    /// Parses a host as found in a request: `[v6]` in brackets, an IPv4 address (a
    /// host whose last label is a number must be a strict dotted quad), or a name.
    /// Literals come out canonical. `None` if invalid.
    pub fn parse(text: &str) -> Option<Host> {
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return inner
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .map(|ip| Host::Ip(address::canonical(IpAddr::V6(ip))));
        }
        if ends_in_number(text) {
            return parse_ipv4(text).map(|ip| Host::Ip(IpAddr::V4(ip)));
        }
        normalize_host_name(text).map(Host::Name)
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Connect, to one of these checked addresses only (in preference order). Empty
    /// when a rule allows a name that has no address: the request then fails (502).
    Allow {
        /// Index of the deciding rule.
        rule: usize,
        /// Addresses the request may be sent to.
        addresses: Vec<IpAddr>,
    },
    /// Refuse (403), for this reason.
    Deny(Denial),
    /// The decision depends on the addresses of the host name: resolve it and ask again.
    NeedAddresses,
    /// Report mode: the list denies the target for this reason, but it may connect to
    /// these checked addresses (the screens applied, as for [`Decision::Allow`]).
    Report {
        /// Why the list would refuse it.
        denial: Denial,
        /// Addresses the request may be sent to.
        addresses: Vec<IpAddr>,
    },
}

/// How the list is applied (`EGRESS_HTTP_PROXY_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListMode {
    /// What the list denies is refused (403).
    #[default]
    Enforce,
    /// What the list denies is let through and reported; the screens still refuse.
    Report,
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// A deny rule (its index) matched.
    Rule(usize),
    /// No rule allows the target.
    NoRule,
    /// The address is of a kind never dialed.
    Never {
        /// The address.
        address: IpAddr,
        /// What kind of address it is.
        kind: &'static str,
    },
    /// The address and port are the proxy's own listener.
    OwnListener(SocketAddr),
    /// The address is one of the pod's own (other containers of the pod listen there).
    PodAddress(IpAddr),
    /// A loopback or link-local address that no address rule inside its range allows.
    LocalOnly {
        /// The address.
        address: IpAddr,
        /// What kind of address it is.
        kind: &'static str,
    },
}

impl Denial {
    /// A short reason for the 403 body and the log; names the rule when one decided.
    pub fn reason(&self, rules: &[Rule], host: &Host) -> String {
        match self {
            Denial::Rule(index) => format!("{host} is denied by rule {:?}", rules[*index].text),
            Denial::NoRule => format!("no rule allows {host}"),
            Denial::Never { address, kind } => {
                format!("{host}: {address} is {kind}, never dialed")
            }
            Denial::OwnListener(socket) => {
                format!("{host}: {socket} is this proxy's own listener, never dialed")
            }
            Denial::PodAddress(address) => {
                format!("{host}: {address} is an address of this pod, never dialed")
            }
            Denial::LocalOnly { address, kind } => {
                format!("{host}: {address} is {kind}, dialed only when an address rule names it")
            }
        }
    }

    /// The `rule` field of the decision log line.
    pub fn log_rule(&self, rules: &[Rule]) -> String {
        match self {
            Denial::Rule(index) => rules[*index].text.clone(),
            Denial::NoRule => "default".into(),
            Denial::Never { .. } => "never-dialed".into(),
            Denial::OwnListener(_) => "own-listener".into(),
            Denial::PodAddress(_) => "pod-address".into(),
            Denial::LocalOnly { .. } => "local-only".into(),
        }
    }
}

/// Applies `rules` to `host`:`port`. For a host name, `resolved` holds its addresses
/// once looked up (`None` before; empty when the name has none). First match decides;
/// no match denies.
pub fn decide(
    rules: &[Rule],
    host: &Host,
    port: u16,
    resolved: Option<&[IpAddr]>,
    own: &OwnSockets,
) -> Decision {
    let given: Option<Vec<IpAddr>> = match host {
        Host::Ip(ip) => Some(vec![address::canonical(*ip)]),
        Host::Name(_) => resolved.map(|found| {
            let mut all: Vec<IpAddr> = found.iter().map(|a| address::canonical(*a)).collect();
            all.dedup();
            all
        }),
    };
    let mut refused = None;
    let candidates: Option<Vec<IpAddr>> = given.map(|all| {
        all.into_iter()
            .filter(|a| match screen(*a, port, own) {
                Ok(()) => true,
                Err(denial) => {
                    refused.get_or_insert(denial);
                    false
                }
            })
            .collect()
    });
    if let (Host::Ip(_), Some(denial)) = (host, &refused) {
        return Decision::Deny(denial.clone());
    }
    let mut local_only = None;
    for (index, rule) in rules.iter().enumerate() {
        let matched: Option<Vec<IpAddr>> = match &rule.matcher {
            Matcher::Any => Some(Vec::new()),
            Matcher::Name(name) => matches!(host, Host::Name(h) if h == name).then(Vec::new),
            Matcher::Domain(domain) => {
                matches!(host, Host::Name(h) if in_domain(h, domain)).then(Vec::new)
            }
            Matcher::Network(net) => {
                let Some(candidates) = &candidates else {
                    return Decision::NeedAddresses;
                };
                let inside: Vec<IpAddr> = candidates
                    .iter()
                    .copied()
                    .filter(|a| net.contains(a))
                    .collect();
                (!inside.is_empty()).then_some(inside)
            }
        };
        let Some(inside) = matched else { continue };
        if rule.deny {
            return Decision::Deny(Denial::Rule(index));
        }
        let Some(candidates) = &candidates else {
            return Decision::NeedAddresses;
        };
        let pool = if inside.is_empty() {
            candidates
        } else {
            &inside
        };
        let mut allowed: Vec<IpAddr> = Vec::new();
        for address in pool {
            match address::class(*address) {
                Class::LocalOnly { kind, range } if !granted_by(&rule.matcher, range) => {
                    local_only.get_or_insert(Denial::LocalOnly {
                        address: *address,
                        kind,
                    });
                }
                _ => allowed.push(*address),
            }
        }
        if allowed.is_empty() && !pool.is_empty() {
            continue;
        }
        if allowed.is_empty()
            && let Some(denial) = refused
        {
            return Decision::Deny(denial);
        }
        allowed.sort_by_key(|a| a.is_ipv6());
        return Decision::Allow {
            rule: index,
            addresses: allowed,
        };
    }
    Decision::Deny(local_only.or(refused).unwrap_or(Denial::NoRule))
}

/// [`decide`] in `mode`. In report mode a target that the list denies (a deny rule, or
/// no rule) is decided again as if the list were `*`: only the screens (never dialed,
/// own listener, local-only) can still refuse it, and what they let through comes back
/// as [`Decision::Report`] with the list's reason. A name refused by a screen is decided
/// again too: no rule allowed its other addresses (the reason reported), and the
/// screens refuse the screened ones again.
pub fn decide_in(
    mode: ListMode,
    rules: &[Rule],
    host: &Host,
    port: u16,
    resolved: Option<&[IpAddr]>,
    own: &OwnSockets,
) -> Decision {
    let decision = decide(rules, host, port, resolved, own);
    let denial = match (mode, decision, host) {
        (ListMode::Report, Decision::Deny(denial @ (Denial::Rule(_) | Denial::NoRule)), _) => {
            denial
        }
        (ListMode::Report, Decision::Deny(_), Host::Name(_)) => Denial::NoRule,
        (_, other, _) => return other,
    };
    let everything = [Rule {
        text: "*".into(),
        deny: false,
        matcher: Matcher::Any,
    }];
    match decide(&everything, host, port, resolved, own) {
        Decision::Allow { addresses, .. } => Decision::Report { denial, addresses },
        screened => screened,
    }
}

/// Refuses addresses that are never dialed, whatever the rules say.
fn screen(address: IpAddr, port: u16, own: &OwnSockets) -> Result<(), Denial> {
    if let Class::Never(kind) = address::class(address) {
        return Err(Denial::Never { address, kind });
    }
    if own.is_pod_address(address) {
        return Err(Denial::PodAddress(address));
    }
    if own.contains(address, port) {
        return Err(Denial::OwnListener(SocketAddr::new(address, port)));
    }
    Ok(())
}

/// Whether an allow rule may grant a local-only address of `range`: only an address
/// rule that lies entirely inside that range.
fn granted_by(matcher: &Matcher, range: ipnet::IpNet) -> bool {
    matches!(matcher, Matcher::Network(net) if range.contains(net))
}

fn in_domain(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

#[cfg(test)]
mod report_tests;
#[cfg(test)]
mod tests;
