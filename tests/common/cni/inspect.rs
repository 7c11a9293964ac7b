//! What the CNI tests look at: commands that must succeed, links and addresses in a
//! namespace, the plugin's interfaces left on the node, default routes, and a pod's
//! snapshot without what DEL may leave behind.

use crate::common::{PATH, Snapshot, Topology, output_text};
use std::process::{Command, Stdio};

/// `ip ARGS...` (or any command) with a clean environment; must succeed; its stdout.
pub fn cmd(args: &[&str]) -> String {
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
pub fn link_line(ns: &str, dev: &str) -> Option<String> {
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

/// The MAC address of `dev` in namespace `ns`.
pub fn link_mac(ns: &str, dev: &str) -> String {
    let line = link_line(ns, dev).unwrap_or_else(|| panic!("{dev} missing in {ns}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == "link/ether")
        .unwrap_or_else(|| panic!("{dev} in {ns} has no MAC: {line}"));
    words[i + 1].to_string()
}

/// The interface index of `dev` in namespace `ns`.
pub fn link_index(ns: &str, dev: &str) -> String {
    let line = link_line(ns, dev).unwrap_or_else(|| panic!("{dev} missing in {ns}"));
    line.split(':').next().unwrap().trim().to_string()
}

/// The interface index a link hangs off (`net1@if4` -> `4`).
pub fn link_parent(ns: &str, dev: &str) -> String {
    let line = link_line(ns, dev).unwrap_or_else(|| panic!("{dev} missing in {ns}"));
    let name = line.split(':').nth(1).unwrap().trim();
    name.split_once("@if")
        .unwrap_or_else(|| panic!("{dev} in {ns} has no parent: {line}"))
        .1
        .to_string()
}

/// The IPv4 addresses (with prefix) of `dev` in namespace `ns`.
pub fn inets(ns: &str, dev: &str) -> Vec<String> {
    let out = cmd(&["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", dev]);
    out.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "inet")
        .map(|w| w[1].to_string())
        .collect()
}

/// Interfaces of the node named like the plugin's temporary interfaces.
pub fn node_leftovers(t: &Topology) -> Vec<String> {
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

/// Asserts that the node has none of the plugin's temporary interfaces.
pub fn assert_no_node_leftovers(t: &Topology, what: &str) {
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
/// - the empty built-in tables ([`Snapshot::without_empty_tables`]).
pub fn without_allowed_leftovers(snapshot: Snapshot) -> Snapshot {
    let mut snapshot = snapshot.without_empty_tables();
    for (name, text) in snapshot.parts.iter_mut() {
        if name.starts_with("6 sysctl") {
            *text = text
                .lines()
                .filter(|line| !line.starts_with("net.ipv4.ip_forward"))
                .map(|l| format!("{l}\n"))
                .collect();
        }
    }
    snapshot
}

/// The main table's default routes of the pod namespace `ns`.
pub fn default_routes(ns: &str) -> String {
    cmd(&["ip", "-n", ns, "route", "show", "default"])
}
