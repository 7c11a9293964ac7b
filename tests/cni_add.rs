//! CNI plugin `egress-router` ADD end to end, as root (SPEC section 7): the master
//! inferred, traffic leaving from the source, the result in each version, the
//! announcements, a container on this network alone, two pods at once.
//!
//! As in every `cni_*` suite, the binary is invoked exactly as a runtime does it
//! (`CNI_*` variables, the configuration on stdin, the answer on stdout), in the node
//! namespace of the CNI variant of the topology (`common::cni`), against real pod
//! namespaces, with real traffic. These tests FAIL (never skip) without root.

mod common;

use common::cni::*;
use common::*;
use serde_json::Value;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn add_infers_the_master_and_traffic_leaves_from_the_source() {
    let _x = xtables_shared();
    let t = cni_topology();
    let _srv = t.tcp_server(80);
    let _other = t.tcp_server(9999);
    let pod = Attachment::router(&t, CONFIG);

    let result = pod.add().ok().json();
    assert_result(&result, &pod, "0.4.0", "198.51.100.99/24");
    assert_eq!(
        link_parent(pod.ns(), "net1"),
        link_index(&t.ns("node"), "uplink0"),
        "net1 must hang off uplink0 (the uplink whose subnet holds the source), not uplink1"
    );
    let details = link_line(pod.ns(), "net1").unwrap();
    assert!(
        details.contains("macvlan mode bridge"),
        "net1 is a macvlan in bridge mode: {details}"
    );
    assert_eq!(inets(pod.ns(), "net1"), vec!["198.51.100.99/24"]);
    assert_no_node_leftovers(&t, "after ADD");

    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.5:80",
        "client -> pod eth0 192.0.2.70:80 (80 TCP 203.0.113.5/30)",
    );
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:9999"),
        "198.51.100.99 203.0.113.7:9999",
        "client -> pod eth0 192.0.2.70:9999 (fallback 203.0.113.7)",
    );
}

#[test]
fn the_result_follows_the_requested_version() {
    let _x = xtables_shared();
    let t = cni_topology();
    for version in ["1.0.0", "0.3.1", "1.1.0"] {
        let config = CONFIG.replace("0.4.0", version);
        let pod = Attachment::router(&t, &config);
        let result = pod.add().ok().json();
        assert_result(&result, &pod, version, "198.51.100.99/24");
        if !version.starts_with("0.") {
            assert!(
                result["ips"][0].get("version").is_none(),
                "{version}: ips carry no version: {result}"
            );
        }
        pod.del().ok_silent();
        assert!(
            link_line(pod.ns(), "net1").is_none(),
            "{version}: net1 left"
        );
    }
}

#[test]
fn add_announces_the_address_at_once_and_returns_within_2_s() {
    let _x = xtables_shared();
    let t = cni_topology();
    let pod = Attachment::router(&t, CONFIG);
    let dump = t.arp_capture();

    let add = pod.add().ok();
    let exited = Instant::now();
    assert!(
        add.took < Duration::from_secs(2),
        "ADD took {:?}: a runtime waits for it",
        add.took
    );
    let mac = link_mac(pod.ns(), "net1");
    let (t_reply, reply) = dump
        .wait_line(
            |l| l.contains("Reply 198.51.100.99 is-at"),
            Duration::from_secs(2),
        )
        .unwrap_or_else(|| panic!("no gratuitous ARP reply on lan0:\n{}", dump.stdout()));
    assert!(
        reply.contains(&mac),
        "the gratuitous ARP reply carries net1's MAC {mac}: {reply}"
    );
    let (t_request, request) = dump
        .wait_line(
            |l| l.contains("who-has 198.51.100.99") && l.contains("tell 198.51.100.99"),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| panic!("no unsolicited ARP request on lan0:\n{}", dump.stdout()));
    assert!(
        request.contains(&mac),
        "the request comes from {mac}: {request}"
    );
    let gap = t_request - t_reply;
    assert!(
        gap >= Duration::from_millis(1500) && gap <= Duration::from_millis(3500),
        "the ARP request came {gap:?} after the reply (want about 2 s):\n{reply}\n{request}"
    );
    assert!(
        exited < t_request,
        "ADD had not returned before the delayed ARP request"
    );
}

#[test]
fn a_container_on_this_network_alone_has_no_routes_to_keep() {
    let _x = xtables_shared();
    let t = cni_topology();
    let _srv = t.tcp_server(80);
    let alone = ExtraPod::bare(&t, "alone");
    let pod = Attachment {
        netns: alone.netns(),
        container: container_id(4),
        pod: "alone".into(),
        ..Attachment::router(&t, CONFIG)
    };
    let before = cmd(&["ip", "-n", &alone.name, "route", "show", "table", "all"]);
    let result = pod.add().ok().json();
    assert_result(&result, &pod, "0.4.0", "198.51.100.99/24");
    let rules = cmd(&["ip", "-n", &alone.name, "rule"]);
    assert!(
        !rules.contains("fwmark"),
        "nothing to keep, no rule:\n{rules}"
    );
    pod.check(Some(&result)).ok_silent();

    // its own connections leave from the source
    let name = alone.name.clone();
    let got = thread::spawn(move || {
        enter_netns(&name);
        tcp_exchange("203.0.113.5:80".parse().unwrap())
    })
    .join()
    .unwrap();
    expect_reply(
        &t,
        got,
        "198.51.100.99 203.0.113.5:80",
        "the container alone -> 203.0.113.5:80",
    );

    cmd(&["ip", "-n", &alone.name, "route", "del", "default"]);
    pod.check(Some(&result)).error(100, &["default route"]);

    pod.del().ok_silent();
    assert!(link_line(&alone.name, "net1").is_none());
    assert_eq!(
        cmd(&["ip", "-n", &alone.name, "route", "show", "table", "all"]),
        before,
        "routes after DEL"
    );
    assert_no_node_leftovers(&t, "DEL of the container alone");
}

#[test]
fn concurrent_adds_for_two_pods_each_get_their_own_interface() {
    let _x = xtables_shared();
    let t = cni_topology();
    let _srv = t.tcp_server(80);
    let extra = ExtraPod::new(&t, "pod2", "pod2", "192.0.2.193", "192.0.2.198");
    let first = Attachment::router(&t, CONFIG);
    let second = Attachment {
        netns: extra.netns(),
        container: container_id(2),
        pod: "second-pod".into(),
        config: CONFIG.replace("198.51.100.99/24", "198.51.100.98/24"),
        ..Attachment::router(&t, CONFIG)
    };
    let start = Arc::new(Barrier::new(2));
    let runs: Vec<_> = [first.clone(), second.clone()]
        .into_iter()
        .map(|pod| {
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                pod.add()
            })
        })
        .collect();
    let results: Vec<Value> = runs
        .into_iter()
        .map(|r| r.join().unwrap().ok().json())
        .collect();
    assert_result(&results[0], &first, "0.4.0", "198.51.100.99/24");
    assert_result(&results[1], &second, "0.4.0", "198.51.100.98/24");
    assert_ne!(
        link_mac(first.ns(), "net1"),
        link_mac(second.ns(), "net1"),
        "each pod has its own interface"
    );
    assert_no_node_leftovers(&t, "concurrent ADDs");
    first.check(Some(&results[0])).ok_silent();
    second.check(Some(&results[1])).ok_silent();

    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.5:80",
        "client -> first pod",
    );
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.198:80"),
        "198.51.100.98 203.0.113.5:80",
        "client -> second pod",
    );

    // concurrent DELs too
    let runs: Vec<_> = [first.clone(), second.clone()]
        .into_iter()
        .map(|pod| thread::spawn(move || pod.del()))
        .collect();
    for run in runs {
        run.join().unwrap().ok_silent();
    }
    assert!(link_line(first.ns(), "net1").is_none());
    assert!(link_line(second.ns(), "net1").is_none());
}
