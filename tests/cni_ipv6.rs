//! CNI plugin `egress-router` with IPv6, as root (SPEC sections 7 and 10): a dual-stack
//! attachment, an IPv6-only one with a link-local gateway, and a second address of a
//! family refused.
//!
//! As in every `cni_*` suite, the binary is invoked exactly as a runtime does it
//! (`CNI_*` variables, the configuration on stdin, the answer on stdout), in the node
//! namespace of the CNI variant of the topology (`common::cni`), against real pod
//! namespaces, with real traffic. These tests FAIL (never skip) without root.

mod common;

use common::cni::*;
use common::*;
use serde_json::json;

/// A dual-stack attachment (SPEC section 10): one address a family, the IPv6 gateway
/// found on the node (its default route via uplink0), IPv6 destinations in the
/// operator's forms.
const DUAL_STACK: &str = r#"{
    "cniVersion": "0.4.0",
    "name": "egress",
    "type": "egress-router",
    "ip": {
        "addresses": ["198.51.100.99/24", "2001:db8:1::99/64"],
        "gateway": "198.51.100.1",
        "destinations": ["7000 TCP 203.0.113.5", "7000 TCP 2001:db8:2::5/64", "7001 tcp 2001:db8:2::5 7000"]
    }
}"#;

#[test]
fn a_dual_stack_attachment_redirects_both_families_and_del_restores_both() {
    use common::ipv6::{self, POD6, SERVER6, SOURCE6, peer};
    let _x = xtables_shared();
    let t = cni_topology();
    ipv6::enable(&t);
    let _v4 = t.tcp_server(7000);
    let _v6 = Server::tcp_at(&t, "server", SERVER6, 7000, answer_line);
    let defaults6 = cmd(&[
        "ip",
        "-n",
        &t.ns("router"),
        "-6",
        "route",
        "show",
        "default",
    ]);
    let pod = Attachment::router(&t, DUAL_STACK);

    let result = pod.add().ok().json();
    assert_eq!(
        result["ips"],
        json!([
            {"version": "4", "interface": 0, "address": "198.51.100.99/24", "gateway": GATEWAY},
            {"version": "6", "interface": 0, "address": "2001:db8:1::99/64", "gateway": "2001:db8:1::1"},
        ]),
        "{result}"
    );
    assert_eq!(
        result["routes"],
        json!([
            {"dst": "0.0.0.0/0", "gw": GATEWAY},
            {"dst": "::/0", "gw": "2001:db8:1::1"},
        ]),
        "{result}"
    );
    let seen = |target: &str| {
        peer(
            &t.tcp_from_client(target)
                .unwrap_or_else(|e| panic!("{target}: {e}\n{}", t.dump())),
        )
    };
    assert_eq!(seen("192.0.2.70:7000"), SOURCE);
    assert_eq!(seen(&format!("[{POD6}]:7000")), SOURCE6);
    assert_eq!(seen(&format!("[{POD6}]:7001")), SOURCE6);
    pod.check(Some(&result)).ok_silent();

    let router = t.ns("router");
    cmd(&[
        "ip",
        "netns",
        "exec",
        &router,
        "ip6tables",
        "-t",
        "nat",
        "-D",
        "EGRESS-ROUTER-SNAT",
        "-o",
        "net1",
        "-j",
        "SNAT",
        "--to-source",
        SOURCE6,
    ]);
    pod.check(Some(&result)).error(
        100,
        &["ip6tables nat rule missing: -A EGRESS-ROUTER-SNAT -o net1 -j SNAT --to-source 2001:db8:1::99"],
    );

    pod.del().ok_silent();
    assert_eq!(
        cmd(&["ip", "-n", &router, "-6", "route", "show", "default"]),
        defaults6,
        "DEL puts the pod's IPv6 default route back"
    );
    let left = cmd(&["ip", "netns", "exec", &router, "ip6tables-save"]);
    assert!(!left.contains("EGRESS-ROUTER"), "{left}");
    assert!(
        !cmd(&["ip", "-n", &router, "-6", "rule"]).contains("4552"),
        "the IPv6 reply rule is gone"
    );
}

#[test]
fn a_second_address_of_a_family_is_refused_by_add_naming_its_field() {
    let _x = xtables_shared();
    let t = cni_topology();
    let config = r#"{
        "cniVersion": "0.4.0",
        "name": "egress",
        "type": "egress-router",
        "podIP": {
            "egress-*": {"addresses": ["198.51.100.99/24", "2001:db8:1::99/64", "198.51.100.98/24"],
                         "gateway": "198.51.100.1"}
        }
    }"#;
    let before = t.snapshot("router");
    let pod = Attachment {
        pod: "egress-0".into(),
        ..Attachment::router(&t, config)
    };
    pod.add().error(
        2,
        &["podIP[\"egress-*\"].addresses[2]: 198.51.100.98/24 is a second IPv4 address: one address a family per attachment is supported"],
    );
    assert_same(&before, &t.snapshot("router"), "after the refused ADD");
    assert_no_node_leftovers(&t, "after the refused ADD");
}

#[test]
fn an_ipv6_only_attachment_with_a_link_local_gateway_redirects_ipv6() {
    use common::ipv6::{self, POD6, SERVER6, SOURCE6, peer};
    let _x = xtables_shared();
    let t = cni_topology();
    ipv6::enable(&t);
    let _v6 = Server::tcp_at(&t, "server", SERVER6, 7000, answer_line);
    let ipv4_routes = cmd(&[
        "ip",
        "-n",
        &t.ns("router"),
        "-4",
        "route",
        "show",
        "table",
        "all",
    ]);
    let config = r#"{
        "cniVersion": "1.0.0",
        "name": "egress",
        "type": "egress-router",
        "ip": {
            "addresses": ["2001:db8:1::99/64"],
            "gateway": "fe80::1",
            "destinations": ["7000 tcp 2001:db8:2::5"]
        }
    }"#;
    let pod = Attachment::router(&t, config);
    let result = pod.add().ok().json();
    assert_eq!(
        result["ips"],
        json!([{"interface": 0, "address": "2001:db8:1::99/64", "gateway": "fe80::1"}]),
        "{result}"
    );
    assert_eq!(
        result["routes"],
        json!([{"dst": "::/0", "gw": "fe80::1"}]),
        "{result}"
    );
    let answer = t
        .tcp_from_client(&format!("[{POD6}]:7000"))
        .unwrap_or_else(|e| panic!("{e}\n{}", t.dump()));
    assert_eq!(peer(&answer), SOURCE6);
    assert_eq!(
        cmd(&[
            "ip",
            "-n",
            &t.ns("router"),
            "-4",
            "route",
            "show",
            "table",
            "all"
        ]),
        ipv4_routes,
        "IPv4 routing untouched"
    );
    pod.check(Some(&result)).ok_silent();
    pod.del().ok_silent();
}
