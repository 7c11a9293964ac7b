//! The rules of a name entry (SPEC section 13), planned and read back (pure).
//!
//! Each name entry has a chain of its own in each family's `nat` table,
//! `EGRESS-ROUTER-N-<position>` (its place among the list's entries), jumped to from
//! `PREROUTING` where the entry stands (matching its port and protocol, or everything
//! for a fallback). The chain sends new connections to the name's addresses of that
//! family, spread evenly: with n addresses, rule k (from 0) takes every (n-k)-th
//! connection that reaches it (`-m statistic --mode nth`) and the last one takes the
//! rest, so each address gets exactly one in n. With no address the chain refuses: it
//! marks the packet ([`REFUSE_MARK`]) and accepts it untranslated (the `nat` table takes
//! no DROP), and the first rules of the guard's `filter` chains reject marked packets,
//! so the traffic goes nowhere, not to the fallback either. A change of addresses
//! replaces the chain's content alone, in one `iptables-restore --noflush` transaction;
//! the jump, whose counters are the entry's, is never rewritten.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::script::{spec_tokens, table_section};
use super::{FORWARD_CHAIN, IN_CHAIN, Rule};
use crate::config::address::{self, Class};
use crate::config::family::Family;
use crate::config::redirect::{Destination, Protocol};

/// What every name entry's chain is called, before its position.
pub const NAME_CHAIN_PREFIX: &str = "EGRESS-ROUTER-N-";
/// The packet mark of traffic a name entry refuses (no address yet).
pub const REFUSE_MARK: u32 = 0x0020_0000;

/// The chain of the entry at `position` (from 1) of the list.
pub fn name_chain(position: usize) -> String {
    format!("{NAME_CHAIN_PREFIX}{position}")
}

/// How a name entry's DNAT rules are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// A port entry's protocol (a DNAT to a port must name it); `None` for a fallback.
    pub protocol: Option<Protocol>,
    /// The port on the outside server, when the entry gives one.
    pub target_port: Option<u16>,
}

impl Shape {
    /// The shape of `destination`'s rules.
    pub fn of(destination: &Destination) -> Shape {
        match destination {
            Destination::Port {
                protocol,
                target_port,
                ..
            } => Shape {
                protocol: Some(*protocol),
                target_port: *target_port,
            },
            Destination::Fallback(_) => Shape {
                protocol: None,
                target_port: None,
            },
        }
    }
}

/// A name entry's chain in one family's `nat` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameChain {
    /// The chain.
    pub chain: String,
    /// The entry as written in the list (its NAT counters' label).
    pub label: String,
    /// The host name.
    pub name: String,
    /// The family of the table.
    pub family: Family,
    /// How its rules are written.
    pub shape: Shape,
    /// The addresses it must send to (empty: it refuses); `None` when any well-formed
    /// content will do (a check, which resolves nothing: the redirect container keeps
    /// the content current).
    pub addresses: Option<Vec<IpAddr>>,
}

impl NameChain {
    /// Its rules when sending to `addresses` (sorted; none: refused).
    pub fn rules(&self, addresses: &[IpAddr]) -> Vec<Rule> {
        let chain = self.chain.clone();
        let rule = |spec: String| Rule {
            table: "nat",
            chain: chain.clone().into(),
            spec,
        };
        if addresses.is_empty() {
            let mark = format!("{REFUSE_MARK:#x}/{REFUSE_MARK:#x}");
            return vec![
                rule(format!("-j MARK --set-xmark {mark}")),
                rule("-j ACCEPT".into()),
            ];
        }
        let protocol = self
            .shape
            .protocol
            .map_or_else(String::new, |p| format!("-p {p} "));
        let count = addresses.len();
        addresses
            .iter()
            .enumerate()
            .map(|(k, address)| {
                let to = match self.shape.target_port {
                    Some(port) => SocketAddr::new(*address, port).to_string(),
                    None => address.to_string(),
                };
                let spread = match count - k {
                    1 => String::new(),
                    every => format!("-m statistic --mode nth --every {every} --packet 0 "),
                };
                rule(format!("{protocol}{spread}-j DNAT --to-destination {to}"))
            })
            .collect()
    }

    /// A comment line saying what the chain holds, for `unit-test` (which resolves
    /// nothing).
    pub fn describe(&self) -> String {
        let port = self
            .shape
            .target_port
            .map_or_else(String::new, |p| format!(", port {p}"));
        format!(
            "# {}: DNAT to every {} address of {}{port}, spread over them (resolved by init, kept current by the redirect container)",
            self.chain, self.family, self.name
        )
    }

    /// The addresses the chain holds in `dump` (an `iptables-save` dump, with or
    /// without counters) when its content is exactly the rules of those addresses, each
    /// a unicast address of its family that a name may send to; else what is wrong.
    pub fn held(&self, dump: &str) -> Result<Vec<IpAddr>, String> {
        let lines = chain_lines(dump, &self.chain).ok_or("is missing")?;
        let mut addresses = Vec::new();
        for (_, spec) in &lines {
            let mut words = spec.split_whitespace();
            if words.any(|w| w == "--to-destination") {
                let to = words.next().unwrap_or("");
                let address = to
                    .parse::<IpAddr>()
                    .or_else(|_| to.parse::<SocketAddr>().map(|s| s.ip()))
                    .map_err(|_| format!("sends to {to:?}, not an address"))?;
                addresses.push(address);
            }
        }
        let expected = self.rules(&addresses);
        let same = expected.len() == lines.len()
            && expected
                .iter()
                .zip(&lines)
                .all(|(rule, (_, spec))| spec_tokens(&rule.spec) == spec_tokens(spec));
        if !same {
            let found: Vec<&str> = lines.iter().map(|(_, spec)| spec.as_str()).collect();
            return Err(format!(
                "holds other rules than those of its addresses: [{}]",
                found.join("; ")
            ));
        }
        match addresses.iter().find(|a| !may_send_to(**a, self.family)) {
            Some(address) => Err(format!(
                "sends to {address}, which a name never does (not a unicast {} address)",
                self.family
            )),
            None => Ok(addresses),
        }
    }
}

/// Whether a name entry's chain of `family` may send to `address`: a unicast address
/// of the family, in its one spelling, that is neither loopback nor link-local.
fn may_send_to(address: IpAddr, family: Family) -> bool {
    Family::of(address) == family
        && address::canonical(address) == address
        && address::class(address) == Class::Dialable
}

/// The rules of a chain in `dump`: each with its counters (`[packets:bytes]`, when the
/// dump has them) and its spec; `None` when the chain is not declared.
fn chain_lines(dump: &str, chain: &str) -> Option<Vec<(Option<String>, String)>> {
    let section = table_section(dump, "nat")?;
    let declared = format!(":{chain} ");
    section.lines().find(|l| l.starts_with(&declared))?;
    let prefix = format!("-A {chain} ");
    let lines = section
        .lines()
        .filter_map(|line| {
            let (counters, rule) = match line.split_once("] ") {
                Some((counters, rule)) if line.starts_with('[') => {
                    (Some(format!("{counters}]")), rule)
                }
                _ => (None, line),
            };
            let spec = rule.strip_prefix(&prefix)?;
            Some((counters, spec.trim_end().to_string()))
        })
        .collect();
    Some(lines)
}

/// The `iptables-restore --noflush --counters` input that gives each chain of
/// `updates` the rules listed with it, in one transaction, touching nothing else. A
/// rule the chain holds already in `counted` (an `iptables-save -c` dump of `nat`)
/// keeps its counters.
pub fn update_script(counted: &str, updates: &[(&str, Vec<Rule>)]) -> String {
    let mut script = String::from("*nat\n");
    for (chain, _) in updates {
        script.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for (chain, rules) in updates {
        let mut before = chain_lines(counted, chain).unwrap_or_default();
        for rule in rules {
            let kept = before
                .iter()
                .position(|(_, spec)| spec_tokens(spec) == spec_tokens(&rule.spec));
            match kept.map(|at| before.remove(at)) {
                Some((Some(counters), _)) => script.push_str(&format!("{counters} {rule}\n")),
                _ => script.push_str(&format!("{rule}\n")),
            }
        }
    }
    script.push_str("COMMIT\n");
    script
}

/// The rules that reject what a name entry refuses, first in the guard's `filter`
/// chains (input and forward: a refused packet addressed elsewhere is not forwarded
/// either): TCP with a reset, the rest with an ICMP port unreachable.
pub fn refusal_rules(family: Family) -> Vec<Rule> {
    let mark = format!("-m mark --mark {REFUSE_MARK:#x}/{REFUSE_MARK:#x}");
    let unreachable = match family {
        Family::V4 => "icmp-port-unreachable",
        Family::V6 => "icmp6-port-unreachable",
    };
    [IN_CHAIN, FORWARD_CHAIN]
        .into_iter()
        .flat_map(|chain| {
            [
                format!("-p tcp {mark} -j REJECT --reject-with tcp-reset"),
                format!("{mark} -j REJECT --reject-with {unreachable}"),
            ]
            .map(|spec| Rule {
                table: "filter",
                chain: chain.into(),
                spec,
            })
        })
        .collect()
}

/// The addresses of each name, as the router uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved(BTreeMap<String, Vec<IpAddr>>);

impl Resolved {
    /// Records `name`'s addresses (screened).
    pub fn insert(&mut self, name: &str, addresses: Vec<IpAddr>) {
        self.0.insert(name.to_string(), addresses);
    }

    /// `name`'s addresses of `family`, sorted, each once.
    pub fn of(&self, name: &str, family: Family) -> Vec<IpAddr> {
        let mut found: Vec<IpAddr> = self
            .0
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|a| Family::of(*a) == family)
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

#[cfg(test)]
mod tests;
