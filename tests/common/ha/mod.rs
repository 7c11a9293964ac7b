//! High availability's topology: two or three router pods whose `macvlan0`s share one
//! L2 segment with the gateway (a bridge in a namespace of its own), a client, a node
//! routing each pod's `eth0`, and the server; removed on drop (also on panic).
//!
//! ```text
//!  P-client 192.0.2.10/26 -- P-node cl0 192.0.2.1/26
//!                            P-node podI 192.0.2.(65+8I)/29 -- P-rI eth0 192.0.2.(66+8I)/29
//!                            P-node uplinkI -- macvlan0 in P-rI: 198.51.100.(11+I)/24 (its IPAM address)
//!                                  |
//!  P-lan br0: upI (peer of uplinkI), gwport (peer of P-gw lan0)
//!  P-gw lan0 198.51.100.1/24 (2001:db8:1::1/64), wan0 203.0.113.1/24 (2001:db8:2::1/64)
//!  P-server eth0 203.0.113.5/24 (2001:db8:2::5/64), default via the gw
//! ```
//!
//! The node has no route beyond the pods: what a backup sends by its default route
//! (`eth0`) goes nowhere. Documentation addresses only. [`roles`]: the routers, the
//! server and keepalived on it.

use super::{ChildGuard, PATH, bin, output_text, require_root};
use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

mod roles;

// Not every suite uses every helper: an unused re-export is no defect.
#[allow(unused_imports)]
pub use roles::*;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The shared `EGRESS_SOURCE`.
pub const HA_SOURCE: &str = "198.51.100.99";
/// The shared IPv6 source (dual-stack tests).
pub const HA_SOURCE6: &str = "2001:db8:1::99";
/// The VRID of the tests.
pub const VRID: &str = "51";

/// The HA topology.
pub struct HaLan {
    /// The namespaces' prefix.
    pub prefix: String,
    /// How many router pods.
    pub routers: usize,
}

/// `ip ARGS` (words separated by spaces) with the tests' PATH; panics naming it when it
/// fails.
fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .env("PATH", PATH)
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip {args}:\n{}", output_text(&out));
}

impl HaLan {
    /// Builds it with `routers` router pods; `ipv6` gives the LAN, the gateway and the
    /// server IPv6 too.
    pub fn new(routers: usize, ipv6: bool) -> HaLan {
        require_root();
        let prefix = format!(
            "ha{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let lan = HaLan { prefix, routers };
        lan.build(ipv6);
        lan
    }

    /// The namespace of `role`: client, node, lan, gw, server, r0, r1, r2.
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    fn roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = ["client", "node", "lan", "gw", "server"]
            .iter()
            .map(|r| r.to_string())
            .collect();
        roles.extend((0..self.routers).map(|i| format!("r{i}")));
        roles
    }

    fn build(&self, ipv6: bool) {
        let p = &self.prefix;
        for role in self.roles() {
            ip(&format!("netns add {p}-{role}"));
            let off = if ipv6 && role != "client" && role != "node" {
                0
            } else {
                1
            };
            self.sh(
                &role,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.all.disable_ipv6={off}"),
                    &format!("net.ipv6.conf.default.disable_ipv6={off}"),
                ],
            );
            ip(&format!("-n {p}-{role} link set lo up"));
        }
        for command in [
            "link add eth0 netns {p}-client type veth peer name cl0 netns {p}-node",
            "-n {p}-client addr add 192.0.2.10/26 dev eth0",
            "-n {p}-client link set eth0 up",
            "-n {p}-client route add default via 192.0.2.1",
            "-n {p}-node addr add 192.0.2.1/26 dev cl0",
            "-n {p}-node link set cl0 up",
            "-n {p}-lan link add br0 type bridge",
            "-n {p}-lan link set br0 up",
            "link add lan0 netns {p}-gw type veth peer name gwport netns {p}-lan",
            "-n {p}-lan link set gwport master br0 up",
            "link add wan0 netns {p}-gw type veth peer name eth0 netns {p}-server",
            "-n {p}-gw addr add 198.51.100.1/24 dev lan0",
            "-n {p}-gw addr add 203.0.113.1/24 dev wan0",
            "-n {p}-gw link set lan0 up",
            "-n {p}-gw link set wan0 up",
            "-n {p}-server addr add 203.0.113.5/24 dev eth0",
            "-n {p}-server link set eth0 up",
            "-n {p}-server route add default via 203.0.113.1",
        ] {
            ip(&command.replace("{p}", p));
        }
        self.sh("node", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        self.sh("gw", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        if ipv6 {
            self.sh("gw", &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
            for command in [
                "-n {p}-gw addr add 2001:db8:1::1/64 dev lan0 nodad",
                "-n {p}-gw addr add 2001:db8:2::1/64 dev wan0 nodad",
                "-n {p}-server addr add 2001:db8:2::5/64 dev eth0 nodad",
                "-n {p}-server route add default via 2001:db8:2::1",
            ] {
                ip(&command.replace("{p}", p));
            }
        }
        for i in 0..self.routers {
            let (node, r) = (8 * i + 65, self.router_ip(i));
            for command in [
                format!("link add eth0 netns {p}-r{i} type veth peer name pod{i} netns {p}-node"),
                format!("-n {p}-node addr add 192.0.2.{node}/29 dev pod{i}"),
                format!("-n {p}-node link set pod{i} up"),
                format!("-n {p}-r{i} addr add {r}/29 dev eth0"),
                format!("-n {p}-r{i} link set eth0 up"),
                format!("-n {p}-r{i} route add default via 192.0.2.{node}"),
                format!(
                    "link add uplink{i} netns {p}-node type veth peer name up{i} netns {p}-lan"
                ),
                format!("-n {p}-lan link set up{i} master br0 up"),
                format!("-n {p}-node link set uplink{i} up"),
                format!("-n {p}-node link add macvlan0 link uplink{i} type macvlan mode private"),
                format!("-n {p}-node link set macvlan0 netns {p}-r{i}"),
                // What Multus IPAM gives the pod: an address of its own, the link up.
                format!("-n {p}-r{i} addr add {}/24 dev macvlan0", self.own_ip(i)),
                format!("-n {p}-r{i} link set macvlan0 up"),
            ] {
                ip(&command);
            }
        }
    }

    /// Router `i`'s `eth0` address (where clients connect).
    pub fn router_ip(&self, i: usize) -> String {
        format!("192.0.2.{}", 66 + 8 * i)
    }

    /// Router `i`'s own address on `macvlan0`.
    pub fn own_ip(&self, i: usize) -> String {
        format!("198.51.100.{}", 11 + i)
    }

    /// A command in the namespace of `role`, with a clean environment plus `env`.
    pub fn command<S: AsRef<OsStr>>(
        &self,
        role: &str,
        args: &[S],
        env: &[(String, String)],
    ) -> Command {
        let mut cmd = Command::new("ip");
        cmd.env_clear()
            .env("PATH", PATH)
            .envs(env.iter().map(|(k, v)| (k, v)));
        cmd.args(["netns", "exec", &self.ns(role)]);
        cmd.args(args);
        cmd
    }

    /// Runs a command in `role`'s namespace.
    pub fn run<S: AsRef<OsStr>>(&self, role: &str, args: &[S], env: &[(String, String)]) -> Output {
        self.command(role, args, env)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run in {role}: {e}"))
    }

    /// Runs a command in `role`'s namespace, which must succeed; its stdout.
    pub fn sh(&self, role: &str, args: &[&str]) -> String {
        let out = self.run(role, args, &[]);
        assert!(
            out.status.success(),
            "{args:?} in {role}:\n{}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Spawns a long-running command in `role`'s namespace.
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        role: &str,
        args: &[S],
        env: &[(String, String)],
    ) -> ChildGuard {
        ChildGuard::spawn(self.command(role, args, env))
    }

    /// Runs the binary in router `i`'s namespace.
    pub fn binary(&self, i: usize, args: &[&str], env: &[(String, String)]) -> Output {
        let mut full = vec![bin()];
        full.extend(args.iter().map(|a| a.to_string()));
        self.run(&format!("r{i}"), &full, env)
    }

    /// Spawns the binary in router `i`'s namespace.
    pub fn spawn_binary(&self, i: usize, args: &[&str], env: &[(String, String)]) -> ChildGuard {
        let mut full = vec![bin()];
        full.extend(args.iter().map(|a| a.to_string()));
        self.spawn(&format!("r{i}"), &full, env)
    }

    /// Whether router `i` holds `address` on `macvlan0`.
    pub fn holds(&self, i: usize, address: &str) -> bool {
        let out = self.sh(
            &format!("r{i}"),
            &["ip", "-o", "addr", "show", "dev", "macvlan0"],
        );
        out.split_whitespace()
            .any(|w| w.split('/').next() == Some(address))
    }

    /// The routers holding `address` now.
    pub fn holders(&self, address: &str) -> Vec<usize> {
        (0..self.routers)
            .filter(|i| self.holds(*i, address))
            .collect()
    }

    /// Waits (polling every 5 ms, at most `limit`) until exactly router `i` holds
    /// `address`; how long that took, or a panic naming the holders.
    pub fn wait_holder(&self, i: usize, address: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let holders = self.holders(address);
            if holders == [i] {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "{address}: held by {holders:?}, not by r{i} alone, after {limit:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for HaLan {
    fn drop(&mut self) {
        for role in self.roles() {
            let ns = self.ns(&role);
            if let Ok(out) = Command::new("ip")
                .args(["netns", "pids", &ns])
                .env("PATH", PATH)
                .output()
            {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            let _ = Command::new("ip")
                .args(["netns", "del", &ns])
                .env("PATH", PATH)
                .output();
        }
    }
}
