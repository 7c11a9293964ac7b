use std::net::IpAddr;

use super::*;
use crate::config::redirect::parse_destinations;
use crate::config::router::{BackendChoice, EgressPair, RouterConfig, RouterMode, SourceAddress};
use crate::setup::firewall::{Inbound, Wanted};
use crate::setup::intent::PodSide;
use crate::setup::observe::ObservedFirewall;
use crate::setup::problems;
use crate::sys::netlink::Link;

const POD: u32 = 2;
const MAC: u32 = 3;
const IP_FORWARD: &str = "net/ipv4/ip_forward";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn pair(source: &str, prefix_len: u8, gateway: &str) -> EgressPair {
    EgressPair {
        source: SourceAddress {
            address: ip(source),
            prefix_len,
        },
        gateway: ip(gateway),
    }
}

fn v4_pair() -> EgressPair {
    pair("198.51.100.99", 32, "198.51.100.1")
}

fn v6_pair() -> EgressPair {
    pair("2001:db8:1::99", 64, "2001:db8:1::1")
}

/// The router's intent in `mode` for `egress`, redirecting `destinations`.
fn router(mode: RouterMode, egress: Vec<EgressPair>, destinations: &str) -> Intent {
    Intent::router(&RouterConfig {
        egress,
        mode,
        destinations: match destinations {
            "" => Vec::new(),
            text => parse_destinations(text).unwrap(),
        },
        backend: BackendChoice::Auto,
        metrics: crate::config::metrics_address::MetricsAddress::Off,
        allow_unresolved: false,
        ha: None,
    })
}

/// The IPv4-only router's intent in `mode`.
fn config(mode: RouterMode) -> Intent {
    router(mode, vec![v4_pair()], "")
}

fn eth0(rp_filter: &str) -> Vec<PodLink> {
    vec![PodLink {
        name: "eth0".into(),
        link: link(POD, true),
        rp_filter: rp_filter.into(),
    }]
}

fn link(index: u32, up: bool) -> Link {
    Link {
        index,
        mac: [2, 0, 0, 0, 0, index as u8],
        up,
    }
}

fn without_source(mut route: RouteMessage) -> RouteMessage {
    route.attributes.retain(|a| {
        !matches!(
            a,
            netlink_packet_route::route::RouteAttribute::PrefSource(_)
        )
    });
    route
}

fn pod_default() -> RouteMessage {
    without_source(netlink::default_route(
        POD,
        ip("192.0.2.65"),
        ip("192.0.2.70"),
    ))
}

fn pod_default6() -> RouteMessage {
    without_source(netlink::default_route(
        POD,
        ip("2001:db8:9::1"),
        ip("2001:db8:9::70"),
    ))
}

fn our_default() -> RouteMessage {
    netlink::default_route(MAC, ip("198.51.100.1"), ip("198.51.100.99"))
}

fn our_default6() -> RouteMessage {
    netlink::default_route(MAC, ip("2001:db8:1::1"), ip("2001:db8:1::99"))
}

/// One family as the cluster hands the pod over: no address, default via eth0.
fn fresh_family(pod_default: RouteMessage) -> ObservedFamily {
    ObservedFamily {
        source: None,
        disabled: false,
        unsettled: Vec::new(),
        gateway_via_egress: false,
        gateway_route: None,
        main_defaults: vec![pod_default],
        reply_routes: Vec::new(),
        reply_rule: false,
        forwarding: "0".into(),
        gateway_neighbour: None,
        prefix_routes: Vec::new(),
    }
}

/// The firewalls of a pod whose egress interface has IPv6 on (`ipv6`) or off: IPv4's
/// always read, IPv6's only then.
fn firewalls(ipv6: bool) -> Vec<ObservedFirewall> {
    let read = ObservedFirewall {
        dump: Some(String::new()),
        missing: Vec::new(),
    };
    vec![
        read.clone(),
        if ipv6 {
            read
        } else {
            ObservedFirewall::default()
        },
    ]
}

/// One family whose setup is in place.
fn done_family(ours: RouteMessage, pod_default: RouteMessage) -> ObservedFamily {
    ObservedFamily {
        source: Some(AddressState::Usable),
        gateway_via_egress: true,
        gateway_route: None,
        main_defaults: vec![ours],
        reply_routes: vec![netlink::in_table(&pod_default, REPLY_TABLE)],
        reply_rule: true,
        forwarding: "1".into(),
        ..fresh_family(pod_default)
    }
}

/// A pod as the cluster hands it over: macvlan0 down without address, default via eth0.
fn fresh() -> Observed {
    Observed {
        egress: link(MAC, false),
        pod_links: eth0("0"),
        rp_filter_all: "0".into(),
        egress_unsettled: Vec::new(),
        families: vec![fresh_family(pod_default())],
        firewalls: firewalls(false),
    }
}

/// A pod whose whole setup is in place.
fn done() -> Observed {
    Observed {
        egress: link(MAC, true),
        pod_links: eth0("2"),
        rp_filter_all: "1".into(),
        egress_unsettled: Vec::new(),
        families: vec![done_family(our_default(), pod_default())],
        firewalls: firewalls(false),
    }
}

/// `observed` with its IPv4 family changed by `change`.
fn v4(mut observed: Observed, change: impl FnOnce(&mut ObservedFamily)) -> Observed {
    change(&mut observed.families[0]);
    observed
}

/// The planned steps but the firewall script, which starts every plan.
fn steps(observed: &Observed) -> Vec<Step> {
    let mut planned = plan(&config(RouterMode::Init), observed).unwrap();
    assert!(
        matches!(planned.first(), Some(Step::Firewall { .. })),
        "every plan starts with the firewall script"
    );
    planned.remove(0);
    planned
}

#[test]
fn a_fresh_pod_gets_every_piece_in_order() {
    assert_eq!(
        steps(&fresh()),
        vec![
            Step::AddAddress {
                index: MAC,
                source: v4_pair().source,
                prefix_route: true,
            },
            Step::LinkUp(MAC),
            Step::AddRoute(netlink::host_route(MAC, ip("198.51.100.1"))),
            Step::AddRoute(netlink::in_table(&pod_default(), REPLY_TABLE)),
            Step::DeleteRoute(pod_default()),
            Step::AddRoute(our_default()),
            Step::AddReplyRule(Family::V4),
            Step::SetSysctl(Sysctl {
                key: IP_FORWARD.into(),
                value: "1".into()
            }),
        ]
    );
}

#[test]
fn a_complete_setup_needs_no_step_and_has_no_problem() {
    assert_eq!(steps(&done()), Vec::new());
    assert_eq!(
        problems(&config(RouterMode::Init), &done()),
        Vec::<String>::new()
    );
}

#[test]
fn an_address_from_ipam_does_not_count_as_done() {
    // macvlan0 up with 198.51.100.50/24: the gateway is reached through macvlan0
    let ipam = v4(
        Observed {
            egress: link(MAC, true),
            ..fresh()
        },
        |f| f.gateway_via_egress = true,
    );
    assert_eq!(
        steps(&ipam),
        vec![
            Step::AddAddress {
                index: MAC,
                source: v4_pair().source,
                prefix_route: true,
            },
            Step::AddRoute(netlink::in_table(&pod_default(), REPLY_TABLE)),
            Step::DeleteRoute(pod_default()),
            Step::AddRoute(our_default()),
            Step::AddReplyRule(Family::V4),
            Step::SetSysctl(Sysctl {
                key: IP_FORWARD.into(),
                value: "1".into()
            }),
        ]
    );
}

#[test]
fn each_missing_piece_alone_gets_its_own_step() {
    let without_src = netlink::default_route(MAC, ip("198.51.100.1"), ip("198.51.100.50"));
    let cases: Vec<(&str, Observed, Vec<Step>)> = vec![
        (
            "address",
            v4(done(), |f| f.source = None),
            vec![Step::AddAddress {
                index: MAC,
                source: v4_pair().source,
                prefix_route: true,
            }],
        ),
        (
            "link",
            Observed {
                egress: link(MAC, false),
                ..done()
            },
            vec![Step::LinkUp(MAC)],
        ),
        (
            "gateway route",
            v4(done(), |f| f.gateway_via_egress = false),
            vec![Step::AddRoute(netlink::host_route(MAC, ip("198.51.100.1")))],
        ),
        (
            "default route with another source",
            v4(done(), |f| f.main_defaults = vec![without_src.clone()]),
            vec![
                Step::DeleteRoute(without_src),
                Step::AddRoute(our_default()),
            ],
        ),
        (
            "a second default route",
            v4(done(), |f| {
                f.main_defaults = vec![our_default(), pod_default()]
            }),
            vec![
                Step::DeleteRoute(our_default()),
                Step::DeleteRoute(pod_default()),
                Step::AddRoute(our_default()),
            ],
        ),
        (
            "reply rule",
            v4(done(), |f| f.reply_rule = false),
            vec![Step::AddReplyRule(Family::V4)],
        ),
        (
            "forwarding",
            v4(done(), |f| f.forwarding = "0".into()),
            vec![Step::SetSysctl(Sysctl {
                key: IP_FORWARD.into(),
                value: "1".into(),
            })],
        ),
    ];
    for (case, observed, want) in cases {
        assert_eq!(steps(&observed), want, "{case}");
        assert_eq!(
            problems(&config(RouterMode::Init), &observed).len(),
            1,
            "{case}"
        );
    }
}

#[test]
fn a_default_route_without_the_preferred_source_is_replaced() {
    let plain = without_source(our_default());
    let seen = v4(done(), |f| f.main_defaults = vec![plain.clone()]);
    assert_eq!(
        steps(&seen),
        vec![Step::DeleteRoute(plain), Step::AddRoute(our_default())]
    );
    assert_eq!(
        netlink::route_pref_source(&our_default()),
        Some(ip("198.51.100.99"))
    );
}

#[test]
fn an_emptied_reply_table_is_refilled_from_eth0_defaults_only_while_they_exist() {
    let restarted = v4(done(), |f| f.reply_routes = Vec::new());
    let err = plan(&config(RouterMode::Init), &restarted).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("eth0 has no default route") && message.contains("4552"),
        "{message}"
    );
    let other = netlink::default_route(9, ip("192.0.2.129"), ip("192.0.2.130"));
    let fresh_pod = v4(fresh(), |f| {
        f.main_defaults = vec![pod_default(), other.clone()]
    });
    let planned = steps(&fresh_pod);
    let copies: Vec<&Step> = planned
        .iter()
        .filter(|s| matches!(s, Step::AddRoute(r) if netlink::route_table(r) == REPLY_TABLE))
        .collect();
    assert_eq!(
        copies,
        vec![&Step::AddRoute(netlink::in_table(
            &pod_default(),
            REPLY_TABLE
        ))]
    );
    assert!(planned.contains(&Step::DeleteRoute(other)));
}

#[test]
fn without_any_eth0_default_route_setup_is_refused() {
    let seen = v4(fresh(), |f| f.main_defaults = Vec::new());
    let message = plan(&config(RouterMode::Init), &seen)
        .unwrap_err()
        .to_string();
    assert!(message.contains("main table defaults: none"), "{message}");
}

#[test]
fn proxy_modes_leave_forwarding_alone() {
    for mode in [RouterMode::HttpProxy, RouterMode::DnsProxy] {
        let steps = plan(&config(mode), &fresh()).unwrap();
        assert!(matches!(steps.first(), Some(Step::Firewall { .. })));
        assert!(!steps.iter().any(|s| matches!(s, Step::SetSysctl(_))));
        let off = v4(done(), |f| f.forwarding = "0".into());
        assert_eq!(problems(&config(mode), &off), Vec::<String>::new());
    }
}

#[test]
fn strict_reverse_path_filtering_is_loosened_on_eth0_only() {
    for (all, pod, expect) in [
        ("1", "0", true),
        ("0", "1", true),
        ("2", "1", false),
        ("0", "0", false),
        ("1", "2", false),
    ] {
        let seen = Observed {
            rp_filter_all: all.into(),
            pod_links: eth0(pod),
            ..done()
        };
        let set = steps(&seen);
        let loosened = set
            == vec![Step::SetSysctl(Sysctl {
                key: "net/ipv4/conf/eth0/rp_filter".into(),
                value: "2".into(),
            })];
        assert_eq!(loosened, expect, "all={all} eth0={pod}: {set:?}");
        let found = problems(&config(RouterMode::Init), &seen);
        assert_eq!(
            found.iter().any(|p| p.contains("rp_filter")),
            expect,
            "{found:?}"
        );
    }
}

#[test]
fn problems_name_every_missing_piece_at_once() {
    let found = problems(&config(RouterMode::Init), &fresh());
    let text = found.join("; ");
    for needle in [
        "macvlan0 does not have address 198.51.100.99",
        "macvlan0 is down",
        "route to gateway 198.51.100.1 does not use macvlan0",
        "default route is not `via 198.51.100.1 dev macvlan0 src 198.51.100.99` (found: default via 192.0.2.65 dev eth0)",
        "ip rule `fwmark 0x400000/0x400000 lookup 4552` is missing",
        "reply table 4552 has no route via eth0",
        "net.ipv4.ip_forward is 0",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    assert_eq!(found.len(), 7, "{text}");
}

#[test]
fn steps_read_like_commands() {
    let shown: Vec<String> = steps(&fresh()).iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "add address 198.51.100.99/32 to #3",
            "bring #3 up",
            "add route 198.51.100.1/32 dev #3",
            "add route default via 192.0.2.65 dev #2 table 4552",
            "delete route default via 192.0.2.65 dev #2",
            "add route default via 198.51.100.1 dev #3 src 198.51.100.99",
            "add rule fwmark 0x400000/0x400000 lookup 4552 priority 4552",
            "set sysctl net/ipv4/ip_forward=1",
        ]
    );
}

#[test]
fn missing_rules_and_surplus_jumps_are_named() {
    let intent = config(RouterMode::Init);
    let rules = firewall::all_rules(&intent.firewalls[0]);
    let mut seen = done();
    seen.firewalls[0].missing = vec![rules[0].clone(), rules[6].clone()];
    assert_eq!(
        problems(&intent, &seen),
        vec![
            format!("filter rule missing: {}", rules[0]),
            format!("mangle rule missing: {}", rules[6]),
        ]
    );
    let mut twice = done();
    twice.firewalls[0].dump = Some("*mangle\n-A PREROUTING -j EGRESS-ROUTER-PREROUTING\n-A PREROUTING -j EGRESS-ROUTER-PREROUTING\nCOMMIT\n".into());
    assert_eq!(problems(&intent, &twice).len(), 1);
    let mut ipv6_on = done();
    ipv6_on.firewalls = firewalls(true);
    ipv6_on.firewalls[1].missing = firewall::guard_rules(Family::V6, "macvlan0");
    let named = problems(&intent, &ipv6_on);
    assert_eq!(named.len(), 9, "{named:?}");
    assert!(
        named[0].starts_with("ip6tables filter rule missing: -A EGRESS-ROUTER-INPUT -i macvlan0"),
        "an IPv4-only router guards an egress interface with IPv6 on in IPv6 too: {named:?}"
    );
}

#[test]
fn a_plugin_pod_without_a_cluster_default_has_nothing_to_keep() {
    let mut intent = Intent {
        egress: "net1".into(),
        pod: PodSide::AllButEgress,
        ..config(RouterMode::HttpProxy)
    };
    intent.firewalls[0] = Wanted {
        family: Family::V4,
        egress: "net1".into(),
        replies: Some(Inbound::NotOn("net1".into())),
        nat: None,
        names: Vec::new(),
        vrrp: None,
    };
    intent.families[0].replies_required = false;
    let alone = v4(
        Observed {
            pod_links: Vec::new(),
            ..fresh()
        },
        |f| f.main_defaults = Vec::new(),
    );
    let planned = plan(&intent, &alone).unwrap();
    assert!(
        !planned.contains(&Step::AddReplyRule(Family::V4)),
        "{planned:?}"
    );
    assert!(
        planned.contains(&Step::AddRoute(our_default())),
        "{planned:?}"
    );
    let after = v4(
        Observed {
            pod_links: Vec::new(),
            ..done()
        },
        |f| {
            f.reply_routes = Vec::new();
            f.reply_rule = false;
        },
    );
    assert!(
        problems(&intent, &after).is_empty(),
        "{:?}",
        problems(&intent, &after)
    );
}

#[test]
fn only_a_default_route_through_the_cluster_side_counts_as_kept() {
    // a route to one network through eth0 (of something else using table 4552) takes
    // replies to clients in no other network back
    let mut partial = netlink::in_table(&pod_default(), REPLY_TABLE);
    partial.header.destination_prefix_length = 24;
    let seen = v4(fresh(), |f| f.reply_routes = vec![partial.clone()]);
    assert!(
        steps(&seen).contains(&Step::AddRoute(netlink::in_table(
            &pod_default(),
            REPLY_TABLE
        ))),
        "{:?}",
        steps(&seen)
    );
    let after = v4(done(), |f| f.reply_routes = vec![partial]);
    assert_eq!(
        problems(&config(RouterMode::Init), &after),
        vec!["reply table 4552 has no route via eth0".to_string()]
    );
}

mod ha;
mod ipv6;

#[test]
fn the_egress_interface_answers_arp_only_for_its_own_addresses() {
    let setting = |name: &str, value: &str| Sysctl {
        key: format!("net/ipv4/conf/macvlan0/{name}"),
        value: value.into(),
    };
    let loose = Observed {
        egress_unsettled: vec![
            (setting("arp_ignore", "1"), "0".into()),
            (setting("arp_announce", "2"), "0".into()),
        ],
        ..fresh()
    };
    let planned = plan(&config(RouterMode::Init), &loose).unwrap();
    assert!(matches!(planned[0], Step::Firewall { .. }), "{planned:?}");
    assert_eq!(planned[1], Step::SetSysctl(setting("arp_ignore", "1")));
    assert_eq!(planned[2], Step::SetSysctl(setting("arp_announce", "2")));
    let named = problems(
        &config(RouterMode::Init),
        &Observed {
            egress_unsettled: loose.egress_unsettled.clone(),
            ..done()
        },
    );
    assert_eq!(
        named,
        [
            "net.ipv4.conf.macvlan0.arp_ignore is 0, not 1",
            "net.ipv4.conf.macvlan0.arp_announce is 0, not 2"
        ]
    );
}
