//! CNI plugin `egress-router` CHECK and DEL end to end, as root (SPEC section 7): CHECK
//! naming each missing piece, DEL putting the pod back as it was, also when repeated,
//! when the namespace is gone, and after an interrupted ADD on the node.
//!
//! As in every `cni_*` suite, the binary is invoked exactly as a runtime does it
//! (`CNI_*` variables, the configuration on stdin, the answer on stdout), in the node
//! namespace of the CNI variant of the topology (`common::cni`), against real pod
//! namespaces, with real traffic. These tests FAIL (never skip) without root.

mod common;

use common::cni::*;
use common::*;
use egress_router::cni::host::{Owner, temporary_name};
use serde_json::json;
use std::time::Duration;

#[test]
fn check_passes_when_healthy_and_names_what_is_missing() {
    let _x = xtables_shared();
    let t = cni_topology();
    let pod = Attachment::router(&t, CONFIG);
    let result = pod.add().ok().json();
    let router = t.ns("router");
    let r = router.as_str();

    pod.check(Some(&result)).ok_silent();
    pod.check(None).ok_silent();

    // the default route via net1 deleted
    cmd(&["ip", "-n", r, "route", "del", "default"]);
    pod.check(Some(&result)).error(
        100,
        &[
            "CHECK",
            "default route",
            "via 198.51.100.1 dev net1 src 198.51.100.99",
        ],
    );
    // ... and put back without `src`: named as `ip route` shows it, interface by name
    cmd(&[
        "ip", "-n", r, "route", "add", "default", "via", GATEWAY, "dev", "net1",
    ]);
    pod.check(Some(&result))
        .error(100, &["(found: default via 198.51.100.1 dev net1)"]);
    cmd(&["ip", "-n", r, "route", "del", "default"]);
    cmd(&[
        "ip", "-n", r, "route", "add", "default", "via", GATEWAY, "dev", "net1", "src", SOURCE,
    ]);
    pod.check(Some(&result)).ok_silent();

    // the pod's default route kept for replies (table 4552) flushed, then the fwmark
    // rule deleted too: every trace of reply routing gone, and still named
    cmd(&["ip", "-n", r, "route", "flush", "table", "4552"]);
    pod.check(Some(&result))
        .error(100, &["reply table 4552 has no route via eth0"]);
    cmd(&["ip", "-n", r, "rule", "del", "priority", "4552"]);
    pod.check(Some(&result)).error(
        100,
        &[
            "ip rule `fwmark 0x400000/0x400000 lookup 4552` is missing",
            "reply table 4552 has no route via eth0",
        ],
    );
    cmd(&ip_in(r, RESTORE_REPLY_ROUTE));
    pod.check(Some(&result)).error(
        100,
        &["ip rule `fwmark 0x400000/0x400000 lookup 4552` is missing"],
    );
    cmd(&ip_in(r, RESTORE_REPLY_RULE));
    pod.check(Some(&result)).ok_silent();

    // a NAT rule deleted
    cmd(&[
        "ip",
        "netns",
        "exec",
        r,
        "iptables-nft",
        "-t",
        "nat",
        "-D",
        "EGRESS-ROUTER-SNAT",
        "-o",
        "net1",
        "-j",
        "SNAT",
        "--to-source",
        SOURCE,
    ]);
    pod.check(Some(&result)).error(
        100,
        &["nat rule missing: -A EGRESS-ROUTER-SNAT -o net1 -j SNAT --to-source 198.51.100.99"],
    );
    cmd(&[
        "ip",
        "netns",
        "exec",
        r,
        "iptables-nft",
        "-t",
        "nat",
        "-A",
        "EGRESS-ROUTER-SNAT",
        "-o",
        "net1",
        "-j",
        "SNAT",
        "--to-source",
        SOURCE,
    ]);
    pod.check(Some(&result)).ok_silent();

    // prevResult with another MAC
    let mut wrong = result.clone();
    wrong["interfaces"][0]["mac"] = json!("02:00:5e:00:53:01");
    let mac = link_mac(pod.ns(), "net1");
    pod.check(Some(&wrong)).error(
        100,
        &["net1 has MAC", &mac, "prevResult says 02:00:5e:00:53:01"],
    );

    // the interface gone
    cmd(&["ip", "-n", r, "link", "del", "net1"]);
    pod.check(Some(&result))
        .error(100, &["interface net1 is missing"]);
    // DEL still puts the pod back
    pod.del().ok_silent();
    assert!(
        default_routes(r).starts_with("default via 192.0.2.65 dev eth0"),
        "the pod's default route after DEL: {}",
        default_routes(r)
    );
    let rules = cmd(&["ip", "-n", r, "rule"]);
    assert!(!rules.contains("fwmark"), "ip rule left:\n{rules}");
    let saved = t.sh("router", &["iptables-nft-save"]);
    assert!(!saved.contains("EGRESS-ROUTER"), "chains left:\n{saved}");
}

#[test]
fn del_removes_everything_and_restores_the_pod() {
    let _x = xtables_shared();
    let t = cni_topology();
    let _srv = t.tcp_server(80);
    let pod = Attachment::router(&t, CONFIG);
    let router = t.ns("router");
    let before = without_allowed_leftovers(t.snapshot("router"));
    let node_before = t.snapshot("node");
    let original_default = default_routes(&router);
    assert!(
        original_default.starts_with("default via 192.0.2.65 dev eth0"),
        "{original_default}"
    );

    pod.add().ok();
    assert!(
        default_routes(&router).starts_with("default via 198.51.100.1 dev net1"),
        "ADD moved the default route"
    );
    pod.del().ok_silent();

    assert!(
        link_line(pod.ns(), "net1").is_none(),
        "net1 still in the pod"
    );
    for save in ["iptables-nft-save", "iptables-legacy-save"] {
        let rules = t.sh("router", &[save]);
        assert!(
            !rules.contains("EGRESS-ROUTER"),
            "{save}: our chains are left:\n{rules}"
        );
    }
    let rules = t.sh("router", &["ip", "rule"]);
    assert!(!rules.contains("fwmark"), "ip rule left:\n{rules}");
    let table = t.sh("router", &["ip", "route", "show", "table", "4552"]);
    assert!(table.trim().is_empty(), "table 4552 left:\n{table}");
    assert_eq!(
        default_routes(&router),
        original_default,
        "the pod's default route via eth0 is back"
    );
    assert_same(
        &before,
        &without_allowed_leftovers(t.snapshot("router")),
        "pod after DEL",
    );
    assert_same(&node_before, &t.snapshot("node"), "node after ADD and DEL");

    // repeated, and in every way a runtime may call it when things are gone
    pod.del().ok_silent();
    pod.call_with("DEL", None, CONFIG).ok_silent();
    assert_same(
        &before,
        &without_allowed_leftovers(t.snapshot("router")),
        "pod after more DELs",
    );

    // the pod works as an ordinary pod again: its replies leave by eth0
    let got = t.with_ns("client", || {
        std::net::TcpStream::connect_timeout(
            &"192.0.2.70:80".parse().unwrap(),
            Duration::from_secs(2),
        )
        .map_err(|e| e.kind())
    });
    assert_eq!(
        got.err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the pod itself answers (refuses) on port 80: no DNAT is left"
    );

    // and a second ADD works after DEL
    pod.add().ok();
    pod.check(None).ok_silent();
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.5:80",
        "traffic after DEL and a new ADD",
    );
}

#[test]
fn del_succeeds_when_the_namespace_is_gone() {
    let _x = xtables_shared();
    let t = cni_topology();
    let extra = ExtraPod::new(&t, "pod2", "pod2", "192.0.2.193", "192.0.2.198");
    let pod = Attachment {
        netns: extra.netns(),
        container: container_id(2),
        pod: "gone-pod".into(),
        ..Attachment::router(&t, CONFIG)
    };
    pod.add().ok();
    extra.remove();
    pod.del().ok_silent();
    assert_no_node_leftovers(&t, "DEL of a pod whose namespace is gone");

    // the namespace's mount point left as a plain file (unmounted, not yet removed)
    let stale = TempFile(std::env::temp_dir().join(format!("{}-netns", t.prefix)));
    std::fs::write(&stale.0, b"").unwrap();
    let path = stale.0.display().to_string();
    pod.call_with("DEL", Some(&path), CONFIG).ok_silent();
    pod.call_with("DEL", None, CONFIG).ok_silent();

    // ADD and CHECK on such a path: the container is unknown (code 3)
    let add = pod.call_with("ADD", Some(&path), CONFIG);
    add.error(3, &[&path, "not a network namespace"]);
    let check = pod.call_with("CHECK", Some(&path), CONFIG);
    check.error(3, &[&path, "not a network namespace"]);
    let missing = format!("/run/netns/{}-never", t.prefix);
    pod.call_with("ADD", Some(&missing), CONFIG)
        .error(3, &[&missing]);
    assert_no_node_leftovers(&t, "ADD into a path that is not a namespace");
}

#[test]
fn del_removes_the_node_side_leftover_of_an_interrupted_add_and_nothing_else() {
    let _x = xtables_shared();
    let t = cni_topology();
    let pod = Attachment::router(&t, CONFIG);
    let node = t.ns("node");
    let make = |name: &str, alias: Option<String>| {
        cmd(&[
            "ip", "-n", &node, "link", "add", name, "link", "uplink0", "type", "macvlan", "mode",
            "bridge",
        ]);
        if let Some(alias) = alias {
            cmd(&["ip", "-n", &node, "link", "set", name, "alias", &alias]);
        }
    };
    // this container's ADD, interrupted before its interface moved into the pod
    let ours = temporary_name(&pod.container);
    make(
        &ours,
        Some(
            Owner {
                container: pod.container.clone(),
                replies4: true,
                replies6: false,
            }
            .alias(),
        ),
    );
    // another container's ADD, in progress
    let other = container_id(3);
    let theirs = temporary_name(&other);
    make(
        &theirs,
        Some(
            Owner {
                container: other,
                replies4: true,
                replies6: false,
            }
            .alias(),
        ),
    );

    pod.del().ok_silent();
    assert!(link_line(&node, &ours).is_none(), "{ours} left on the node");
    assert!(
        link_line(&node, &theirs).is_some(),
        "DEL removed {theirs}, another container's"
    );

    // an interface of that name the plugin did not make is left alone too
    make(&ours, None);
    pod.call_with("DEL", None, CONFIG).ok_silent();
    assert!(
        link_line(&node, &ours).is_some(),
        "DEL removed {ours}, which carries no mark of this plugin"
    );
}
