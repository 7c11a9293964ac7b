//! CNI plugin `routed` on a plain L2 network, as root (SPEC section 11): the egress
//! LAN of the CNI topology (`common::cni`: the node's `uplink0` beside the gateway,
//! the node's own default route through another uplink) learns the source only by
//! ARP (NDP for IPv6): without `proxyArp` nobody answers for it and replies are lost,
//! with it the node answers at `uplink0`'s address and traffic leaves from the source
//! whatever the node's default route is; two pods at once; DEL leaves no rule, route,
//! proxy entry or chain of the plugin on the node. FAILS (never skips) without root.

mod common;

use common::cni::*;
use common::*;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A `routed` configuration of `addresses` via `gateway`, with `proxyArp` as given.
fn routed(addresses: Value, gateway: &str, proxy_arp: bool) -> String {
    json!({
        "cniVersion": "0.4.0",
        "name": "egress",
        "type": "egress-router",
        "interfaceType": "routed",
        "interfaceArgs": {"proxyArp": proxy_arp},
        "ip": {"addresses": addresses, "gateway": gateway},
    })
    .to_string()
}

fn from_ns(ns: &str, to: &str) -> Result<String, String> {
    let (ns, to) = (ns.to_string(), to.parse::<SocketAddr>().unwrap());
    std::thread::spawn(move || {
        enter_netns(&ns);
        tcp_exchange(to)
    })
    .join()
    .unwrap()
}

/// The node's rules, routes of every table, proxy entries and nat rules.
fn node_pieces(t: &Topology) -> String {
    let mut text = String::new();
    for line in [
        "ip -4 rule",
        "ip -4 route show table all",
        "ip neigh show proxy",
        "iptables-save -t nat",
    ] {
        let out = t.sh("node", &line.split(' ').collect::<Vec<_>>());
        text.extend(
            out.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("{}\n", l.split(" [").next().unwrap())),
        );
    }
    text
}

#[test]
fn proxy_arp_answers_for_the_source_on_an_l2_network() {
    let _x = xtables_shared();
    let t = cni_topology();
    let _srv = t.tcp_server(80);
    let extra = ExtraPod::new(&t, "pod2", "pod2", "192.0.2.193", "192.0.2.198");
    let before = node_pieces(&t);
    let router = t.ns("router");

    let silent = Attachment::router(&t, &routed(json!(["198.51.100.99/24"]), GATEWAY, false));
    silent.add().ok();
    let got = from_ns(&router, "203.0.113.5:80");
    assert!(
        got.is_err(),
        "without proxyArp the gateway finds no one for the source: {got:?}"
    );
    silent.del().ok_silent();

    let pod = Attachment::router(&t, &routed(json!(["198.51.100.99/24"]), GATEWAY, true));
    let result = pod.add().ok().json();
    expect_reply(
        &t,
        from_ns(&router, "203.0.113.5:80"),
        "198.51.100.99 203.0.113.5:80",
        "the pod with proxyArp",
    );
    let uplink = link_mac(&t.ns("node"), "uplink0");
    let neighbour = t.sh(
        "gw",
        &["ip", "neigh", "show", "198.51.100.99", "dev", "lan0"],
    );
    assert!(
        neighbour.contains(&uplink),
        "the gateway reaches the source at uplink0's MAC {uplink}: {neighbour}"
    );
    let proxies = t.sh("node", &["ip", "neigh", "show", "proxy"]);
    assert!(proxies.contains("198.51.100.99 dev uplink0"), "{proxies}");
    pod.check(Some(&result)).ok_silent();

    let second = Attachment {
        netns: extra.netns(),
        container: container_id(2),
        pod: "second-pod".into(),
        config: routed(json!(["198.51.100.98/24"]), GATEWAY, true),
        ..pod.clone()
    };
    second.add().ok();
    expect_reply(
        &t,
        from_ns(&extra.name, "203.0.113.5:80"),
        "198.51.100.98 203.0.113.5:80",
        "the second pod",
    );
    expect_reply(
        &t,
        from_ns(&router, "203.0.113.5:80"),
        "198.51.100.99 203.0.113.5:80",
        "the first pod still",
    );

    t.sh(
        "node",
        &[
            "ip",
            "neigh",
            "del",
            "proxy",
            "198.51.100.99",
            "dev",
            "uplink0",
        ],
    );
    pod.check(Some(&result)).error(
        100,
        &["node: ip neigh proxy 198.51.100.99 dev uplink0 is missing (proxyArp)"],
    );

    pod.del().ok_silent();
    expect_reply(
        &t,
        from_ns(&extra.name, "203.0.113.5:80"),
        "198.51.100.98 203.0.113.5:80",
        "the second pod after the first's DEL",
    );
    second.del().ok_silent();
    assert_eq!(
        node_pieces(&t),
        before,
        "DEL leaves the node's rules, routes, proxies and nat as they were"
    );
    assert_no_node_leftovers(&t, "routed DEL");
}

#[test]
fn ipv6_source_with_proxy_ndp() {
    let _x = xtables_shared();
    let t = cni_topology();
    common::ipv6::enable(&t);
    let _srv = Server::tcp_in_netns(&t.ns("server"), "2001:db8:2::5", 80, answer_line);
    let config = routed(
        json!(["198.51.100.99/24", "2001:db8:1::99/64"]),
        "198.51.100.1,2001:db8:1::1",
        true,
    );
    let pod = Attachment::router(&t, &config);
    let result = pod.add().ok().json();
    let got = from_ns(&t.ns("router"), "[2001:db8:2::5]:80").expect("IPv6 to the server");
    assert_eq!(common::ipv6::peer(&got), "2001:db8:1::99", "{got}");
    let proxies = t.sh("node", &["ip", "-6", "neigh", "show", "proxy"]);
    assert!(proxies.contains("2001:db8:1::99 dev uplink0"), "{proxies}");
    pod.check(Some(&result)).ok_silent();
    pod.del().ok_silent();
    let proxies = t.sh("node", &["ip", "-6", "neigh", "show", "proxy"]);
    assert!(!proxies.contains("2001:db8:1::99"), "{proxies}");
    let rules = t.sh("node", &["ip", "-6", "rule"]);
    assert!(!rules.contains("2001:db8:1::99"), "{rules}");
}
