//! Further pod namespaces beside the topology's `router` pod, and files, each removed
//! on drop.

use super::cmd;
use crate::common::{PATH, Topology};
use std::path::PathBuf;
use std::process::Command;

/// A further pod namespace beside the topology's `router` (`new`: `eth0` `POD_IP`/26
/// with a default route via the node's end `NODE_IF` `NODE_IP`/26; `bare`: `lo`
/// alone). Removed on drop.
pub struct ExtraPod {
    pub name: String,
}

impl ExtraPod {
    /// A pod namespace with `eth0` wired to the node (see the type).
    pub fn new(t: &Topology, suffix: &str, node_if: &str, node_ip: &str, pod_ip: &str) -> ExtraPod {
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
    pub fn bare(t: &Topology, suffix: &str) -> ExtraPod {
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

    /// The namespace's path, as `CNI_NETNS` names it.
    pub fn netns(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Deletes the namespace now (the pod is gone).
    pub fn remove(&self) {
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

/// Kills the processes of namespace `name` and deletes it, if it exists.
pub fn remove_netns(name: &str) {
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
pub struct TempFile(pub PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
