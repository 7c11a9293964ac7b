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

use std::borrow::Cow;
use std::fmt;

use crate::config::family::Family;

pub mod guard;
pub mod names;
pub mod nat;
mod script;

pub use guard::guard_rules;
pub use names::{NameChain, Resolved};
pub use nat::{
    NatChains, NatInterfaces, NatPurpose, nat_plan_on, nat_rules, nat_rules_on, router_name_chains,
    router_nat_plan,
};
pub use script::{
    check_script, jump_problems, our_chain_in, restore_script, rollback_script, same_rules,
    spec_tokens, teardown_script,
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
    /// Chain the rule is appended to (ours are named once, a name entry's chain is
    /// numbered).
    pub chain: Cow<'static, str>,
    /// Match and target, as given to `iptables -A CHAIN`.
    pub spec: String,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-A {} {}", self.chain, self.spec)
    }
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
    /// The chains of the name entries (SPEC section 13), jumped to by NAT rules.
    pub names: Vec<NameChain>,
    /// Where VRRP advertisements may come in from on the egress interface (high
    /// availability); `None`: they are dropped like the rest.
    pub vrrp: Option<VrrpFrom>,
}

/// The VRRP advertisements the guard lets in (SPEC section 12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VrrpFrom {
    /// Those sent to the family's VRRP multicast group.
    Group,
    /// Those sent by these unicast peers.
    Peers(Vec<std::net::IpAddr>),
}

impl Wanted {
    /// The guard of `egress` alone, for a family it has no source of.
    pub fn guard_only(family: Family, egress: &str) -> Self {
        Wanted {
            family,
            egress: egress.into(),
            replies: None,
            nat: None,
            names: Vec::new(),
            vrrp: None,
        }
    }

    /// The guard of the egress interface: [`guard_rules`], with VRRP let in before the
    /// drop when high availability asks for it, and then nothing forwarded from the
    /// cluster side but out of the egress interface (a backup's default route leads
    /// back to the cluster side: what it is sent to redirect goes nowhere).
    pub fn guard(&self) -> Vec<Rule> {
        let mut rules = guard_rules(self.family, &self.egress);
        if let Some(from) = &self.vrrp {
            let drop = format!("-i {} -j DROP", self.egress);
            let drop_at = rules
                .iter()
                .position(|r| r.chain == IN_CHAIN && r.spec == drop)
                .unwrap_or(rules.len());
            let vrrp = guard::vrrp_rules(self.family, &self.egress, from);
            rules.splice(drop_at..drop_at, vrrp);
            if let Some(Inbound::On(pod)) = &self.replies {
                rules.push(guard::standby_rule(pod, &self.egress));
            }
        }
        rules
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
    let mangle = |chain: &'static str, spec: String| Rule {
        table: "mangle",
        chain: chain.into(),
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
    let jump = |table, chain: &'static str, target: &str| Rule {
        table,
        chain: chain.into(),
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

/// Every rule of `wanted` but the content of the name entries' chains (which the
/// redirect container keeps current; see [`names`]): what the check verifies is in
/// place.
pub fn all_rules(wanted: &Wanted) -> Vec<Rule> {
    let mut rules = wanted.guard();
    if !wanted.names.is_empty() {
        rules.extend(names::refusal_rules(wanted.family));
    }
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
