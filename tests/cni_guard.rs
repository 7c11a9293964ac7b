//! The egress side opens nothing into a pod the CNI plugin attached (SPEC sections 4
//! and 7), end to end, as root: ADD guards `net1` (from the egress LAN nothing reaches
//! the pod's listeners, whatever address it was sent to, and nothing is forwarded into
//! the cluster network), while the pod's redirects keep working; CHECK names a missing
//! guard rule; DEL removes the guard with the rest. These tests FAIL (never skip)
//! without root.

mod common;

use common::cni::*;
use common::egress_lan::{assert_closed_from_egress_lan, route_cluster_via_source};
use common::*;

#[test]
fn add_guards_the_attachment_check_names_a_missing_rule_and_del_removes_it() {
    let _x = xtables_shared();
    let t = cni_topology();
    let cluster = Server::tcp_at(&t, "node", "192.0.2.65", 8001, answer_line);
    let listener = Server::tcp_in(&t, "router", 9100);
    let _servers = t.tcp_server(80);
    let pod = Attachment::router(&t, CONFIG);
    let result = pod.add().ok().json();
    route_cluster_via_source(&t);
    assert_closed_from_egress_lan(
        &t,
        &["198.51.100.99:9100", "192.0.2.70:9100", "192.0.2.65:8001"],
    );
    assert_eq!(listener.accepted() + cluster.accepted(), 0);
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        &format!("{SOURCE} 203.0.113.5:80"),
        "a redirect of the attachment",
    );

    let router = t.ns("router");
    cmd(&[
        "ip",
        "netns",
        "exec",
        &router,
        "iptables-nft",
        "-D",
        "EGRESS-ROUTER-INPUT",
        "-i",
        "net1",
        "-j",
        "DROP",
    ]);
    pod.check(Some(&result)).error(
        100,
        &["filter rule missing: -A EGRESS-ROUTER-INPUT -i net1 -j DROP"],
    );

    cmd(&[
        "ip",
        "netns",
        "exec",
        &router,
        "iptables-nft",
        "-A",
        "EGRESS-ROUTER-INPUT",
        "-i",
        "net1",
        "-j",
        "DROP",
    ]);
    pod.check(Some(&result)).ok_silent();

    // a second attachment in the same pod would share (and empty) these chains: refused
    // before it changes anything, in the pod or on the node
    let mut vars = pod.vars("ADD", Some(&pod.netns));
    for (key, value) in vars.iter_mut() {
        match key.as_str() {
            "CNI_IFNAME" => *value = "net2".into(),
            "CNI_CONTAINERID" => *value = container_id(2),
            _ => {}
        }
    }
    let (pod_before, node_before) = (t.snapshot("router"), t.snapshot("node"));
    run_plugin(&pod.node, &vars, CONFIG, "a second ADD".into()).error(
        100,
        &[
            "already has an egress-router setup",
            "one egress-router attachment a pod",
        ],
    );
    assert_same(
        &pod_before,
        &t.snapshot("router"),
        "the pod after a refused second ADD",
    );
    assert_same(
        &node_before,
        &t.snapshot("node"),
        "the node after a refused second ADD",
    );
    pod.check(Some(&result)).ok_silent();

    pod.del().ok_silent();
    let left = cmd(&[
        "ip",
        "netns",
        "exec",
        &router,
        "iptables-nft-save",
        "-t",
        "filter",
    ]);
    assert!(
        !left.contains("EGRESS-ROUTER"),
        "DEL left the guard:\n{left}"
    );
}
