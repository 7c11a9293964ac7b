//! CNI plugin `egress-router` end to end, as root (SPEC section 7): the binary is
//! invoked exactly as a runtime does it (`CNI_*` variables, the configuration on stdin,
//! the answer on stdout), in the node namespace of the topology of `tests/topology.sh`,
//! against real pod namespaces, with real traffic. These tests FAIL (never skip)
//! without root.
//!
//! The CNI variant of the topology (see `common::cni::cni_topology`): the node gets a second uplink,
//! `uplink1` 192.0.2.129/26, which also carries the node's default route, so that
//! master inference has to choose between two uplinks (and would land on the wrong one
//! if it fell back to the default route); the pod (`router`) starts as a CNI pod
//! does, with `lo` and `eth0` only (the pre-made `macvlan0` is removed).

mod common;

use common::cni::{Attachment, cni_topology, container_id, run_plugin};
use common::*;
use egress_router::cni::host::{Owner, temporary_name};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// The configuration of the hand smoke test: source in uplink0's subnet, no master.
const CONFIG: &str = r#"{
    "cniVersion": "0.4.0",
    "name": "egress",
    "type": "egress-router",
    "ip": {
        "addresses": ["198.51.100.99/24"],
        "gateway": "198.51.100.1",
        "destinations": ["80 TCP 203.0.113.5/30", "203.0.113.7"]
    }
}"#;

/// `ip ARGS...` (or any command) with a clean environment; must succeed; its stdout.
fn cmd(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}",
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The words of `ip -o link show dev DEV` in namespace `ns`, `None` when it is absent.
fn link_line(ns: &str, dev: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "-d", "link", "show", "dev", dev])
        .env_clear()
        .env("PATH", PATH)
        .output()
        .expect("run ip link show");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn link_mac(ns: &str, dev: &str) -> String {
    let line = link_line(ns, dev).unwrap_or_else(|| panic!("{dev} missing in {ns}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == "link/ether")
        .unwrap_or_else(|| panic!("{dev} in {ns} has no MAC: {line}"));
    words[i + 1].to_string()
}

fn link_index(ns: &str, dev: &str) -> String {
    let line = link_line(ns, dev).unwrap_or_else(|| panic!("{dev} missing in {ns}"));
    line.split(':').next().unwrap().trim().to_string()
}

/// The interface index a link hangs off (`net1@if4` -> `4`).
fn link_parent(ns: &str, dev: &str) -> String {
    let line = link_line(ns, dev).unwrap_or_else(|| panic!("{dev} missing in {ns}"));
    let name = line.split(':').nth(1).unwrap().trim();
    name.split_once("@if")
        .unwrap_or_else(|| panic!("{dev} in {ns} has no parent: {line}"))
        .1
        .to_string()
}

fn inets(ns: &str, dev: &str) -> Vec<String> {
    let out = cmd(&["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", dev]);
    out.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "inet")
        .map(|w| w[1].to_string())
        .collect()
}

/// Interfaces of the node named like the plugin's temporary interfaces.
fn node_leftovers(t: &Topology) -> Vec<String> {
    t.sh("node", &["ip", "-o", "link"])
        .lines()
        .filter(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|n| n.trim().starts_with("egr"))
        })
        .map(str::to_string)
        .collect()
}

fn assert_no_node_leftovers(t: &Topology, what: &str) {
    let left = node_leftovers(t);
    assert!(
        left.is_empty(),
        "{what}: the node still has the plugin's interfaces:\n{}",
        left.join("\n")
    );
}

/// `snapshot` (of the pod) without what DEL may leave behind, for comparing the pod
/// after DEL with the pod before ADD. Left out:
/// - `net.ipv4.ip_forward=1` (part `6 sysctl`): forwarding the plugin turned on; other
///   attachments or the pod may rely on it by now. (`net.ipv4.conf.eth0.rp_filter`,
///   set to loose, is not part of a snapshot.)
/// - the `mangle` and `nat` tables themselves with their built-in chains, empty and
///   with policy ACCEPT (parts `4`/`5`, the `*table`, `:CHAIN ACCEPT [0:0]` and `COMMIT`
///   lines): iptables tools create a table on first use and cannot delete one. User
///   chains and rules are compared.
fn without_allowed_leftovers(mut snapshot: Snapshot) -> Snapshot {
    const BUILTIN: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
    for (name, text) in snapshot.parts.iter_mut() {
        let keep = |line: &&str| -> bool {
            if name.starts_with("6 sysctl") {
                return !line.starts_with("net.ipv4.ip_forward");
            }
            if name.contains("iptables") {
                let builtin = BUILTIN
                    .iter()
                    .any(|c| *line == format!(":{c} ACCEPT [0:0]"));
                return !(builtin || *line == "COMMIT" || line.starts_with('*'));
            }
            true
        };
        *text = text
            .lines()
            .filter(keep)
            .map(|l| format!("{l}\n"))
            .collect();
    }
    snapshot
}

/// A further pod namespace beside the topology's `router` (`new`: `eth0` `POD_IP`/26
/// with a default route via the node's end `NODE_IF` `NODE_IP`/26; `bare`: `lo`
/// alone). Removed on drop.
struct ExtraPod {
    name: String,
}

impl ExtraPod {
    fn new(t: &Topology, suffix: &str, node_if: &str, node_ip: &str, pod_ip: &str) -> ExtraPod {
        let pod = ExtraPod::bare(t, suffix);
        let (p, node) = (pod.name.as_str(), t.ns("node"));
        cmd(&[
            "ip", "link", "add", "eth0", "netns", p, "type", "veth", "peer", "name", node_if,
            "netns", &node,
        ]);
        let node_net = format!("{node_ip}/26");
        let pod_net = format!("{pod_ip}/26");
        cmd(&["ip", "-n", &node, "addr", "add", &node_net, "dev", node_if]);
        cmd(&["ip", "-n", &node, "link", "set", node_if, "up"]);
        cmd(&["ip", "-n", p, "addr", "add", &pod_net, "dev", "eth0"]);
        cmd(&["ip", "-n", p, "link", "set", "eth0", "up"]);
        cmd(&["ip", "-n", p, "route", "add", "default", "via", node_ip]);
        pod
    }

    /// A namespace with `lo` alone: a container on the plugin's network only.
    fn bare(t: &Topology, suffix: &str) -> ExtraPod {
        let pod = ExtraPod {
            name: format!("{}-{suffix}", t.prefix),
        };
        let p = pod.name.as_str();
        cmd(&["ip", "netns", "add", p]);
        cmd(&[
            "ip",
            "netns",
            "exec",
            p,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        cmd(&["ip", "-n", p, "link", "set", "lo", "up"]);
        pod
    }

    fn netns(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Deletes the namespace now (the pod is gone).
    fn remove(&self) {
        remove_netns(&self.name);
        assert!(
            !std::path::Path::new(&self.netns()).exists(),
            "namespace {} still exists",
            self.name
        );
    }
}

impl Drop for ExtraPod {
    fn drop(&mut self) {
        remove_netns(&self.name);
    }
}

fn remove_netns(name: &str) {
    if !std::path::Path::new(&format!("/run/netns/{name}")).exists() {
        return;
    }
    let pids = Command::new("ip")
        .args(["netns", "pids", name])
        .env("PATH", PATH)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .env("PATH", PATH)
        .output();
}

/// A file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The main table's default routes of the pod namespace `ns`.
fn default_routes(ns: &str) -> String {
    cmd(&["ip", "-n", ns, "route", "show", "default"])
}

/// ADD's result for `attachment` is well formed for `version` and names the interface
/// as it is in the pod.
fn assert_result(result: &Value, attachment: &Attachment, version: &str, source: &str) {
    assert_eq!(result["cniVersion"], json!(version), "{result}");
    let interfaces = result["interfaces"].as_array().expect("interfaces");
    assert_eq!(interfaces.len(), 1, "one interface: {result}");
    assert_eq!(interfaces[0]["name"], json!("net1"), "{result}");
    assert_eq!(
        interfaces[0]["mac"],
        json!(link_mac(attachment.ns(), "net1")),
        "the MAC of net1 in the pod: {result}"
    );
    assert_eq!(
        interfaces[0]["sandbox"],
        json!(attachment.netns),
        "sandbox is CNI_NETNS: {result}"
    );
    let mut ip = json!({
        "interface": 0,
        "address": source,
        "gateway": GATEWAY,
    });
    if version.starts_with("0.") {
        ip["version"] = json!("4");
    }
    assert_eq!(result["ips"], json!([ip]), "ips: {result}");
    assert_eq!(
        result["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": GATEWAY}]),
        "{result}"
    );
}

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
fn add_fails_when_the_pod_already_has_the_interface() {
    let _x = xtables_shared();
    let t = cni_topology();
    let router = t.ns("router");
    let r = router.as_str();
    // the pod's own net1 (another attachment's, say)
    cmd(&[
        "ip",
        "-n",
        r,
        "link",
        "add",
        "net1",
        "type",
        "veth",
        "peer",
        "name",
        "net1-peer",
    ]);
    cmd(&[
        "ip",
        "-n",
        r,
        "addr",
        "add",
        "203.0.113.200/24",
        "dev",
        "net1",
    ]);
    let mac = link_mac(r, "net1");
    let before = t.snapshot("router");
    let node_before = t.snapshot("node");
    let pod = Attachment::router(&t, CONFIG);

    pod.add().error(100, &["net1"]);
    assert_no_node_leftovers(&t, "failed ADD");
    assert_same(&before, &t.snapshot("router"), "pod after the failed ADD");
    assert_same(
        &node_before,
        &t.snapshot("node"),
        "node after the failed ADD",
    );

    // what the runtime does after a failed ADD
    pod.del().ok_silent();
    assert_eq!(
        link_mac(r, "net1"),
        mac,
        "the pod's own net1 is still there"
    );
    assert_same(&before, &t.snapshot("router"), "pod after DEL");
    pod.check(None)
        .error(100, &["net1 was not made by this container's ADD"]);
}

#[test]
fn a_late_failure_undoes_every_step_and_del_leaves_the_pod_alone() {
    let _x = xtables_shared();
    let t = cni_topology();
    let router = t.ns("router");
    // something else already has a default route in table 4552, where ADD keeps the
    // pod's eth0 default route: that step fails, after the interface was created,
    // moved into the pod, given its address and brought up
    cmd(&[
        "ip",
        "-n",
        &router,
        "route",
        "add",
        "blackhole",
        "default",
        "table",
        "4552",
    ]);
    let before = t.snapshot("router");
    let node_before = t.snapshot("node");
    let pod = Attachment::router(&t, CONFIG);

    let msg = pod.add().error(100, &["4552"]);
    assert!(msg.contains("rolled back"), "{msg}");
    assert_no_node_leftovers(&t, "ADD failed late");
    assert!(
        link_line(pod.ns(), "net1").is_none(),
        "net1 left in the pod"
    );
    assert_same(&before, &t.snapshot("router"), "pod after the failed ADD");
    assert_same(
        &node_before,
        &t.snapshot("node"),
        "node after the failed ADD",
    );

    pod.del().ok_silent();
    assert_same(
        &before,
        &t.snapshot("router"),
        "pod after the DEL that follows a failed ADD",
    );
}

#[test]
fn pod_ip_chooses_by_pod_name() {
    let _x = xtables_shared();
    let t = cni_topology();
    let config = r#"{
        "cniVersion": "0.4.0",
        "name": "egress",
        "type": "egress-router",
        "podIP": {
            "exact-pod": {"addresses": ["198.51.100.98/24"], "gateway": "198.51.100.1"},
            "alpha-*": {"addresses": ["198.51.100.97/24"], "gateway": "198.51.100.1"},
            "alpha-be*": {"addresses": ["198.51.100.96/24"], "gateway": "198.51.100.1",
                          "destinations": ["203.0.113.5"]}
        }
    }"#;
    let before = t.snapshot("router");
    for (pod_name, source) in [
        ("alpha-beta", "198.51.100.96/24"),
        ("alpha-gamma", "198.51.100.97/24"),
        ("exact-pod", "198.51.100.98/24"),
    ] {
        let pod = Attachment {
            pod: pod_name.into(),
            ..Attachment::router(&t, config)
        };
        let result = pod.add().ok().json();
        assert_result(&result, &pod, "0.4.0", source);
        assert_eq!(inets(pod.ns(), "net1"), vec![source], "{pod_name}");
        pod.check(Some(&result)).ok_silent();
        pod.del().ok_silent();
    }

    let _srv = t.tcp_server(80);
    let pod = Attachment {
        pod: "alpha-beta".into(),
        ..Attachment::router(&t, config)
    };
    pod.add().ok();
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.96 203.0.113.5:80",
        "alpha-beta's own destinations and source",
    );
    pod.del().ok_silent();

    let unmatched = Attachment {
        pod: "beta-pod".into(),
        ..Attachment::router(&t, config)
    };
    unmatched.add().error(7, &["podIP", "\"beta-pod\""]);
    assert_no_node_leftovers(&t, "ADD for an unmatched pod");
    assert_same(
        &without_allowed_leftovers(before),
        &without_allowed_leftovers(t.snapshot("router")),
        "pod after the ADD for an unmatched pod",
    );
}

#[test]
fn the_operator_rendered_config_works_end_to_end() {
    let _x = xtables_shared();
    let t = cni_topology();
    let _tcp = t.tcp_server(80);
    let _udp = t.udp_server(80);
    let log = TempFile(PathBuf::from(format!(
        "/var/log/{}-egress-router.log",
        t.prefix
    )));
    // as the cluster network operator renders an EgressRouter CR (redirect mode):
    // upper-case protocols, destinations with a prefix, a bare fallback last, the
    // master named, macvlan in bridge mode, its log settings
    let config = format!(
        r#"{{ "cniVersion": "0.4.0", "type": "egress-router", "name": "egress-router-cni-nad",
  "ip": {{ "addresses": [ "198.51.100.99/24" ],
  "destinations": [ "80 UDP 203.0.113.7/30","8080 TCP 203.0.113.5/30 80","8443 TCP 203.0.113.6/30 443","203.0.113.6" ],
  "gateway": "198.51.100.1" }},
  "interfaceType": "macvlan", "interfaceArgs": {{ "master": "uplink0", "mode": "bridge" }},
  "log_file": "{}", "log_level": "debug" }}"#,
        log.0.display()
    );
    let pod = Attachment::router(&t, &config);
    let result = pod.add().ok().json();
    assert_result(&result, &pod, "0.4.0", "198.51.100.99/24");
    assert_eq!(
        link_parent(pod.ns(), "net1"),
        link_index(&t.ns("node"), "uplink0")
    );

    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:8080"),
        "198.51.100.99 203.0.113.5:80",
        "client -> 192.0.2.70:8080 (8080 TCP 203.0.113.5/30 80)",
    );
    expect_reply(
        &t,
        t.udp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.7:80",
        "client -> 192.0.2.70:80/udp (80 UDP 203.0.113.7/30)",
    );
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.6:80",
        "client -> 192.0.2.70:80/tcp (fallback 203.0.113.6)",
    );
    pod.check(Some(&result)).ok_silent();
    pod.del().ok_silent();

    let logged = std::fs::read_to_string(&log.0).unwrap_or_default();
    for command in ["ADD", "CHECK", "DEL"] {
        let line = format!("{command} container={}: ok", pod.container);
        assert!(
            logged.contains(&line),
            "log_file at debug level must hold {line:?}:\n{logged}"
        );
    }
}

#[test]
fn version_status_and_gc_answer_and_unsupported_versions_are_code_1() {
    let _x = xtables_shared();
    let t = cni_topology();
    let pod = Attachment::router(&t, CONFIG);
    let supported = json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
    // podman (libcni) asks with CNI_NETNS=dummy and the newest version it knows
    let mut vars = pod.vars("VERSION", Some("dummy"));
    vars.retain(|(k, _)| k != "CNI_IFNAME" && k != "CNI_ARGS");
    for (stdin, answered) in [
        (r#"{"cniVersion":"1.0.0"}"#, "1.0.0"),
        (r#"{"cniVersion":"0.4.0"}"#, "0.4.0"),
        ("", "1.0.0"),
    ] {
        let reply = run_plugin(&pod.node, &vars, stdin, format!("VERSION with {stdin:?}")).ok();
        let answer = reply.json();
        assert_eq!(answer["supportedVersions"], supported, "{reply}");
        assert_eq!(answer["cniVersion"], json!(answered), "{reply}");
    }

    // STATUS and GC of CNI 1.1.0, as a runtime sends them: no container, no namespace
    let current = CONFIG.replace("0.4.0", "1.1.0");
    for command in ["STATUS", "GC"] {
        let vars = envs(&[("CNI_COMMAND", command), ("CNI_PATH", "/opt/cni/bin")]);
        let mut config: Value = serde_json::from_str(&current).unwrap();
        if command == "GC" {
            config["cni.dev/valid-attachments"] =
                json!([{"containerID": pod.container, "ifname": "net1"}]);
        }
        let reply = run_plugin(&pod.node, &vars, &config.to_string(), command.into());
        reply.ok_silent();
    }

    let before = t.snapshot("router");
    for version in ["0.2.0", "2.0.0"] {
        let config = CONFIG.replace("0.4.0", version);
        let add = pod.call_with("ADD", Some(&pod.netns), &config);
        add.error(1, &["cniVersion", version]);
        assert_eq!(add.json()["cniVersion"], json!(version), "{add}");
    }
    assert_same(&before, &t.snapshot("router"), "pod after refused ADDs");
    assert_no_node_leftovers(&t, "refused ADDs");
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

/// Whether this kernel can make an ipvlan interface (on the node's uplink0).
fn ipvlan_available(t: &Topology) -> Result<(), String> {
    let out = t.run(
        "node",
        &[
            "ip",
            "link",
            "add",
            "ipvl-probe",
            "link",
            "uplink0",
            "type",
            "ipvlan",
            "mode",
            "l2",
        ],
        &[],
    );
    if out.status.success() {
        t.sh("node", &["ip", "link", "del", "ipvl-probe"]);
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let unsupported = ["Unknown device type", "not supported", "Not supported"];
    assert!(
        unsupported.iter().any(|u| why.contains(u)),
        "creating an ipvlan link failed for another reason than missing support:\n{why}"
    );
    Err(why)
}

#[test]
fn ipvlan_works_or_fails_cleanly_where_the_kernel_lacks_it() {
    let _x = xtables_shared();
    let t = cni_topology();
    let _srv = t.tcp_server(80);
    let config = CONFIG.replace(
        r#""type": "egress-router","#,
        r#""type": "egress-router", "interfaceType": "ipvlan","#,
    );
    assert!(config.contains("ipvlan"));
    let pod = Attachment::router(&t, &config);
    match ipvlan_available(&t) {
        Ok(()) => {
            let result = pod.add().ok().json();
            assert_result(&result, &pod, "0.4.0", "198.51.100.99/24");
            let details = link_line(pod.ns(), "net1").unwrap();
            assert!(details.contains("ipvlan"), "net1 is an ipvlan: {details}");
            expect_reply(
                &t,
                t.tcp_from_client("192.0.2.70:80"),
                "198.51.100.99 203.0.113.5:80",
                "client -> pod over ipvlan",
            );
            pod.check(Some(&result)).ok_silent();
            pod.del().ok_silent();
            assert!(link_line(pod.ns(), "net1").is_none());
        }
        Err(why) => {
            eprintln!(
                "NOTE: ipvlan is not available on this kernel ({why}); \
                 only the error path of interfaceType ipvlan was tested"
            );
            let before = t.snapshot("router");
            let node_before = t.snapshot("node");
            pod.add().error(100, &["ipvlan", "not supported"]);
            assert_no_node_leftovers(&t, "ipvlan ADD");
            assert_same(&before, &t.snapshot("router"), "pod after the ipvlan ADD");
            assert_same(
                &node_before,
                &t.snapshot("node"),
                "node after the ipvlan ADD",
            );
            pod.del().ok_silent();
        }
    }
}

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
