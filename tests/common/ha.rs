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
//! (`eth0`) goes nowhere. Documentation addresses only.

use super::{
    ChildGuard, PATH, bin, enter_netns, envs, eventually, output_text, require_root, with_var,
};
use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

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

/// `ip ...` with the tests' PATH; panics naming it when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .env("PATH", PATH)
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip {args:?}:\n{}", output_text(&out));
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
        let n = |role: &str| self.ns(role);
        for role in self.roles() {
            ip(&["netns", "add", &n(&role)]);
            let v6_off = if ipv6 && role != "client" && role != "node" {
                "0"
            } else {
                "1"
            };
            self.sh(
                &role,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.all.disable_ipv6={v6_off}"),
                    &format!("net.ipv6.conf.default.disable_ipv6={v6_off}"),
                ],
            );
            ip(&["-n", &n(&role), "link", "set", "lo", "up"]);
        }
        let (node, lan, gw) = (n("node"), n("lan"), n("gw"));
        ip(&[
            "link",
            "add",
            "eth0",
            "netns",
            &n("client"),
            "type",
            "veth",
            "peer",
            "name",
            "cl0",
            "netns",
            &node,
        ]);
        ip(&[
            "-n",
            &n("client"),
            "addr",
            "add",
            "192.0.2.10/26",
            "dev",
            "eth0",
        ]);
        ip(&["-n", &n("client"), "link", "set", "eth0", "up"]);
        ip(&[
            "-n",
            &n("client"),
            "route",
            "add",
            "default",
            "via",
            "192.0.2.1",
        ]);
        ip(&["-n", &node, "addr", "add", "192.0.2.1/26", "dev", "cl0"]);
        ip(&["-n", &node, "link", "set", "cl0", "up"]);
        self.sh("node", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        ip(&["-n", &lan, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lan, "link", "set", "br0", "up"]);
        ip(&[
            "link", "add", "lan0", "netns", &gw, "type", "veth", "peer", "name", "gwport", "netns",
            &lan,
        ]);
        ip(&["-n", &lan, "link", "set", "gwport", "master", "br0", "up"]);
        ip(&[
            "link",
            "add",
            "wan0",
            "netns",
            &gw,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &n("server"),
        ]);
        ip(&["-n", &gw, "addr", "add", "198.51.100.1/24", "dev", "lan0"]);
        ip(&["-n", &gw, "addr", "add", "203.0.113.1/24", "dev", "wan0"]);
        ip(&["-n", &gw, "link", "set", "lan0", "up"]);
        ip(&["-n", &gw, "link", "set", "wan0", "up"]);
        self.sh("gw", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let server = n("server");
        ip(&[
            "-n",
            &server,
            "addr",
            "add",
            "203.0.113.5/24",
            "dev",
            "eth0",
        ]);
        ip(&["-n", &server, "link", "set", "eth0", "up"]);
        ip(&[
            "-n",
            &server,
            "route",
            "add",
            "default",
            "via",
            "203.0.113.1",
        ]);
        if ipv6 {
            self.sh("gw", &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
            ip(&[
                "-n",
                &gw,
                "addr",
                "add",
                "2001:db8:1::1/64",
                "dev",
                "lan0",
                "nodad",
            ]);
            ip(&[
                "-n",
                &gw,
                "addr",
                "add",
                "2001:db8:2::1/64",
                "dev",
                "wan0",
                "nodad",
            ]);
            ip(&[
                "-n",
                &server,
                "addr",
                "add",
                "2001:db8:2::5/64",
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&[
                "-n",
                &server,
                "route",
                "add",
                "default",
                "via",
                "2001:db8:2::1",
            ]);
        }
        for i in 0..self.routers {
            let r = n(&format!("r{i}"));
            let pod = format!("pod{i}");
            let uplink = format!("uplink{i}");
            ip(&[
                "link", "add", "eth0", "netns", &r, "type", "veth", "peer", "name", &pod, "netns",
                &node,
            ]);
            ip(&[
                "-n",
                &node,
                "addr",
                "add",
                &format!("192.0.2.{}/29", 65 + 8 * i),
                "dev",
                &pod,
            ]);
            ip(&["-n", &node, "link", "set", &pod, "up"]);
            ip(&[
                "-n",
                &r,
                "addr",
                "add",
                &format!("{}/29", self.router_ip(i)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &r, "link", "set", "eth0", "up"]);
            ip(&[
                "-n",
                &r,
                "route",
                "add",
                "default",
                "via",
                &format!("192.0.2.{}", 65 + 8 * i),
            ]);
            ip(&[
                "link",
                "add",
                &uplink,
                "netns",
                &node,
                "type",
                "veth",
                "peer",
                "name",
                &format!("up{i}"),
                "netns",
                &lan,
            ]);
            ip(&[
                "-n",
                &lan,
                "link",
                "set",
                &format!("up{i}"),
                "master",
                "br0",
                "up",
            ]);
            ip(&["-n", &node, "link", "set", &uplink, "up"]);
            ip(&[
                "-n", &node, "link", "add", "macvlan0", "link", &uplink, "type", "macvlan", "mode",
                "private",
            ]);
            ip(&["-n", &node, "link", "set", "macvlan0", "netns", &r]);
            // What Multus IPAM gives the pod: an address of its own, the link up.
            ip(&[
                "-n",
                &r,
                "addr",
                "add",
                &format!("{}/24", self.own_ip(i)),
                "dev",
                "macvlan0",
            ]);
            ip(&["-n", &r, "link", "set", "macvlan0", "up"]);
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

    /// One TCP exchange from the client through router `i`'s `eth0` (redirect), with a
    /// short connect timeout: the server's line (`PEER LOCAL`).
    pub fn through(&self, i: usize, port: u16, timeout: Duration) -> Result<String, String> {
        let addr: std::net::SocketAddr = format!("{}:{port}", self.router_ip(i)).parse().unwrap();
        let client = self.ns("client");
        thread::spawn(move || {
            enter_netns(&client);
            let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
                .map_err(|e| format!("connect {addr}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut s, &mut text).map_err(|e| e.to_string())?;
            Ok(text.trim().to_string())
        })
        .join()
        .unwrap()
    }

    /// Drops VRRP (IP protocol 112) on the LAN's bridge, as a partition between the
    /// routers does (`multicast_only`: only what goes to 224.0.0.18, as a network
    /// that drops multicast does).
    pub fn drop_vrrp(&self, multicast_only: bool) {
        let rule = match multicast_only {
            true => "ip daddr 224.0.0.18 drop",
            false => "ip protocol 112 drop",
        };
        let script = format!(
            "add table bridge partition\nadd chain bridge partition forward {{ type filter hook forward priority 0; }}\nadd rule bridge partition forward {rule}\n"
        );
        let out = self.run_stdin("lan", &["nft", "-f", "-"], &script);
        assert!(out.status.success(), "nft:\n{}", output_text(&out));
    }

    /// Lets VRRP through the bridge again.
    pub fn heal(&self) {
        self.sh("lan", &["nft", "delete", "table", "bridge", "partition"]);
    }

    /// Takes router `i`'s port of the bridge down (`up`: back up): its link is gone.
    pub fn link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        self.sh("lan", &["ip", "link", "set", &format!("up{i}"), state]);
    }

    fn run_stdin(&self, role: &str, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command(role, args, &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

/// A TCP server in `lan`'s server namespace on `port` answering `PEER LOCAL` (its
/// addresses), stopped on drop.
pub fn server(lan: &HaLan, port: u16) -> LanServer {
    let ns = lan.ns("server");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ready, wait) = std::sync::mpsc::channel();
    let flag = stop.clone();
    let thread = thread::spawn(move || {
        enter_netns(&ns);
        let listener = std::net::TcpListener::bind(("::", port))
            .or_else(|_| std::net::TcpListener::bind(("0.0.0.0", port)))
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        ready.send(()).unwrap();
        let end = Instant::now() + Duration::from_secs(300);
        while !flag.load(Ordering::SeqCst) && Instant::now() < end {
            match listener.accept() {
                Ok((mut s, peer)) => {
                    let local = s.local_addr().unwrap();
                    let show = |a: std::net::SocketAddr| a.ip().to_canonical();
                    let _ = std::io::Write::write_all(
                        &mut s,
                        format!("{} {}\n", show(peer), show(local)).as_bytes(),
                    );
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    wait.recv().unwrap();
    LanServer {
        stop,
        thread: Some(thread),
    }
}

/// See [`server`].
pub struct LanServer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for LanServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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

/// The redirect router's environment with high availability, priority `priority`.
pub fn env(priority: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("EGRESS_SOURCE", HA_SOURCE),
        ("EGRESS_GATEWAY", "198.51.100.1"),
        ("EGRESS_DESTINATION", "80 tcp 203.0.113.5"),
        ("EGRESS_HA_VRID", VRID),
        ("EGRESS_HA_PRIORITY", priority),
    ];
    pairs.extend_from_slice(extra);
    envs(&pairs)
}

/// Runs init on router `i` (it must succeed) and starts its `redirect` container.
pub fn start(lan: &HaLan, i: usize, priority: &str, extra: &[(&str, &str)]) -> ChildGuard {
    let env = env(priority, extra);
    let init = lan.binary(
        i,
        &[],
        &with_var(env.clone(), "EGRESS_ROUTER_MODE", Some("init")),
    );
    assert!(init.status.success(), "init r{i}:\n{}", output_text(&init));
    assert!(!lan.holds(i, HA_SOURCE), "init with HA adds no source");
    let mut child = lan.spawn_binary(i, &["redirect"], &env);
    child.wait_ready(
        &format!("redirect r{i}"),
        "setup verified",
        1,
        Duration::from_secs(10),
    );
    child
}

/// `GET path` on router `i`'s operations endpoint, from the client: (status, body).
pub fn endpoint(lan: &HaLan, i: usize, path: &str) -> (u16, String) {
    endpoint_at(lan, i, 9090, path)
}

/// `GET path` on port `port` of router `i`, from the client: (status, body).
pub fn endpoint_at(lan: &HaLan, i: usize, port: u16, path: &str) -> (u16, String) {
    let addr: std::net::SocketAddr = format!("{}:{port}", lan.router_ip(i)).parse().unwrap();
    let client = lan.ns("client");
    let path = path.to_string();
    std::thread::spawn(move || {
        enter_netns(&client);
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    })
    .join()
    .unwrap()
}

/// The client's connection through router `i` reaches the server from the source.
pub fn leaves_from_source(lan: &HaLan, i: usize) {
    let line = eventually(
        Duration::from_secs(3),
        "a connection through the master",
        || lan.through(i, 80, Duration::from_millis(500)),
    );
    assert!(line.starts_with(&format!("{HA_SOURCE} ")), "r{i}: {line}");
}

/// keepalived (the Debian package) as router `i`'s VRRP peer: version 3, VRID 51,
/// `priority`, 100 ms adverts, no preemption, `EGRESS_SOURCE` as its virtual address
/// with the routes egress-router's master would have (two /1 routes beat the pod's
/// default), `extra` lines in its instance (unicast peers). Its files live in `dir`.
pub fn keepalived(
    lan: &HaLan,
    i: usize,
    priority: u8,
    extra: &str,
    dir: &std::path::Path,
) -> ChildGuard {
    let found = Command::new("sh")
        .args(["-c", "command -v keepalived"])
        .env("PATH", PATH)
        .output()
        .expect("sh");
    assert!(
        found.status.success(),
        "keepalived is not installed: tests/run.sh installs it (apt-get install keepalived)"
    );
    std::fs::create_dir_all(dir).unwrap();
    let conf = dir.join(format!("r{i}.conf"));
    std::fs::write(
        &conf,
        format!(
            "global_defs {{\n  router_id r{i}\n  vrrp_version 3\n}}\n\
             vrrp_instance egress {{\n  state BACKUP\n  interface macvlan0\n  virtual_router_id {VRID}\n\
             \x20 priority {priority}\n  advert_int 0.1\n  nopreempt\n{extra}\n\
             \x20 virtual_ipaddress {{\n    {HA_SOURCE}/32 dev macvlan0\n  }}\n\
             \x20 virtual_routes {{\n    0.0.0.0/1 via 198.51.100.1 dev macvlan0 src {HA_SOURCE}\n\
             \x20   128.0.0.0/1 via 198.51.100.1 dev macvlan0 src {HA_SOURCE}\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let file = |name: &str| dir.join(format!("r{i}.{name}")).display().to_string();
    let args = [
        "keepalived".to_string(),
        "--dont-fork".into(),
        "--log-console".into(),
        "--log-detail".into(),
        "--vrrp".into(),
        "--use-file".into(),
        conf.display().to_string(),
        "--pid".into(),
        file("pid"),
        "--vrrp_pid".into(),
        file("vrrp.pid"),
        "--checkers_pid".into(),
        file("checkers.pid"),
    ];
    lan.spawn(&format!("r{i}"), &args, &[])
}
