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

use crate::destination::Destination;

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
/// jumps into our chains exist already, so that they are never added twice. Our
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
        if !mangle_now
            .lines()
            .any(|line| line.trim_end() == jump.to_string())
        {
            script.push_str(&format!("{jump}\n"));
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
mod tests {
    use super::*;
    use crate::destination::parse_destinations;

    fn rules_text(rules: &[Rule]) -> String {
        rules.iter().map(|r| format!("{r}\n")).collect()
    }

    #[test]
    fn nat_rules_match_the_contract_format_in_entry_order() {
        let destinations = parse_destinations(
            "80 tcp 203.0.113.5\n8080 tcp 203.0.113.6 80\n53 udp 203.0.113.5\n203.0.113.7",
        )
        .unwrap();
        let rules = nat_rules("198.51.100.99".parse().unwrap(), &destinations);
        assert_eq!(
            rules_text(&rules),
            "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5\n\
             -A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 203.0.113.6:80\n\
             -A PREROUTING -i eth0 -p udp --dport 53 -j DNAT --to-destination 203.0.113.5\n\
             -A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7\n\
             -A POSTROUTING -j SNAT --to-source 198.51.100.99\n"
        );
        assert!(rules.iter().all(|r| r.table == "nat"));
    }

    #[test]
    fn sctp_redirects_and_the_plugin_interfaces_render() {
        let destinations = crate::destination::parse_cni_destinations(&[
            "80 SCTP 203.0.113.5".into(),
            "8080 sctp 203.0.113.6 80".into(),
        ])
        .unwrap();
        let source = "192.0.2.99".parse().unwrap();
        assert_eq!(
            rules_text(&nat_rules(source, &destinations)),
            "-A PREROUTING -i eth0 -p sctp --dport 80 -j DNAT --to-destination 203.0.113.5\n\
             -A PREROUTING -i eth0 -p sctp --dport 8080 -j DNAT --to-destination 203.0.113.6:80\n\
             -A POSTROUTING -j SNAT --to-source 192.0.2.99\n"
        );
        let plugin = nat_rules_on(NatInterfaces::plugin("net1"), source, &destinations[..1]);
        assert_eq!(
            rules_text(&plugin),
            "-A PREROUTING ! -i net1 -p sctp --dport 80 -j DNAT --to-destination 203.0.113.5\n\
             -A POSTROUTING -o net1 -j SNAT --to-source 192.0.2.99\n"
        );
    }

    #[test]
    fn a_fresh_namespace_gets_chains_jumps_and_nat_in_one_script() {
        let nat = nat_rules(
            "198.51.100.99".parse().unwrap(),
            &parse_destinations("203.0.113.7").unwrap(),
        );
        let script = restore_script("", Some(&nat));
        assert_eq!(
            script,
            "*mangle\n\
             :EGRESS-ROUTER-PREROUTING - [0:0]\n\
             :EGRESS-ROUTER-OUTPUT - [0:0]\n\
             -A EGRESS-ROUTER-PREROUTING -i eth0 -m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x400000/0x400000\n\
             -A EGRESS-ROUTER-PREROUTING -m conntrack --ctdir REPLY -m connmark --mark 0x400000/0x400000 -j CONNMARK --restore-mark --nfmask 0x400000 --ctmask 0x400000\n\
             -A EGRESS-ROUTER-OUTPUT -m conntrack --ctdir REPLY -m connmark --mark 0x400000/0x400000 -j CONNMARK --restore-mark --nfmask 0x400000 --ctmask 0x400000\n\
             -A PREROUTING -j EGRESS-ROUTER-PREROUTING\n\
             -A OUTPUT -j EGRESS-ROUTER-OUTPUT\n\
             COMMIT\n\
             *nat\n-F PREROUTING\n-F POSTROUTING\n\
             -A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7\n\
             -A POSTROUTING -j SNAT --to-source 198.51.100.99\n\
             COMMIT\n"
        );
    }

    #[test]
    fn existing_jumps_are_not_added_again_and_proxy_modes_leave_nat_alone() {
        let current = "# Generated by iptables-save\n*mangle\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                       -A PREROUTING -j EGRESS-ROUTER-PREROUTING\n-A OUTPUT -j EGRESS-ROUTER-OUTPUT\nCOMMIT\n\
                       *nat\n-A PREROUTING -j DNAT --to-destination 203.0.113.9\nCOMMIT\n";
        let script = restore_script(current, None);
        assert!(
            !script.contains("-A PREROUTING -j EGRESS-ROUTER-PREROUTING"),
            "{script}"
        );
        assert!(!script.contains("-A OUTPUT -j"), "{script}");
        assert!(!script.contains("*nat"), "{script}");
        assert!(script.contains(":EGRESS-ROUTER-PREROUTING - [0:0]"));
    }

    #[test]
    fn a_jump_in_another_table_does_not_count() {
        let current = "*nat\n-A PREROUTING -j EGRESS-ROUTER-PREROUTING\nCOMMIT\n*mangle\nCOMMIT\n";
        assert!(
            restore_script(current, None).contains("-A PREROUTING -j EGRESS-ROUTER-PREROUTING\n")
        );
    }

    #[test]
    fn rollback_restores_saved_tables_and_empties_absent_ones() {
        let saved = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DNAT --to-destination 203.0.113.9\nCOMMIT\n";
        assert_eq!(
            rollback_script(saved, &["nat", "mangle"]),
            "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DNAT --to-destination 203.0.113.9\nCOMMIT\n\
             *mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
        );
    }

    #[test]
    fn same_rules_ignores_counters_and_empty_tables_but_not_rules() {
        let a = "*nat\n:PREROUTING ACCEPT [3:180]\n-A PREROUTING -j DNAT --to-destination 203.0.113.9\nCOMMIT\n";
        let b = "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DNAT --to-destination 203.0.113.9\nCOMMIT\n";
        assert!(same_rules(a, b, &["nat", "mangle"]));
        let c = "*mangle\n:EGRESS-ROUTER-OUTPUT - [0:0]\nCOMMIT\n";
        assert!(!same_rules(a, &format!("{a}{c}"), &["mangle"]));
        assert!(!same_rules(a, "*nat\nCOMMIT\n", &["nat"]));
    }

    #[test]
    fn all_rules_lists_reply_routing_then_nat() {
        let nat = nat_rules(
            "198.51.100.99".parse().unwrap(),
            &parse_destinations("203.0.113.7").unwrap(),
        );
        let all = all_rules(Some(&nat));
        assert_eq!(all.len(), 3 + 2 + 2);
        assert_eq!(
            all.last().unwrap().spec,
            "-j SNAT --to-source 198.51.100.99"
        );
        assert_eq!(all_rules(None).len(), 5);
    }
}
