//! The IPv6 half of the plan: dual-stack and IPv6-only routers.

use super::*;

/// A dual-stack pod as the cluster hands it over: both families' defaults via eth0.
fn fresh_dual() -> Observed {
    let setting = |key: &str, value: &str| Sysctl {
        key: format!("net/ipv6/conf/macvlan0/{key}"),
        value: value.into(),
    };
    let ipv6 = ObservedFamily {
        unsettled: vec![
            (setting("accept_ra", "0"), "1".into()),
            (setting("autoconf", "0"), "1".into()),
        ],
        ..fresh_family(pod_default6())
    };
    Observed {
        families: vec![fresh_family(pod_default()), ipv6],
        firewalls: firewalls(true),
        ..fresh()
    }
}

fn dual(destinations: &str) -> Intent {
    router(RouterMode::Init, vec![v4_pair(), v6_pair()], destinations)
}

#[test]
fn a_dual_stack_pod_waits_for_dad_before_any_route_then_sets_each_family() {
    let planned = plan(&dual("80 tcp 2001:db8:2::5"), &fresh_dual()).unwrap();
    let shown: Vec<String> = planned.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "apply 16 firewall lines",
            "apply 20 IPv6 firewall lines",
            "set sysctl net/ipv6/conf/macvlan0/accept_ra=0",
            "set sysctl net/ipv6/conf/macvlan0/autoconf=0",
            "add address 198.51.100.99/32 to #3",
            "add address 2001:db8:1::99/64 to #3",
            "bring #3 up",
            "wait for duplicate address detection of 2001:db8:1::99 on macvlan0",
            "add route 198.51.100.1/32 dev #3",
            "add route default via 192.0.2.65 dev #2 table 4552",
            "delete route default via 192.0.2.65 dev #2",
            "add route default via 198.51.100.1 dev #3 src 198.51.100.99",
            "add rule fwmark 0x400000/0x400000 lookup 4552 priority 4552",
            "set sysctl net/ipv4/ip_forward=1",
            "add route 2001:db8:1::1/128 dev #3",
            "add route default via 2001:db8:9::1 dev #2 table 4552",
            "delete route default via 2001:db8:9::1 dev #2",
            "add route default via 2001:db8:1::1 dev #3 src 2001:db8:1::99",
            "add IPv6 rule fwmark 0x400000/0x400000 lookup 4552 priority 4552",
            "set sysctl net/ipv6/conf/all/forwarding=1",
        ]
    );
    let Some(Step::Firewall { script, .. }) = planned.get(1) else {
        panic!("the IPv6 script is the second step of the plan")
    };
    assert!(
        script.contains(
            "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 2001:db8:2::5\n"
        ) && script.contains("-A POSTROUTING -j SNAT --to-source 2001:db8:1::99\n"),
        "{script}"
    );
    let found = problems(&dual("80 tcp 2001:db8:2::5"), &fresh_dual()).join("; ");
    for needle in [
        "macvlan0 does not have address 2001:db8:1::99",
        "the main table's IPv6 default route is not `via 2001:db8:1::1 dev macvlan0 src 2001:db8:1::99`",
        "ip -6 rule `fwmark 0x400000/0x400000 lookup 4552` is missing",
        "reply table 4552 has no IPv6 route via eth0",
        "net.ipv6.conf.all.forwarding is 0, not 1",
        "net.ipv6.conf.macvlan0.accept_ra is 1, not 0",
        "net.ipv6.conf.macvlan0.autoconf is 1, not 0",
    ] {
        assert!(found.contains(needle), "{needle:?} not in {found}");
    }
}

#[test]
fn a_link_local_gateway_needs_no_host_route_and_ipv6_replies_are_kept_when_present() {
    let intent = router(
        RouterMode::HttpProxy,
        vec![pair("2001:db8:1::99", 64, "fe80::1")],
        "",
    );
    assert!(intent.families[0].gateway_link_local());
    let mut seen = fresh_dual();
    seen.families.remove(0);
    // what observe reports for a link-local gateway: on the egress interface
    seen.families[0].gateway_via_egress = true;
    let shown: Vec<String> = plan(&intent, &seen)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        vec![
            "apply 8 firewall lines",
            "apply 16 IPv6 firewall lines",
            "set sysctl net/ipv6/conf/macvlan0/accept_ra=0",
            "set sysctl net/ipv6/conf/macvlan0/autoconf=0",
            "add address 2001:db8:1::99/64 to #3",
            "bring #3 up",
            "wait for duplicate address detection of 2001:db8:1::99 on macvlan0",
            "add route default via 2001:db8:9::1 dev #2 table 4552",
            "delete route default via 2001:db8:9::1 dev #2",
            "add route default via fe80::1 dev #3 src 2001:db8:1::99",
            "add IPv6 rule fwmark 0x400000/0x400000 lookup 4552 priority 4552",
        ],
        "an IPv6-only proxy router: no IPv4 step but the guard, no rp_filter, no forwarding"
    );
}

#[test]
fn ipv6_replies_are_required_only_when_ipv6_clients_are_redirected() {
    let no_v6_default = Observed {
        families: vec![
            fresh_family(pod_default()),
            ObservedFamily {
                main_defaults: Vec::new(),
                ..fresh_family(pod_default6())
            },
        ],
        ..fresh()
    };
    assert!(plan(&dual("80 tcp 203.0.113.5"), &no_v6_default).is_ok());
    let message = plan(&dual("80 tcp 2001:db8:2::5"), &no_v6_default)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("eth0 has no IPv6 default route to keep"),
        "{message}"
    );
}

#[test]
fn a_tentative_address_is_waited_for_and_a_duplicate_refused_before_any_change() {
    let intent = dual("");
    let mut tentative = fresh_dual();
    tentative.families[1].source = Some(AddressState::Tentative);
    let planned = plan(&intent, &tentative).unwrap();
    assert!(!planned.iter().any(
        |s| matches!(s, Step::AddAddress { source, .. } if source.address == ip("2001:db8:1::99"))
    ));
    assert!(
        planned
            .iter()
            .any(|s| matches!(s, Step::AwaitAddress { .. }))
    );
    assert!(problems(&intent, &tentative).contains(
        &"2001:db8:1::99 on macvlan0 is still tentative (duplicate address detection)".to_string()
    ));
    let mut duplicate = fresh_dual();
    duplicate.families[1].source = Some(AddressState::Duplicate);
    let err = plan(&intent, &duplicate).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        "EGRESS_SOURCE: 2001:db8:1::99 is already used by another host on the network of macvlan0 (duplicate address detection failed)"
    );
}

#[test]
fn ipv6_switched_off_on_the_egress_interface_is_switched_on_first() {
    let mut off = fresh_dual();
    off.families[1].disabled = true;
    let planned = plan(&dual(""), &off).unwrap();
    let after_the_guard = planned
        .iter()
        .find(|s| !matches!(s, Step::Firewall { .. }))
        .unwrap();
    assert_eq!(
        after_the_guard,
        &Step::SetSysctl(Sysctl {
            key: "net/ipv6/conf/macvlan0/disable_ipv6".into(),
            value: "0".into(),
        }),
        "the first change to the interface"
    );
}

#[test]
fn a_complete_dual_stack_setup_needs_no_step() {
    let seen = Observed {
        families: vec![
            done_family(our_default(), pod_default()),
            done_family(our_default6(), pod_default6()),
        ],
        firewalls: firewalls(true),
        ..done()
    };
    let planned = plan(&dual(""), &seen).unwrap();
    assert!(
        planned.iter().all(|s| matches!(s, Step::Firewall { .. })),
        "{planned:?}"
    );
    assert_eq!(problems(&dual(""), &seen), Vec::<String>::new());
}
