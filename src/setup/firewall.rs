//! Firewall rule planning: pure functions from configuration to iptables-restore text.
//!
//! Two groups of rules are planned:
//! - the redirect NAT of SPEC section 3 (`nat` PREROUTING DNATs, POSTROUTING SNAT),
//!   which replace whatever those two chains held before; the CNI plugin's (SPEC
//!   section 7) differ only in the interfaces they match ([`NatInterfaces`]);
//! - reply routing (SPEC 2.4) in chains of our own in `mangle`: connections that
//!   arrive on `eth0` get a connmark, and packets in their reply direction carry it
//!   as fwmark, which an `ip rule` sends to a table whose default route is the pod's
//!   original `eth0` route. Replies thus leave through `eth0` whatever the client's
//!   subnet, while the main default route points at `macvlan0`.

use std::fmt;
use std::net::Ipv4Addr;

use crate::config::redirect::Destination;

/// Interface the pod's cluster traffic arrives on.
pub const POD_INTERFACE: &str = "eth0";
/// Connmark/fwmark bit carried by replies to connections that arrived on `eth0`.
pub const REPLY_MARK: u32 = 0x0040_0000;
/// Routing table holding the pod's original `eth0` default route.
pub const REPLY_TABLE: u32 = 4552;
/// Priority of the `ip rule` that sends marked replies to [`REPLY_TABLE`].
pub const REPLY_RULE_PRIORITY: u32 = 4552;

const PRE_CHAIN: &str = "EGRESS-ROUTER-PREROUTING";
const OUT_CHAIN: &str = "EGRESS-ROUTER-OUTPUT";

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

/// Which interfaces the redirect NAT rules match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatInterfaces<'a> {
    /// The DNAT rules apply to traffic arriving as this says.
    pub inbound: Inbound<'a>,
    /// The SNAT rule applies to traffic leaving by this interface; `None`: to all.
    pub outbound: Option<&'a str>,
}

/// Where the traffic a DNAT rule redirects arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// On this interface (`-i NAME`).
    On(&'a str),
    /// On any interface but this one (`! -i NAME`).
    NotOn(&'a str),
}

impl fmt::Display for Inbound<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inbound::On(name) => write!(f, "-i {name}"),
            Inbound::NotOn(name) => write!(f, "! -i {name}"),
        }
    }
}

impl NatInterfaces<'static> {
    /// The router's (SPEC section 3): DNAT what arrives on `eth0`, SNAT everything.
    pub const ROUTER: Self = NatInterfaces {
        inbound: Inbound::On(POD_INTERFACE),
        outbound: None,
    };
}

impl<'a> NatInterfaces<'a> {
    /// The CNI plugin's (SPEC section 7): DNAT what arrives on the pod's other
    /// interfaces, SNAT what leaves by `egress`, the plugin's interface.
    pub fn plugin(egress: &'a str) -> Self {
        NatInterfaces {
            inbound: Inbound::NotOn(egress),
            outbound: Some(egress),
        }
    }
}

/// The redirect NAT rules of SPEC section 3, in entry order, then the SNAT.
pub fn nat_rules(source: Ipv4Addr, destinations: &[Destination]) -> Vec<Rule> {
    nat_rules_on(NatInterfaces::ROUTER, source, destinations)
}

/// The redirect NAT rules matching `interfaces`, in entry order, then the SNAT.
pub fn nat_rules_on(
    interfaces: NatInterfaces<'_>,
    source: Ipv4Addr,
    destinations: &[Destination],
) -> Vec<Rule> {
    let nat = |chain, spec: String| Rule {
        table: "nat",
        chain,
        spec,
    };
    let inbound = interfaces.inbound;
    let mut rules: Vec<Rule> = destinations
        .iter()
        .map(|destination| {
            let spec = match destination {
                Destination::Port { port, protocol, address, target_port: None } => format!(
                    "{inbound} -p {protocol} --dport {port} -j DNAT --to-destination {address}"
                ),
                Destination::Port { port, protocol, address, target_port: Some(target) } => format!(
                    "{inbound} -p {protocol} --dport {port} -j DNAT --to-destination {address}:{target}"
                ),
                Destination::Fallback(address) => {
                    format!("{inbound} -j DNAT --to-destination {address}")
                }
            };
            nat("PREROUTING", spec)
        })
        .collect();
    let snat = match interfaces.outbound {
        Some(name) => format!("-o {name} -j SNAT --to-source {source}"),
        None => format!("-j SNAT --to-source {source}"),
    };
    rules.push(nat("POSTROUTING", snat));
    rules
}

/// The rules of our own `mangle` chains that implement reply routing.
pub fn reply_rules() -> Vec<Rule> {
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
            format!(
                "-i {POD_INTERFACE} -m conntrack --ctstate NEW -j CONNMARK --set-xmark {mark}/{mark}"
            ),
        ),
        mangle(PRE_CHAIN, restore.clone()),
        mangle(OUT_CHAIN, restore),
    ]
}

/// The jumps from the built-in `mangle` chains into ours.
pub fn reply_jumps() -> Vec<Rule> {
    vec![
        Rule {
            table: "mangle",
            chain: "PREROUTING",
            spec: format!("-j {PRE_CHAIN}"),
        },
        Rule {
            table: "mangle",
            chain: "OUTPUT",
            spec: format!("-j {OUT_CHAIN}"),
        },
    ]
}

/// Every rule the router installs: what `redirect` verifies is in place.
pub fn all_rules(nat: Option<&[Rule]>) -> Vec<Rule> {
    let mut rules = reply_rules();
    rules.extend(reply_jumps());
    rules.extend(nat.into_iter().flatten().cloned());
    rules
}

/// Builds the `iptables-restore --noflush` input that brings the namespace to the plan.
///
/// `current` is the `iptables-save` output of the namespace; it decides whether the
/// jumps into our chains exist already, so that each is left in place exactly once:
/// added when absent, surplus copies (left by an earlier run) deleted. Our
/// chains are declared (which flushes them) and refilled; with `nat` given, the nat
/// PREROUTING and POSTROUTING chains are flushed and refilled. The result is applied
/// in one transaction per table: old rules or new, never a mix.
pub fn restore_script(current: &str, nat: Option<&[Rule]>) -> String {
    let mangle_now = table_section(current, "mangle").unwrap_or("");
    let mut script = format!("*mangle\n:{PRE_CHAIN} - [0:0]\n:{OUT_CHAIN} - [0:0]\n");
    for rule in reply_rules() {
        script.push_str(&format!("{rule}\n"));
    }
    for jump in reply_jumps() {
        let copies = mangle_now
            .lines()
            .filter(|line| line.trim_end() == jump.to_string())
            .count();
        if copies == 0 {
            script.push_str(&format!("{jump}\n"));
        }
        for _ in 1..copies {
            script.push_str(&format!("-D {} {}\n", jump.chain, jump.spec));
        }
    }
    script.push_str("COMMIT\n");
    if let Some(rules) = nat {
        script.push_str("*nat\n-F PREROUTING\n-F POSTROUTING\n");
        for rule in rules {
            script.push_str(&format!("{rule}\n"));
        }
        script.push_str("COMMIT\n");
    }
    script
}

/// The `iptables-restore --noflush` input that only checks (`-C`) that every rule of
/// `rules` is in place: it fails at the first one that is not, and changes nothing.
pub fn check_script(rules: &[Rule]) -> String {
    let mut tables: Vec<&str> = Vec::new();
    for rule in rules {
        if !tables.contains(&rule.table) {
            tables.push(rule.table);
        }
    }
    let mut script = String::new();
    for table in tables {
        script.push_str(&format!("*{table}\n"));
        for rule in rules.iter().filter(|r| r.table == table) {
            script.push_str(&format!("-C {} {}\n", rule.chain, rule.spec));
        }
        script.push_str("COMMIT\n");
    }
    script
}

/// The restore input that puts `tables` back as they were in `saved`
/// (an `iptables-save` dump); a table absent from `saved` is restored empty.
pub fn rollback_script(saved: &str, tables: &[&str]) -> String {
    let mut script = String::new();
    for table in tables {
        match table_section(saved, table) {
            Some(section) => script.push_str(section),
            None => {
                script.push_str(&format!("*{table}\n"));
                for chain in builtin_chains(table) {
                    script.push_str(&format!(":{chain} ACCEPT [0:0]\n"));
                }
            }
        }
        script.push_str("COMMIT\n");
    }
    script
}

/// Whether two `iptables-save` dumps hold the same user chains and rules in `tables`
/// (counters and built-in chain policies ignored; an absent table equals an empty one).
pub fn same_rules(a: &str, b: &str, tables: &[&str]) -> bool {
    tables
        .iter()
        .all(|table| rule_lines(a, table) == rule_lines(b, table))
}

fn rule_lines<'a>(save: &'a str, table: &str) -> Vec<&'a str> {
    let builtin = builtin_chains(table);
    table_section(save, table)
        .unwrap_or("")
        .lines()
        .filter_map(|line| match line.strip_prefix(':') {
            Some(declaration) => declaration
                .split_whitespace()
                .next()
                .filter(|chain| !builtin.contains(chain)),
            None => line.starts_with("-A ").then_some(line),
        })
        .collect()
}

fn builtin_chains(table: &str) -> &'static [&'static str] {
    match table {
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        _ => &[],
    }
}

/// The `*table` ... lines of an `iptables-save` dump, without the `COMMIT` line.
fn table_section<'a>(save: &'a str, table: &str) -> Option<&'a str> {
    let header = format!("*{table}\n");
    let start = save.find(&header)?;
    let rest = &save[start..];
    let end = rest.find("\nCOMMIT").map(|i| i + 1).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests;
