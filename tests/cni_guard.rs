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
