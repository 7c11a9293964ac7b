//! The CNI plugin run as a runtime runs it, for the `cni_*` suites: the plugin binary
//! invoked with `CNI_*` variables as Multus sets them and the configuration on stdin,
//! in the node namespace, against real pod namespaces (`plugin`); what the tests look
//! at in the node and the pods (`inspect`); further pods and files removed on drop
//! (`pods`).
//!
//! The CNI variant of the topology (see `cni_topology`): the node gets a second uplink,
//! `uplink1` 192.0.2.129/26, which also carries the node's default route, so that
//! master inference has to choose between two uplinks (and would land on the wrong one
//! if it fell back to the default route); the pod (`router`) starts as a CNI pod
//! does, with `lo` and `eth0` only (the pre-made `macvlan0` is removed).

mod inspect;
mod plugin;
mod pods;

// Not every `cni_*` suite uses every module (see `common`).
#[allow(unused_imports)]
pub use self::{inspect::*, plugin::*, pods::*};

use super::{GATEWAY, Topology, eventually};
use serde_json::{Value, json};
use std::time::Duration;

/// The configuration of the hand smoke test: source in uplink0's subnet, no master.
pub const CONFIG: &str = r#"{
    "cniVersion": "0.4.0",
    "name": "egress",
    "type": "egress-router",
    "ip": {
        "addresses": ["198.51.100.99/24"],
        "gateway": "198.51.100.1",
        "destinations": ["80 TCP 203.0.113.5/30", "203.0.113.7"]
    }
}"#;

/// A container ID as runtimes make them (64 hex digits), distinct per `n`.
pub fn container_id(n: u32) -> String {
    format!("{n:08x}{}", "0123456789abcdef".repeat(3)) + "01234567"
}

/// The topology of `tests/topology.sh`, changed into the CNI variant described at the
/// top of this module. Removed on drop, like every `Topology`.
pub fn cni_topology() -> Topology {
    let t = Topology::new();
    // a veth pair with both ends on the node: an uplink with an address and a
    // default route whose next hop never answers, so nothing leaves through it
    t.sh(
        "node",
        &[
            "ip",
            "link",
            "add",
            "uplink1",
            "type",
            "veth",
            "peer",
            "name",
            "uplink1-peer",
        ],
    );
    t.sh(
        "node",
        &["ip", "addr", "add", "192.0.2.129/26", "dev", "uplink1"],
    );
    t.sh("node", &["ip", "link", "set", "uplink1", "up"]);
    t.sh("node", &["ip", "link", "set", "uplink1-peer", "up"]);
    t.sh(
        "node",
        &[
            "ip",
            "route",
            "add",
            "default",
            "via",
            "192.0.2.130",
            "dev",
            "uplink1",
        ],
    );
    t.sh("router", &["ip", "link", "del", "macvlan0"]);
    // a veth's carrier comes up asynchronously: wait for it, so that snapshots taken
    // from here on see only what the plugin changes
    for role in ["node", "router"] {
        eventually(Duration::from_secs(5), "every link up", || {
            let links = t.sh(role, &["ip", "-o", "link"]);
            match links
                .lines()
                .find(|l| !l.contains(" lo:") && !l.contains("state UP"))
            {
                Some(down) => Err(format!("{role}: {down}")),
                None => Ok(()),
            }
        });
    }
    t
}

/// ADD's result for `attachment` is well formed for `version` and names the interface
/// as it is in the pod.
pub fn assert_result(result: &Value, attachment: &Attachment, version: &str, source: &str) {
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
