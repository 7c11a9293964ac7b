use netlink_packet_route::route::RouteMessage;

use super::*;
use crate::cni::code;
use crate::cni::routed::firewall::NODE_CHAIN;

const NODE_END: u32 = 20;
const MASTER: u32 = 2;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn intent(proxy_arp: bool) -> NodeIntent {
    NodeIntent {
        container: "c1".into(),
        node_end: "egv0123456789ab".into(),
        master: "eth0".into(),
        sources: vec![
            (ip("192.0.2.50"), ip("192.0.2.1")),
            (ip("2001:db8:10::50"), ip("fe80::1")),
        ],
        proxy_arp,
    }
}

fn link(index: u32, up: bool) -> Link {
    Link {
        index,
        mac: [2, 0, 0, 0, 0, index as u8],
        up,
    }
}

const EMPTY_NAT: &str =
    "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n";

fn fresh_family(source: &str) -> NodeFamily {
    NodeFamily {
        source: ip(source),
        holder: Holder::Nobody,
        host_route: None,
        rules: Vec::new(),
        table_routes: Vec::new(),
        used_tables: BTreeSet::new(),
        nat_dump: EMPTY_NAT.into(),
        proxies: Vec::new(),
        orphans: Vec::new(),
    }
}

/// A node as ADD finds it: the node end down, forwarding off, nothing of ours.
fn fresh() -> NodeObserved {
    NodeObserved {
        node_end: Some(link(NODE_END, false)),
        master: Some(link(MASTER, true)),
        sysctls: wanted_sysctls(&intent(true))
            .into_iter()
            .map(|(k, _)| {
                let off = if k.ends_with("disable_ipv6") {
                    "1"
                } else {
                    "0"
                };
                (k, off.to_string())
            })
            .collect(),
        families: vec![fresh_family("192.0.2.50"), fresh_family("2001:db8:10::50")],
    }
}

fn rule(source: &str, table: u32, protocol: u8) -> SourceRuleSpec {
    SourceRuleSpec {
        source: ip(source),
        table,
        priority: NODE_RULE_PRIORITY,
        protocol,
    }
}

fn nat_with(source: &str) -> String {
    let len = if source.contains(':') { 128 } else { 32 };
    format!(
        "*nat\n:POSTROUTING ACCEPT [0:0]\n:{NODE_CHAIN} - [0:0]\n-A POSTROUTING -j {NODE_CHAIN}\n-A POSTROUTING -o eth0 -j MASQUERADE\n-A {NODE_CHAIN} -s {source}/{len} -o eth0 -m comment --comment \"egress-router c1\" -j ACCEPT\nCOMMIT\n"
    )
}

/// The node after ADD: every piece in place.
fn done() -> NodeObserved {
    let mut node = fresh();
    node.node_end = Some(link(NODE_END, true));
    node.sysctls.iter_mut().for_each(|(k, v)| {
        *v = if k.ends_with("disable_ipv6") {
            "0"
        } else {
            "1"
        }
        .into()
    });
    for (found, (gateway, table)) in node
        .families
        .iter_mut()
        .zip([("192.0.2.1", 4_553_000), ("fe80::1", 4_553_000)])
    {
        let source = found.source.to_string();
        found.holder = Holder::This;
        found.host_route = Some(host_route(NODE_END, found.source));
        found.rules = vec![rule(&source, table, NODE_PROTOCOL)];
        found.table_routes = vec![table_default(MASTER, ip(gateway), table)];
        found.used_tables = [table].into();
        found.nat_dump = nat_with(&source);
        found.proxies = vec![MASTER];
    }
    node
}

#[test]
fn a_fresh_node_gets_every_piece_in_order() {
    let steps = plan(&intent(true), &fresh()).unwrap();
    let shown: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert_eq!(shown[0], format!("bring #{NODE_END} up"));
    assert_eq!(
        &shown[1..6],
        [
            "set sysctl net/ipv4/conf/egv0123456789ab/forwarding=1",
            "set sysctl net/ipv4/conf/eth0/forwarding=1",
            "set sysctl net/ipv6/conf/egv0123456789ab/disable_ipv6=0",
            "set sysctl net/ipv6/conf/all/forwarding=1",
            "set sysctl net/ipv6/conf/eth0/proxy_ndp=1",
        ]
    );
    assert_eq!(shown[6], format!("add route 192.0.2.50/32 dev #{NODE_END}"));
    assert_eq!(
        shown[7],
        format!("add route default via 192.0.2.1 dev #{MASTER} table 4553000")
    );
    assert_eq!(
        shown[8],
        "add rule from 192.0.2.50 lookup 4553000 priority 4553 proto 69"
    );
    assert_eq!(shown[9], "apply 2 firewall lines");
    assert_eq!(
        shown[10],
        format!("add neighbour proxy 192.0.2.50 on #{MASTER}")
    );
    assert_eq!(
        shown[12],
        format!("add route default via fe80::1 dev #{MASTER} table 4553000")
    );
    assert_eq!(
        shown[13],
        "add IPv6 rule from 2001:db8:10::50 lookup 4553000 priority 4553 proto 69"
    );
    assert_eq!(steps.len(), 16);
    assert!(problems(&intent(true), &fresh()).len() >= 10);
}

#[test]
fn the_node_exemption_is_taken_back_rule_by_rule_never_by_restoring_the_table() {
    let steps = plan(&intent(false), &fresh()).unwrap();
    let Some(Step::Firewall { undo, .. }) =
        steps.iter().find(|s| matches!(s, Step::Firewall { .. }))
    else {
        panic!("no firewall step in {steps:?}");
    };
    let FirewallUndo::Rules(script) = undo else {
        panic!("the node's nat table would be restored whole: {undo:?}");
    };
    assert!(
        script.contains(&format!("-D {NODE_CHAIN} -s 192.0.2.50/32")),
        "{script}"
    );
    assert!(script.contains(&format!("-X {NODE_CHAIN}")), "{script}");
}

#[test]
fn a_node_in_place_needs_nothing_and_has_no_problem() {
    assert_eq!(plan(&intent(true), &done()).unwrap(), Vec::new());
    assert_eq!(problems(&intent(true), &done()), Vec::<String>::new());
    let mut without_proxy = done();
    without_proxy.families[0].proxies.clear();
    assert_eq!(
        plan(&intent(false), &without_proxy).unwrap(),
        Vec::new(),
        "proxies only with proxyArp"
    );
}

#[test]
fn the_table_is_the_lowest_free_one() {
    let mut node = fresh();
    node.families[0].used_tables = [4_553_000, 4_553_001, 4_553_003].into();
    let steps = plan(&intent(false), &node).unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s.to_string()
                == "add rule from 192.0.2.50 lookup 4553002 priority 4553 proto 69")
    );
    assert_eq!(free_table(&NODE_TABLES.collect()), None);
}

#[test]
fn a_rule_to_a_table_without_the_route_is_replaced() {
    let mut node = done();
    node.families[0].table_routes.clear();
    node.families[0]
        .rules
        .push(rule("192.0.2.50", 4_553_007, 0));
    let shown: Vec<String> = plan(&intent(true), &node)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            "delete rule from 192.0.2.50 lookup 4553000 priority 4553 proto 69",
            "delete rule from 192.0.2.50 lookup 4553007 priority 4553 proto 0",
            &format!("add route default via 192.0.2.1 dev #{MASTER} table 4553001"),
            "add rule from 192.0.2.50 lookup 4553001 priority 4553 proto 69",
        ]
    );
    let found = problems(&intent(true), &node);
    assert!(found[0].starts_with("ip rule `from 192.0.2.50 lookup TABLE priority 4553 proto 69` with `default via 192.0.2.1 dev eth0` in TABLE is missing"), "{found:?}");
}

#[test]
fn a_source_another_attachment_holds_is_refused_before_any_change() {
    let mut node = fresh();
    node.families[1].holder = Holder::Other {
        interface: "egvaaaaaaaaaaaa".into(),
        container: "c0".into(),
    };
    let error = plan(&intent(false), &node).unwrap_err();
    assert_eq!(code::of(&error), code::TRY_AGAIN_LATER);
    assert!(error.to_string().contains("2001:db8:10::50 is routed on this node to egvaaaaaaaaaaaa, the attachment of container c0"), "{error}");
    node.families[1].holder = Holder::Foreign {
        interface: "cali1234".into(),
    };
    let error = plan(&intent(false), &node).unwrap_err();
    assert_eq!(code::of(&error), code::PLUGIN_FAILURE);
    assert!(
        error.to_string().contains("which this plugin did not make"),
        "{error}"
    );
}

#[test]
fn problems_name_each_piece() {
    let mut node = done();
    node.node_end = Some(link(NODE_END, false));
    node.sysctls[1].1 = "0".into();
    node.families[0].holder = Holder::Nobody;
    node.families[0].nat_dump = EMPTY_NAT.into();
    node.families[1].proxies.clear();
    let found = problems(&intent(true), &node);
    assert_eq!(
        found,
        [
            "egv0123456789ab is down",
            "net.ipv4.conf.eth0.forwarding is 0, not 1",
            "ip route `192.0.2.50 dev egv0123456789ab` is missing",
            &format!("nat rule missing: -A POSTROUTING -j {NODE_CHAIN} (first)"),
            &format!(
                "nat rule missing: -A {NODE_CHAIN} -s 192.0.2.50/32 -o eth0 -m comment --comment \"egress-router c1\" -j ACCEPT"
            ),
            "ip -6 neigh proxy 2001:db8:10::50 dev eth0 is missing (proxyArp)",
        ]
    );
    let mut gone = done();
    gone.node_end = None;
    assert_eq!(
        problems(&intent(true), &gone),
        ["interface egv0123456789ab does not exist on the node"]
    );
}

#[test]
fn teardown_removes_ours_and_leaves_what_another_attachment_holds() {
    let mut node = done();
    node.families[1].holder = Holder::Other {
        interface: "egvaaaaaaaaaaaa".into(),
        container: "c0".into(),
    };
    let orphan: RouteMessage = table_default(MASTER, ip("192.0.2.1"), 4_553_009);
    node.families[0].orphans = vec![orphan];
    let shown: Vec<String> = teardown(&node, true)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            "delete rule from 192.0.2.50 lookup 4553000 priority 4553 proto 69",
            &format!("delete route default via 192.0.2.1 dev #{MASTER} table 4553000"),
            "apply 3 firewall lines",
            &format!("delete neighbour proxy 192.0.2.50 on #{MASTER}"),
            &format!("delete route default via 192.0.2.1 dev #{MASTER} table 4553009"),
        ]
    );
    assert!(
        teardown(&fresh(), true).is_empty(),
        "nothing of ours: nothing to do"
    );
}
