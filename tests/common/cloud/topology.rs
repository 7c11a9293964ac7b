//! The cloud's namespaces (see the module above), built by the `ip` tool and removed
//! on drop (also on panic).

use crate::common::cni::{cmd, remove_netns};
use crate::common::{PATH, enter_netns, output_text, require_root};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The roles of the cloud's namespaces.
pub const CLOUD_ROLES: [&str; 6] = ["cloud", "na", "nb", "pa", "pb", "srv"];

/// One node of the cloud: its namespace role, pod role, addresses.
#[derive(Debug, Clone, Copy)]
pub struct Node {
    /// The node's role (`na`, `nb`).
    pub role: &'static str,
    /// Its pod's role (`pa`, `pb`).
    pub pod: &'static str,
    /// The cloud's end of its link (the ENI's `cloud-link` tag).
    pub link: &'static str,
    /// Its primary IPv4 address (the ENI's).
    pub ip: &'static str,
    /// Its IPv6 address.
    pub ip6: &'static str,
    /// The node's end of its pod's cluster link, and its address.
    pub pod_link: (&'static str, &'static str),
    /// The pod's cluster address.
    pub pod_ip: &'static str,
}

/// Node A.
pub const NODE_A: Node = Node {
    role: "na",
    pod: "pa",
    link: "ca",
    ip: "192.0.2.10",
    ip6: "2001:db8:10::10",
    pod_link: ("pa0", "192.0.2.129"),
    pod_ip: "192.0.2.130",
};
/// Node B.
pub const NODE_B: Node = Node {
    role: "nb",
    pod: "pb",
    link: "cb",
    ip: "192.0.2.20",
    ip6: "2001:db8:10::20",
    pod_link: ("pb0", "192.0.2.193"),
    pod_ip: "192.0.2.194",
};
/// The VPC's gateway (the cloud, on every node link).
pub const VPC_GATEWAY: &str = "192.0.2.1";
/// The server, on the cloud's internet side.
pub const CLOUD_SERVER: &str = "203.0.113.5";
/// The server's IPv6 address.
pub const CLOUD_SERVER6: &str = "2001:db8:20::5";

/// The cloud's namespaces, removed on drop.
pub struct Cloud {
    /// The prefix of every namespace name.
    pub prefix: String,
}

impl Cloud {
    /// Builds the namespaces and links of the module's picture (requires root). The
    /// nodes' MACs are set once the ENIs exist ([`Cloud::set_mac`]).
    pub fn new() -> Cloud {
        require_root();
        let cloud = Cloud {
            prefix: format!(
                "ec{}x{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            ),
        };
        for role in CLOUD_ROLES {
            cmd(&["ip", "netns", "add", &cloud.ns(role)]);
            cloud.sh(role, "ip link set lo up");
            cloud.sh(
                role,
                "sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0",
            );
        }
        let c = cloud.ns("cloud");
        for (peer_role, local, peer) in [
            ("na", "ca", "eth0"),
            ("nb", "cb", "eth0"),
            ("srv", "inet0", "eth0"),
        ] {
            cmd(&[
                "ip",
                "-n",
                &c,
                "link",
                "add",
                local,
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                &cloud.ns(peer_role),
            ]);
        }
        for line in [
            "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0",
            "ip addr add 192.0.2.1/32 dev lo",
            "ip addr add 203.0.113.100/32 dev lo",
            "ip addr add 203.0.113.1/24 dev inet0",
            "ip -6 addr add 2001:db8:20::1/64 dev inet0 nodad",
            "ip -6 addr add fe80::1/64 dev ca nodad",
            "ip -6 addr add fe80::1/64 dev cb nodad",
            "ip link set ca up",
            "ip link set cb up",
            "ip link set inet0 up",
        ] {
            cloud.sh("cloud", line);
        }
        for line in [
            "ip addr add 203.0.113.5/24 dev eth0",
            "ip -6 addr add 2001:db8:20::5/64 dev eth0 nodad",
            "ip link set eth0 up",
            "ip route add default via 203.0.113.1",
            "ip -6 route add default via 2001:db8:20::1",
        ] {
            cloud.sh("srv", line);
        }
        for node in [NODE_A, NODE_B] {
            cloud.wire_node(node);
        }
        cloud
    }

    fn wire_node(&self, node: Node) {
        let (n, p) = (self.ns(node.role), self.ns(node.pod));
        let (pod_link, pod_gateway) = node.pod_link;
        cmd(&[
            "ip", "-n", &n, "link", "add", pod_link, "type", "veth", "peer", "name", "eth0",
            "netns", &p,
        ]);
        for line in [
            // strict reverse path filtering, as many distributions set it
            "sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1".to_string(),
            format!("ip addr add {}/25 dev eth0", node.ip),
            format!("ip -6 addr add {}/64 dev eth0 nodad", node.ip6),
            "ip link set eth0 up".into(),
            format!("ip route add default via {VPC_GATEWAY}"),
            "ip -6 route add default via fe80::1 dev eth0".into(),
            format!("ip addr add {pod_gateway}/26 dev {pod_link}"),
            format!("ip link set {pod_link} up"),
            "iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE".into(),
            "ip6tables -t nat -A POSTROUTING -o eth0 -j MASQUERADE".into(),
        ] {
            self.sh(node.role, &line);
        }
        for line in [
            format!("ip addr add {}/26 dev eth0", node.pod_ip),
            "ip link set eth0 up".into(),
            format!("ip route add default via {pod_gateway}"),
        ] {
            self.sh(node.pod, &line);
        }
    }

    /// The namespace name of `role`.
    pub fn ns(&self, role: &str) -> String {
        assert!(CLOUD_ROLES.contains(&role), "unknown cloud role {role}");
        format!("{}-{role}", self.prefix)
    }

    /// The path of `role`'s namespace, as `CNI_NETNS` names it.
    pub fn netns(&self, role: &str) -> String {
        format!("/run/netns/{}", self.ns(role))
    }

    /// Runs `line` (split on spaces) in `role`'s namespace; must succeed; its stdout.
    pub fn sh(&self, role: &str, line: &str) -> String {
        let out = self.run(role, line);
        assert!(
            out.status.success(),
            "{line} in {role} failed:\n{}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `line` (split on spaces) in `role`'s namespace, whatever it gives.
    pub fn run(&self, role: &str, line: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(line.split_whitespace())
            .env_clear()
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {line} in {role}: {e}"))
    }

    /// Gives `node`'s `eth0` its ENI's MAC (taking it down flushed its routes and IPv6
    /// address: they come back).
    pub fn set_mac(&self, node: Node, mac: &str) {
        for line in [
            "ip link set eth0 down".to_string(),
            format!("ip link set eth0 address {mac}"),
            "ip link set eth0 up".into(),
            format!("ip -6 addr replace {}/64 dev eth0 nodad", node.ip6),
            format!("ip route replace default via {VPC_GATEWAY}"),
            "ip -6 route replace default via fe80::1 dev eth0".into(),
        ] {
            self.sh(node.role, &line);
        }
    }

    /// Runs `f` on a thread inside `role`'s namespace and returns its result.
    pub fn with_ns<T: Send + 'static>(
        &self,
        role: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let ns = self.ns(role);
        match thread::spawn(move || {
            enter_netns(&ns);
            f()
        })
        .join()
        {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e),
        }
    }

    /// The packets the cloud dropped on `link` for a source MAC its ENI does not have.
    pub fn mac_drops(&self, link: &str) -> u64 {
        let out = self.run("cloud", &format!("nft list chain netdev vpc from_{link}"));
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find(|l| l.contains("ether saddr !="))
            .and_then(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let i = words.iter().position(|w| *w == "packets")?;
                words.get(i + 1)?.parse().ok()
            })
            .unwrap_or(0)
    }

    /// What a node shows of the plugin's kind of pieces, for before/after comparisons:
    /// rules, routes of every table, proxy entries, `nat` rules of both families, links.
    /// Left out: link-local and multicast routes, and the subnet-router anycast
    /// addresses the kernel adds once IPv6 forwarding is on (the plugin turns
    /// forwarding on and leaves it on).
    pub fn node_state(&self, node: Node) -> String {
        let mut state = String::new();
        for line in [
            "ip -4 rule",
            "ip -6 rule",
            "ip -4 route show table all",
            "ip -6 route show table all",
            "ip neigh show proxy",
            "iptables-save -t nat",
            "ip6tables-save -t nat",
            "ip -o link",
        ] {
            let text = self.sh(node.role, line);
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    !l.starts_with('#')
                        && !l.contains("fe80::")
                        && !l.contains(" ff00::")
                        && !l.starts_with("anycast ")
                })
                .map(|l| l.split(" [").next().unwrap_or(l))
                .collect();
            state.push_str(&format!("## {line}\n{}\n", kept.join("\n")));
        }
        state
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        for role in CLOUD_ROLES {
            remove_netns(&format!("{}-{role}", self.prefix));
        }
    }
}
