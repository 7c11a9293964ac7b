//! The guard of the egress interface (SPEC section 4: the egress side never opens
//! anything in), in `filter` chains of our own jumped to first from `INPUT` and
//! `FORWARD`: from the egress interface only replies come in (conntrack ESTABLISHED
//! or RELATED: answers to connections the pod opened, and the ICMP errors about them),
//! and, for IPv6, the neighbour discovery and multicast listener queries the link
//! needs; nothing else reaches the pod, whatever address it was sent to (the weak host
//! model would let a packet for `eth0`'s address in on the egress interface), and
//! nothing is forwarded from the egress side to the cluster side unless it is a reply.
//! ICMP redirects from the egress side are dropped before the replies are let in: the
//! kernel counts one that quotes a live connection as RELATED, and it would reroute
//! every connection to that destination through whatever next hop a host of that LAN
//! names. ARP is not IP and is not filtered. Matching packets `RETURN` to the built-in
//! chain, whose other rules and policy still apply; the rest is dropped silently.

use super::{FORWARD_CHAIN, IN_CHAIN, Rule, VrrpFrom};
use crate::config::family::Family;
use crate::sys::vrrp::group;

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
    let redirects = match family {
        Family::V4 => format!("-i {egress} -p icmp -m icmp --icmp-type 5 -j DROP"),
        Family::V6 => format!("-i {egress} -p ipv6-icmp -m icmp6 --icmpv6-type 137 -j DROP"),
    };
    let mut rules = vec![
        filter(IN_CHAIN, redirects.clone()),
        filter(IN_CHAIN, replies.clone()),
    ];
    if family == Family::V6 {
        rules.extend(ICMPV6_IN.iter().map(|kind| {
            filter(
                IN_CHAIN,
                format!("-i {egress} -p ipv6-icmp -m icmp6 --icmpv6-type {kind} -j RETURN"),
            )
        }));
    }
    rules.push(filter(IN_CHAIN, drop.clone()));
    rules.push(filter(FORWARD_CHAIN, redirects));
    rules.push(filter(FORWARD_CHAIN, replies));
    rules.push(filter(FORWARD_CHAIN, drop));
    rules
}

/// The rules that let VRRP advertisements (IP protocol 112, by number: the image has
/// no `/etc/protocols`) in on `egress` for `family`: those sent to the VRRP group, or
/// those from each unicast peer of the family. The daemon checks the rest (TTL 255,
/// checksum, VRID).
pub fn vrrp_rules(family: Family, egress: &str, from: &VrrpFrom) -> Vec<Rule> {
    let rule = |matched: String| Rule {
        table: "filter",
        chain: IN_CHAIN.into(),
        spec: format!("-i {egress} -p 112 {matched} -j RETURN"),
    };
    match from {
        VrrpFrom::Group => vec![rule(format!("-d {}", group(family)))],
        VrrpFrom::Peers(peers) => peers
            .iter()
            .filter(|peer| Family::of(**peer) == family)
            .map(|peer| rule(format!("-s {peer}")))
            .collect(),
    }
}

/// With high availability: nothing arriving on `pod` is forwarded but out of `egress`.
/// A backup holds no source and routes by `pod`'s default route, so a connection sent
/// to it for redirect would otherwise leave by the cluster side, SNATed to a source it
/// does not hold; a master routes everything it redirects out of `egress`.
pub fn standby_rule(pod: &str, egress: &str) -> Rule {
    Rule {
        table: "filter",
        chain: FORWARD_CHAIN.into(),
        spec: format!("-i {pod} ! -o {egress} -j DROP"),
    }
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
            "-A EGRESS-ROUTER-INPUT -i macvlan0 -p icmp -m icmp --icmp-type 5 -j DROP\n\
             -A EGRESS-ROUTER-INPUT -i macvlan0 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n\
             -A EGRESS-ROUTER-INPUT -i macvlan0 -j DROP\n\
             -A EGRESS-ROUTER-FORWARD -i macvlan0 -p icmp -m icmp --icmp-type 5 -j DROP\n\
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

    #[test]
    fn vrrp_comes_in_before_the_drop_from_the_group_or_the_peers_of_its_family() {
        let wanted = |family, vrrp| super::super::Wanted {
            vrrp: Some(vrrp),
            ..super::super::Wanted::guard_only(family, "macvlan0")
        };
        let group = text(&wanted(Family::V4, VrrpFrom::Group).guard());
        assert_eq!(
            group,
            "-A EGRESS-ROUTER-INPUT -i macvlan0 -p icmp -m icmp --icmp-type 5 -j DROP\n\
             -A EGRESS-ROUTER-INPUT -i macvlan0 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n\
             -A EGRESS-ROUTER-INPUT -i macvlan0 -p 112 -d 224.0.0.18 -j RETURN\n\
             -A EGRESS-ROUTER-INPUT -i macvlan0 -j DROP\n\
             -A EGRESS-ROUTER-FORWARD -i macvlan0 -p icmp -m icmp --icmp-type 5 -j DROP\n\
             -A EGRESS-ROUTER-FORWARD -i macvlan0 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n\
             -A EGRESS-ROUTER-FORWARD -i macvlan0 -j DROP\n"
        );
        let router = super::super::Wanted {
            replies: Some(super::super::Inbound::On("eth0".into())),
            ..wanted(Family::V4, VrrpFrom::Group)
        };
        assert!(
            text(&router.guard())
                .ends_with("-A EGRESS-ROUTER-FORWARD -i eth0 ! -o macvlan0 -j DROP\n"),
            "a backup forwards nothing by the cluster side"
        );
        let v6 = text(&wanted(Family::V6, VrrpFrom::Group).guard());
        assert!(
            v6.contains("-p 112 -d ff02::12 -j RETURN\n-A EGRESS-ROUTER-INPUT -i macvlan0 -j DROP"),
            "{v6}"
        );
        let peers = VrrpFrom::Peers(vec![
            "198.51.100.11".parse().unwrap(),
            "fe80::2".parse().unwrap(),
        ]);
        let from_peers = text(&wanted(Family::V4, peers).guard());
        assert!(
            from_peers.contains("-i macvlan0 -p 112 -s 198.51.100.11 -j RETURN\n"),
            "{from_peers}"
        );
        assert!(
            !from_peers.contains("fe80::2") && !from_peers.contains("224.0.0.18"),
            "{from_peers}"
        );
        let without = text(&super::super::Wanted::guard_only(Family::V4, "macvlan0").guard());
        assert_eq!(without, text(&guard_rules(Family::V4, "macvlan0")));
    }
}
