//! High availability (SPEC section 12): a backup's setup is all but the source and its
//! routes; a takeover adds those alone (no duplicate address detection); a release
//! removes them and brings the cluster side's default route back.

use super::*;
use crate::setup::release::release;
use netlink_packet_route::route::RouteHeader;

/// The IPv4 router's intent in `mode` with high availability on.
fn ha(mode: RouterMode) -> Intent {
    let mut config = RouterConfig::from_vars(
        &crate::config::vars::Vars::from_pairs([
            ("EGRESS_SOURCE", "198.51.100.99"),
            ("EGRESS_GATEWAY", "198.51.100.1"),
            ("EGRESS_DESTINATION", "203.0.113.7"),
            ("EGRESS_HA_VRID", "51"),
        ]),
        Some(mode),
    )
    .unwrap();
    config.metrics = crate::config::metrics_address::MetricsAddress::Off;
    Intent::router(&config)
}

fn without_firewall(mut steps: Vec<Step>) -> Vec<Step> {
    steps.retain(|s| !matches!(s, Step::Firewall { .. }));
    steps
}

#[test]
fn init_with_ha_prepares_all_but_the_address_and_its_routes() {
    let intent = ha(RouterMode::Init);
    assert!(!intent.families[0].held);
    let planned = without_firewall(plan(&intent, &fresh()).unwrap());
    assert_eq!(
        planned,
        vec![
            Step::LinkUp(MAC),
            Step::AddRoute(netlink::in_table(&pod_default(), REPLY_TABLE)),
            Step::AddReplyRule(Family::V4),
            Step::SetSysctl(Sysctl {
                key: IP_FORWARD.into(),
                value: "1".into()
            }),
        ]
    );
    assert!(announcements(&intent, &fresh()).is_empty());
    let prepared = v4(fresh(), |f| {
        f.reply_routes = vec![netlink::in_table(&pod_default(), REPLY_TABLE)];
        f.reply_rule = true;
        f.forwarding = "1".into();
    });
    let prepared = Observed {
        egress: link(MAC, true),
        ..prepared
    };
    assert_eq!(problems(&intent, &prepared), Vec::<String>::new());
    let leftover = v4(prepared, |f| f.source = Some(AddressState::Usable));
    assert_eq!(
        problems(&intent, &leftover),
        ["macvlan0 holds 198.51.100.99 while on standby"]
    );
}

#[test]
fn a_takeover_adds_the_address_without_dad_its_routes_and_nothing_else() {
    let backup = ha(RouterMode::Init);
    let takeover = backup.takeover(Family::V4);
    assert!(takeover.firewalls.is_empty() && takeover.families[0].held);
    let prepared = v4(
        Observed {
            egress: link(MAC, true),
            ..fresh()
        },
        |f| {
            f.reply_routes = vec![netlink::in_table(&pod_default(), REPLY_TABLE)];
            f.reply_rule = true;
            f.forwarding = "1".into();
        },
    );
    assert_eq!(
        plan(&takeover, &prepared).unwrap(),
        vec![
            Step::AddHeldAddress {
                index: MAC,
                source: v4_pair().source
            },
            Step::AddRoute(netlink::host_route(MAC, ip("198.51.100.1"))),
            Step::DeleteRoute(pod_default()),
            Step::AddRoute(our_default()),
        ]
    );
    assert_eq!(announcements(&takeover, &prepared).len(), 1);
}

#[test]
fn a_release_removes_the_routes_then_the_address_and_restores_the_pod_default() {
    let backup = ha(RouterMode::Init);
    let host = netlink::host_route(MAC, ip("198.51.100.1"));
    let master = v4(done(), |f| f.gateway_route = Some(host.clone()));
    let main = u32::from(RouteHeader::RT_TABLE_MAIN);
    assert_eq!(
        release(&backup, &master),
        vec![
            Step::DeleteRoute(our_default()),
            Step::AddRoute(netlink::in_table(
                &netlink::in_table(&pod_default(), REPLY_TABLE),
                main
            )),
            Step::DeleteRoute(host),
            Step::DeleteAddress {
                index: MAC,
                source: v4_pair().source
            },
        ]
    );
    // A backup has nothing to give up.
    let standby = v4(done(), |f| {
        f.source = None;
        f.main_defaults = vec![pod_default()];
    });
    assert!(release(&backup, &standby).is_empty());
}

#[test]
fn without_ha_nothing_changes() {
    let intent = config(RouterMode::Init);
    assert!(intent.families.iter().all(|f| f.held && f.dad));
    assert!(intent.firewalls.iter().all(|w| w.vrrp.is_none()));
}
