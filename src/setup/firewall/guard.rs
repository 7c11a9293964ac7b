//! The guard of the egress interface (SPEC section 4: the egress side never opens
//! anything in), in `filter` chains of our own jumped to first from `INPUT` and
//! `FORWARD`: from the egress interface only replies come in (conntrack ESTABLISHED
//! or RELATED: answers to connections the pod opened, and the ICMP errors about them),
//! and, for IPv6, the neighbour discovery and multicast listener queries the link
//! needs; nothing else reaches the pod, whatever address it was sent to (the weak host
//! model would let a packet for `eth0`'s address in on the egress interface), and
//! nothing is forwarded from the egress side to the cluster side unless it is a reply.
//! ARP is not IP and is not filtered. Matching packets `RETURN` to the built-in chain,
//! whose other rules and policy still apply; the rest is dropped silently.

use super::{FORWARD_CHAIN, IN_CHAIN, Rule};
use crate::config::family::Family;

/// ICMPv6 types the egress interface must receive unasked: neighbour solicitations
/// (135) and advertisements (136), without which the gateway cannot reach the source,
/// and multicast listener queries (130), without whose answers a switch snooping MLD
/// stops delivering the solicited-node group, and with it the solicitations.
const ICMPV6_IN: [u8; 3] = [135, 136, 130];

/// The guard rules of `egress` for `family`, in order.
pub fn guard_rules(family: Family, egress: &str) -> Vec<Rule> {
    let filter = |chain: &'static str, spec: String| Rule {
        table: "filter",
        chain: chain.into(),
        spec,
    };
    let replies = format!("-i {egress} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN");
    let drop = format!("-i {egress} -j DROP");
    let mut rules = vec![filter(IN_CHAIN, replies.clone())];
    if family == Family::V6 {
        rules.extend(ICMPV6_IN.iter().map(|kind| {
            filter(
                IN_CHAIN,
                format!("-i {egress} -p ipv6-icmp -m icmp6 --icmpv6-type {kind} -j RETURN"),
            )
        }));
    }
    rules.push(filter(IN_CHAIN, drop.clone()));
    rules.push(filter(FORWARD_CHAIN, replies));
    rules.push(filter(FORWARD_CHAIN, drop));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rules: &[Rule]) -> String {
        rules.iter().map(|r| format!("{r}\n")).collect()
    }

    #[test]
    fn only_replies_come_in_and_nothing_but_replies_is_forwarded() {
        assert_eq!(
            text(&guard_rules(Family::V4, "macvlan0")),
            "-A EGRESS-ROUTER-INPUT -i macvlan0 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n\
             -A EGRESS-ROUTER-INPUT -i macvlan0 -j DROP\n\
             -A EGRESS-ROUTER-FORWARD -i macvlan0 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n\
             -A EGRESS-ROUTER-FORWARD -i macvlan0 -j DROP\n"
        );
        assert!(
            guard_rules(Family::V4, "net1")
                .iter()
                .all(|r| r.table == "filter")
        );
    }

    #[test]
    fn ipv6_lets_neighbour_discovery_and_listener_queries_in_before_the_drop() {
        let rules = text(&guard_rules(Family::V6, "net1"));
        let at = |needle: &str| {
            rules
                .find(needle)
                .unwrap_or_else(|| panic!("{needle}: {rules}"))
        };
        for kind in ["135", "136", "130"] {
            assert!(
                at(&format!("--icmpv6-type {kind} -j RETURN"))
                    < at("-A EGRESS-ROUTER-INPUT -i net1 -j DROP"),
                "{rules}"
            );
        }
        assert!(
            !rules.contains("--icmpv6-type 134"),
            "router advertisements stay out"
        );
    }
}
