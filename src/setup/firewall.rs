//! Firewall rule planning: pure functions from configuration to iptables-restore text.
//!
//! Three groups of rules are planned, each family with its own tool (`iptables`,
//! `ip6tables`):
//! - the guard of the egress interface ([`guard`], in `filter`): only replies come in
//!   from the outside network, and nothing is forwarded from it unless a reply;
//! - the redirect NAT of SPEC section 3 (`nat` PREROUTING DNATs, POSTROUTING SNAT),
//!   which replace whatever those two chains held before; the CNI plugin's (SPEC
//!   section 7) match other interfaces and live in chains of our own
//!   ([`NatInterfaces`]);
//! - reply routing (SPEC 2.4) in chains of our own in `mangle`: connections that
//!   arrive on the cluster side (`eth0`) get a connmark, and packets in their reply direction carry it
//!   as fwmark, which an `ip rule` sends to a table whose default route is the pod's
//!   original `eth0` route. Replies thus leave through `eth0` whatever the client's
//!   subnet, while the main default route points at `macvlan0`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::config::family::Family;
use crate::config::redirect::Destination;

pub mod guard;
mod script;

pub use guard::guard_rules;
pub use script::{
    check_script, jump_problems, restore_script, rollback_script, same_rules, teardown_script,
};

/// Interface the pod's cluster traffic arrives on.
pub const POD_INTERFACE: &str = "eth0";
/// Connmark/fwmark bit carried by replies to connections that arrived on `eth0`.
pub const REPLY_MARK: u32 = 0x0040_0000;
/// Routing table holding the pod's original `eth0` default route.
pub const REPLY_TABLE: u32 = 4552;
/// Priority of the `ip rule` that sends marked replies to [`REPLY_TABLE`].
pub const REPLY_RULE_PRIORITY: u32 = 4552;

pub(super) const PRE_CHAIN: &str = "EGRESS-ROUTER-PREROUTING";
pub(super) const OUT_CHAIN: &str = "EGRESS-ROUTER-OUTPUT";
pub(super) const DNAT_CHAIN: &str = "EGRESS-ROUTER-DNAT";
pub(super) const SNAT_CHAIN: &str = "EGRESS-ROUTER-SNAT";
pub(super) const IN_CHAIN: &str = "EGRESS-ROUTER-INPUT";
pub(super) const FORWARD_CHAIN: &str = "EGRESS-ROUTER-FORWARD";

/// One rule, appended to `chain` of `table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Table the rule lives in.
    pub table: &'static str,
    /// Chain the rule is appended to.
    pub chain: &'static str,
    /// Match and target, as given to `iptables -A CHAIN`.
    pub spec: String,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-A {} {}", self.chain, self.spec)
    }
}

/// Which interfaces the redirect NAT rules match, and which chains hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatInterfaces {
    /// The DNAT rules apply to traffic arriving as this says.
    pub inbound: Inbound,
    /// The SNAT rule applies to traffic leaving by this interface; `None`: to all.
    pub outbound: Option<String>,
    /// Where the rules live.
    pub chains: NatChains,
}

/// Where the traffic a DNAT rule redirects (and reply routing marks) arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// On this interface (`-i NAME`).
    On(String),
    /// On any interface but this one (`! -i NAME`).
    NotOn(String),
}

impl fmt::Display for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inbound::On(name) => write!(f, "-i {name}"),
            Inbound::NotOn(name) => write!(f, "! -i {name}"),
        }
    }
}

/// The chains that hold the NAT rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatChains {
    /// `PREROUTING` and `POSTROUTING` themselves, flushed and refilled (the router's
    /// contract, SPEC section 3).
    Builtin,
    /// Chains of our own, jumped to from the built-in ones (the CNI plugin's: the pod
    /// may hold other rules, and DEL removes exactly ours).
    Own,
}

impl NatInterfaces {
    /// The router's (SPEC section 3): DNAT what arrives on `eth0`, SNAT everything.
    pub fn router() -> Self {
        NatInterfaces {
            inbound: Inbound::On(POD_INTERFACE.into()),
            outbound: None,
            chains: NatChains::Builtin,
        }
    }

    /// The CNI plugin's (SPEC section 7): DNAT what arrives on the pod's other
    /// interfaces, SNAT what leaves by `egress`, the plugin's interface.
    pub fn plugin(egress: &str) -> Self {
        NatInterfaces {
            inbound: Inbound::NotOn(egress.into()),
            outbound: Some(egress.into()),
            chains: NatChains::Own,
        }
    }
}

/// The redirect NAT rules of SPEC sections 3 and 10 for the family of `source`: its
/// entries in order, then the SNAT.
pub fn nat_rules(source: IpAddr, destinations: &[Destination]) -> Vec<Rule> {
    nat_rules_on(&NatInterfaces::router(), source, destinations)
}

/// The redirect NAT rules matching `interfaces` for the family of `source` (for
/// `iptables` or `ip6tables`): its entries in order, then the SNAT.
pub fn nat_rules_on(
    interfaces: &NatInterfaces,
    source: IpAddr,
    destinations: &[Destination],
) -> Vec<Rule> {
    let (pre, post) = match interfaces.chains {
        NatChains::Builtin => ("PREROUTING", "POSTROUTING"),
        NatChains::Own => (DNAT_CHAIN, SNAT_CHAIN),
    };
    let nat = |chain, spec: String| Rule {
        table: "nat",
        chain,
        spec,
    };
    let inbound = &interfaces.inbound;
    let family = Family::of(source);
    let mut rules: Vec<Rule> = destinations
        .iter()
        .filter(|destination| destination.family() == family)
        .map(|destination| {
            let spec = match destination {
                Destination::Port {
                    port,
                    protocol,
                    address,
                    target_port: None,
                } => format!(
                    "{inbound} -p {protocol} --dport {port} -j DNAT --to-destination {address}"
                ),
                Destination::Port {
                    port,
                    protocol,
                    address,
                    target_port: Some(target),
                } => format!(
                    "{inbound} -p {protocol} --dport {port} -j DNAT --to-destination {}",
                    SocketAddr::new(*address, *target)
                ),
                Destination::Fallback(address) => {
                    format!("{inbound} -j DNAT --to-destination {address}")
                }
            };
            nat(pre, spec)
        })
        .collect();
    let snat = match &interfaces.outbound {
        Some(name) => format!("-o {name} -j SNAT --to-source {source}"),
        None => format!("-j SNAT --to-source {source}"),
    };
    rules.push(nat(post, snat));
    rules
}

/// Everything a setup wants in one family's firewall: the guard of the egress
/// interface always, reply routing and NAT for a family the egress interface has a
/// source of (the proxy modes have no NAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The family (its tool: `iptables` or `ip6tables`).
    pub family: Family,
    /// The egress interface, guarded.
    pub egress: String,
    /// Where the connections whose replies must go back the same way arrive; `None`
    /// for a family the egress interface has no source of (its guard alone).
    pub replies: Option<Inbound>,
    /// The NAT rules and where they live.
    pub nat: Option<(NatChains, Vec<Rule>)>,
}

impl Wanted {
    /// The guard of `egress` alone, for a family it has no source of.
    pub fn guard_only(family: Family, egress: &str) -> Self {
        Wanted {
            family,
            egress: egress.into(),
            replies: None,
            nat: None,
        }
    }

    /// Whether the family has a source on the egress interface (reply routing, NAT).
    pub fn has_source(&self) -> bool {
        self.replies.is_some() || self.nat.is_some()
    }
}

/// The rules of our own `mangle` chains that implement reply routing.
pub fn reply_rules(inbound: &Inbound) -> Vec<Rule> {
    let mark = format!("{REPLY_MARK:#x}");
    let restore = format!(
        "-m conntrack --ctdir REPLY -m connmark --mark {mark}/{mark} -j CONNMARK --restore-mark --nfmask {mark} --ctmask {mark}"
    );
    let mangle = |chain, spec: String| Rule {
        table: "mangle",
        chain,
        spec,
    };
    vec![
        mangle(
            PRE_CHAIN,
            format!("{inbound} -m conntrack --ctstate NEW -j CONNMARK --set-xmark {mark}/{mark}"),
        ),
        mangle(PRE_CHAIN, restore.clone()),
        mangle(OUT_CHAIN, restore),
    ]
}

/// The jumps from built-in chains into ours: the guard's (each the first rule of its
/// chain), reply routing's, and the NAT's when it lives in chains of our own.
pub fn jumps(wanted: &Wanted) -> Vec<Rule> {
    let jump = |table, chain, target: &str| Rule {
        table,
        chain,
        spec: format!("-j {target}"),
    };
    let mut jumps = vec![
        jump("filter", "INPUT", IN_CHAIN),
        jump("filter", "FORWARD", FORWARD_CHAIN),
    ];
    if wanted.replies.is_some() {
        jumps.push(jump("mangle", "PREROUTING", PRE_CHAIN));
        jumps.push(jump("mangle", "OUTPUT", OUT_CHAIN));
    }
    if matches!(wanted.nat, Some((NatChains::Own, _))) {
        jumps.push(jump("nat", "PREROUTING", DNAT_CHAIN));
        jumps.push(jump("nat", "POSTROUTING", SNAT_CHAIN));
    }
    jumps
}

/// Every rule of `wanted`: what the check verifies is in place.
pub fn all_rules(wanted: &Wanted) -> Vec<Rule> {
    let mut rules = guard_rules(wanted.family, &wanted.egress);
    if let Some(inbound) = &wanted.replies {
        rules.extend(reply_rules(inbound));
    }
    rules.extend(jumps(wanted));
    if let Some((_, nat)) = &wanted.nat {
        rules.extend(nat.iter().cloned());
    }
    rules
}

/// The tables a script for `wanted` changes.
pub fn tables(wanted: &Wanted) -> Vec<&'static str> {
    let mut tables = vec!["filter"];
    if wanted.replies.is_some() {
        tables.push("mangle");
    }
    if wanted.nat.is_some() {
        tables.push("nat");
    }
    tables
}

#[cfg(test)]
mod tests;
