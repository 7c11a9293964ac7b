//! Test harness: network namespaces built by `tests/topology.sh`, helpers to run the
//! binary and other commands inside them, tiny TCP/UDP servers and clients bound to a
//! namespace, and snapshots of a namespace's network state. `dns`: a DNS server for
//! test names; `http`: HTTP/1.1 client and origin server for the proxy tests; `ipv6`:
//! IPv6 added to the topology; `lists`: list files and the reloads they cause;
//! `proxy`: checks shared by the proxy roles (idle timeout, SIGTERM).
//!
//! Only documentation addresses are used (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//! 2001:db8::/32), always inside namespaces created by the test itself.
#![allow(dead_code)]

pub mod dns;
pub mod http;
pub mod ipv6;
pub mod lists;
pub mod proxy;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub const TOPOLOGY_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/topology.sh");
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub const SOURCE: &str = "198.51.100.99";
pub const GATEWAY: &str = "198.51.100.1";
pub const ROUTER_IP: &str = "192.0.2.70";
pub const CLIENT_IP: &str = "192.0.2.10";

/// The destination list used by the good cases: comment, blank line and fallback included.
pub const DESTINATION: &str = "80 tcp 203.0.113.5\n\
                               8080 tcp 203.0.113.6 80\n\
                               53 udp 203.0.113.5 5353\n\
                               # a comment\n\
                               \n\
                               203.0.113.7\n";

/// The NAT rules `DESTINATION` + `SOURCE` must produce (SPEC section 3), in order.
pub const PLANNED_RULES: [&str; 5] = [
    "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5",
    "-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 203.0.113.6:80",
    "-A PREROUTING -i eth0 -p udp --dport 53 -j DNAT --to-destination 203.0.113.5:5353",
    "-A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7",
    "-A POSTROUTING -j SNAT --to-source 198.51.100.99",
];

/// Path of the binary under test. `EGRESS_ROUTER_TEST_BIN` may point at another build
/// (used to check the tests themselves); by default it is the crate's binary.
pub fn bin() -> String {
    std::env::var("EGRESS_ROUTER_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_egress-router").to_string())
}

/// Root tests must fail loudly, never skip, when not run as root.
pub fn require_root() {
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        panic!(
            "\n\n*** THIS TEST NEEDS ROOT (euid is {euid}) ***\n\
             It builds network namespaces, macvlan links and iptables rules.\n\
             Run: sudo -E cargo test\n\n"
        );
    }
}

/// The xtables lock (/run/xtables.lock) is global to the machine, not per namespace.
/// Tests that hold it exclusively take the write side; every other root test the read side.
static XTABLES: RwLock<()> = RwLock::new(());

pub fn xtables_shared() -> RwLockReadGuard<'static, ()> {
    XTABLES.read().unwrap_or_else(|e| e.into_inner())
}

pub fn xtables_exclusive() -> RwLockWriteGuard<'static, ()> {
    XTABLES.write().unwrap_or_else(|e| e.into_inner())
}

/// Env for a good init run.
pub fn good_env(mode: &str) -> Vec<(String, String)> {
    envs(&[
        ("EGRESS_SOURCE", SOURCE),
        ("EGRESS_GATEWAY", GATEWAY),
        ("EGRESS_DESTINATION", DESTINATION),
        ("EGRESS_ROUTER_MODE", mode),
    ])
}

/// Env for an init run of a proxy mode (`http-proxy`, `dns-proxy`): network only.
pub fn proxy_mode_env(mode: &str) -> Vec<(String, String)> {
    envs(&[
        ("EGRESS_SOURCE", SOURCE),
        ("EGRESS_GATEWAY", GATEWAY),
        ("EGRESS_ROUTER_MODE", mode),
    ])
}

pub fn envs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Replace (or add) one variable in an env list; `None` removes it.
pub fn with_var(
    mut env: Vec<(String, String)>,
    key: &str,
    val: Option<&str>,
) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != key);
    if let Some(v) = val {
        env.push((key.to_string(), v.to_string()));
    }
    env
}

fn clean_command<S: AsRef<OsStr>>(program: &str, args: &[S], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().env("PATH", PATH);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub fn output_text(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One instance of the topology of `tests/topology.sh`, removed on drop (also on panic).
pub struct Topology {
    pub prefix: String,
}

impl Topology {
    pub fn new() -> Topology {
        require_root();
        let prefix = format!(
            "er{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new("bash")
            .args([TOPOLOGY_SH, "up", &prefix])
            .env("PATH", PATH)
            .output()
            .expect("run topology.sh up");
        assert!(
            out.status.success(),
            "topology.sh up {prefix} failed:\n{}",
            output_text(&out)
        );
        Topology { prefix }
    }

    /// Namespace name of a role: client, node, router, gw, server.
    pub fn ns(&self, role: &str) -> String {
        assert!(
            ["client", "node", "router", "gw", "server"].contains(&role),
            "unknown role {role}"
        );
        format!("{}-{}", self.prefix, role)
    }

    /// `ip netns exec NS args...` with a clean environment (PATH + `env` only).
    pub fn command<S: AsRef<OsStr>>(
        &self,
        role: &str,
        args: &[S],
        env: &[(String, String)],
    ) -> Command {
        let mut cmd = clean_command("ip", &["netns", "exec", &self.ns(role)], env);
        cmd.args(args);
        cmd
    }

    pub fn run<S: AsRef<OsStr>>(&self, role: &str, args: &[S], env: &[(String, String)]) -> Output {
        self.command(role, args, env)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run in {role}: {e}"))
    }

    /// Run and require success; returns stdout.
    pub fn sh(&self, role: &str, args: &[&str]) -> String {
        let out = self.run(role, args, &[]);
        assert!(
            out.status.success(),
            "{args:?} in {role} failed:\n{}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run the binary under test in the router namespace.
    pub fn router(&self, args: &[&str], env: &[(String, String)]) -> Output {
        let mut full = vec![bin()];
        full.extend(args.iter().map(|s| s.to_string()));
        self.run("router", &full, env)
    }

    /// Run the binary and require exit 0.
    pub fn router_ok(&self, args: &[&str], env: &[(String, String)]) -> Output {
        let out = self.router(args, env);
        assert!(
            out.status.success(),
            "egress-router {args:?} failed:\n{}",
            output_text(&out)
        );
        out
    }

    /// Spawn a long-running command in a namespace; stdout and stderr are collected
    /// line by line (with arrival time). The guard stops it on drop.
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        role: &str,
        args: &[S],
        env: &[(String, String)],
    ) -> ChildGuard {
        let cmd = self.command(role, args, env);
        ChildGuard::spawn(cmd)
    }

    pub fn spawn_router(&self, args: &[&str], env: &[(String, String)]) -> ChildGuard {
        let mut full = vec![bin()];
        full.extend(args.iter().map(|s| s.to_string()));
        self.spawn("router", &full, env)
    }

    /// Run `f` on a fresh thread that has entered the namespace of `role`.
    pub fn in_ns<T, F>(&self, role: &str, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let ns = self.ns(role);
        thread::spawn(move || {
            enter_netns(&ns);
            f()
        })
    }

    /// Run `f` inside the namespace and wait for its result.
    pub fn with_ns<T, F>(&self, role: &str, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.in_ns(role, f).join() {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e),
        }
    }

    /// TCP server in the server namespace (see `Server`).
    pub fn tcp_server(&self, port: u16) -> Server {
        Server::tcp_in(self, "server", port)
    }

    /// UDP server in the server namespace on 203.0.113.{5,6,7}:PORT.
    pub fn udp_server(&self, port: u16) -> Server {
        Server::udp(self, port)
    }

    /// One TCP exchange from the client namespace: returns the line the server sent.
    pub fn tcp_from_client(&self, addr: &str) -> Result<String, String> {
        let addr: SocketAddr = addr.parse().unwrap();
        self.with_ns("client", move || tcp_exchange(addr))
    }

    /// Connect from the client namespace to `addr` until a connection is refused (at
    /// most `limit`): whether one was.
    pub fn refused_within(&self, addr: &str, limit: Duration) -> bool {
        let addr: SocketAddr = addr.parse().unwrap();
        self.with_ns("client", move || {
            let end = Instant::now() + limit;
            while Instant::now() < end {
                match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
                    _ => thread::sleep(Duration::from_millis(50)),
                }
            }
            false
        })
    }

    /// One UDP exchange from the client namespace (up to 3 tries).
    pub fn udp_from_client(&self, addr: &str) -> Result<String, String> {
        let addr: SocketAddr = addr.parse().unwrap();
        self.with_ns("client", move || udp_exchange(addr))
    }

    /// tcpdump of the ARP packets on the gateway's `lan0` (at most 20 s), once it listens.
    pub fn arp_capture(&self) -> ChildGuard {
        let dump = self.spawn(
            "gw",
            &[
                "timeout", "20", "tcpdump", "-l", "-n", "-e", "-i", "lan0", "arp",
            ],
            &[],
        );
        dump.wait_line(|l| l.contains("listening on"), Duration::from_secs(5))
            .unwrap_or_else(|| panic!("tcpdump not listening:\n{}", dump.stderr()));
        dump
    }

    /// Network state of a namespace, normalised so two snapshots compare equal when
    /// nothing changed.
    pub fn snapshot(&self, role: &str) -> Snapshot {
        let mut parts = BTreeMap::new();
        let cmds: [(&str, &[&str]); 11] = [
            ("1 ip -d addr", &["ip", "-d", "addr"]),
            (
                "2 ip route show table all",
                &["ip", "route", "show", "table", "all"],
            ),
            ("3 ip rule", &["ip", "rule"]),
            ("4 iptables-nft-save", &["iptables-nft-save"]),
            // never `iptables-legacy -L`: it would instantiate legacy tables
            ("5 iptables-legacy-save", &["iptables-legacy-save"]),
            (
                "6 sysctl",
                &[
                    "sysctl",
                    "net.ipv4.ip_forward",
                    "net.ipv4.conf.all.rp_filter",
                    "net.ipv4.conf.all.src_valid_mark",
                ],
            ),
            ("7 ip -6 rule", &["ip", "-6", "rule"]),
            (
                "8 ip -6 route show table all",
                &["ip", "-6", "route", "show", "table", "all"],
            ),
            ("9 ip6tables-nft-save", &["ip6tables-nft-save"]),
            ("10 ip6tables-legacy-save", &["ip6tables-legacy-save"]),
            (
                "11 sysctl ipv6",
                &[
                    "sysctl",
                    "net.ipv6.conf.all.forwarding",
                    "net.ipv6.conf.macvlan0.accept_ra",
                    "net.ipv6.conf.macvlan0.autoconf",
                    "net.ipv6.conf.macvlan0.accept_dad",
                    "net.ipv6.conf.macvlan0.disable_ipv6",
                ],
            ),
        ];
        for (name, args) in cmds {
            let out = self.run(role, args, &[]);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            parts.insert(name.to_string(), normalise(&text));
        }
        Snapshot { parts }
    }

    pub fn dump(&self) -> String {
        let mut s = String::new();
        for role in ["router", "gw"] {
            s.push_str(&format!("===== {role} =====\n{}\n", self.snapshot(role)));
        }
        s
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let out = Command::new("bash")
            .args([TOPOLOGY_SH, "down", &self.prefix])
            .env("PATH", PATH)
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "topology.sh down {} failed:\n{}",
                self.prefix,
                output_text(&o)
            ),
            Err(e) => eprintln!("topology.sh down {}: {e}", self.prefix),
        }
    }
}

/// Move the calling thread into the network namespace NAME (`/run/netns/NAME`).
pub fn enter_netns(name: &str) {
    let f = File::open(format!("/run/netns/{name}"))
        .unwrap_or_else(|e| panic!("open /run/netns/{name}: {e}"));
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns({name}): {}", std::io::Error::last_os_error());
}

fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_end();
        if t.trim_start().starts_with('#') {
            continue; // iptables-save header/footer comments carry timestamps
        }
        if t.starts_with("Error: Peer netns reference is invalid") {
            continue; // `ip` racing another test's namespace teardown: not this namespace's state
        }
        out.push_str(&strip_qdisc(&strip_counters(t)));
        out.push('\n');
    }
    out
}

/// A link's default qdisc turns from `noop` to `noqueue` the first time it is up and
/// never back: not a configuration difference.
fn strip_qdisc(line: &str) -> String {
    let mut words: Vec<&str> = line.split(' ').collect();
    for i in 1..words.len() {
        if words[i - 1] == "qdisc" {
            words[i] = "_";
        }
    }
    words.join(" ")
}

/// `:PREROUTING ACCEPT [12:345]` -> `:PREROUTING ACCEPT [0:0]`
fn strip_counters(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find(']') {
            Some(j)
                if after[..j].contains(':')
                    && after[..j].chars().all(|c| c.is_ascii_digit() || c == ':') =>
            {
                out.push_str("[0:0]");
                rest = &after[j + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub parts: BTreeMap<String, String>,
}

impl Snapshot {
    /// Lines that differ, per part, for a readable assertion message.
    pub fn diff(&self, other: &Snapshot) -> String {
        let mut s = String::new();
        for (name, a) in &self.parts {
            let b = other.parts.get(name).cloned().unwrap_or_default();
            if *a == b {
                continue;
            }
            s.push_str(&format!("--- {name}\n"));
            let al: Vec<&str> = a.lines().collect();
            let bl: Vec<&str> = b.lines().collect();
            for l in &al {
                if !bl.contains(l) {
                    s.push_str(&format!("  - {l}\n"));
                }
            }
            for l in &bl {
                if !al.contains(l) {
                    s.push_str(&format!("  + {l}\n"));
                }
            }
        }
        s
    }
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, text) in &self.parts {
            writeln!(f, "### {name}\n{text}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Assert two snapshots are equal, showing the difference.
pub fn assert_same(before: &Snapshot, after: &Snapshot, what: &str) {
    if before != after {
        panic!(
            "{what}: namespace state changed\n{}\nfull state after:\n{after}",
            before.diff(after)
        );
    }
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ChildGuard {
    child: Option<Child>,
    pub started: Instant,
    lines: Arc<Mutex<Vec<(Instant, bool, String)>>>,
    readers: Vec<JoinHandle<()>>,
}

impl ChildGuard {
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        readers.push(collect_lines(out, false, lines.clone()));
        readers.push(collect_lines(err, true, lines.clone()));
        ChildGuard {
            child: Some(child),
            started,
            lines,
            readers,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Wait for exit at most `limit`. Once it exited, its output is complete: the
    /// readers have taken every line before this returns.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_wait() {
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// All lines so far: (arrival, from_stderr, text).
    pub fn lines(&self) -> Vec<(Instant, bool, String)> {
        self.lines.lock().unwrap().clone()
    }

    pub fn stdout(&self) -> String {
        self.text(false)
    }

    pub fn stderr(&self) -> String {
        self.text(true)
    }

    fn text(&self, err: bool) -> String {
        self.lines()
            .into_iter()
            .filter(|l| l.1 == err)
            .map(|l| l.2 + "\n")
            .collect()
    }

    /// Wait until a line (stdout or stderr) satisfies `pred`; returns it and its arrival.
    pub fn wait_line<P: Fn(&str) -> bool>(
        &self,
        pred: P,
        limit: Duration,
    ) -> Option<(Instant, String)> {
        let end = Instant::now() + limit;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| pred(&l.2)) {
                return Some((l.0, l.2));
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait until `count` lines contain `needle` (a server logging that it listens);
    /// panics with the output when the process exits first or after `limit`.
    pub fn wait_ready(&mut self, what: &str, needle: &str, count: usize, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let seen = self.lines().iter().filter(|l| l.2.contains(needle)).count();
            if seen >= count {
                return;
            }
            if let Some(st) = self.try_wait() {
                panic!(
                    "{what} exited ({st}) before logging {needle:?} {count} times:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < end,
                "{what} logged {needle:?} {seen} of {count} times in {limit:?}:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                unsafe {
                    libc::kill(c.id() as i32, libc::SIGTERM);
                }
                let end = Instant::now() + Duration::from_secs(1);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A process ended with exit `code` and an `error:` line on stderr containing every one
/// of `needles`.
pub fn assert_error_exit(
    status: Option<ExitStatus>,
    stderr: &str,
    code: i32,
    needles: &[&str],
    what: &str,
) {
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(code),
        "{what} must exit {code} (got {status:?})\nstderr:\n{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.trim_start().starts_with("error:") && needles.iter().all(|n| l.contains(n))),
        "{what}: no `error:` line with {needles:?}\nstderr:\n{stderr}"
    );
}

/// Retry `attempt` every 100 ms until it succeeds, at most `limit`: its value, or a
/// panic with `what` and the last error.
pub fn eventually<T>(
    limit: Duration,
    what: &str,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let end = Instant::now() + limit;
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= end => panic!("{what} within {limit:?}: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `ip` commands that restore the router's reply routing (the fwmark rule and the
/// table 4552 route via eth0), shared by the router's and the CNI plugin's check tests.
pub const RESTORE_REPLY_RULE: &[&str] = &[
    "ip",
    "rule",
    "add",
    "fwmark",
    "0x400000/0x400000",
    "lookup",
    "4552",
    "priority",
    "4552",
];
/// See [`RESTORE_REPLY_RULE`].
pub const RESTORE_REPLY_ROUTE: &[&str] = &[
    "ip",
    "route",
    "add",
    "default",
    "via",
    "192.0.2.65",
    "dev",
    "eth0",
    "table",
    "4552",
];

/// An `ip ...` command (as in [`RESTORE_REPLY_RULE`]) run on namespace `ns`: `ip -n NS ...`.
pub fn ip_in<'a>(ns: &'a str, command: &[&'a str]) -> Vec<&'a str> {
    ["ip", "-n", ns]
        .into_iter()
        .chain(command.iter().skip(1).copied())
        .collect()
}

/// The value of `key=` in a log line (values without spaces).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn collect_lines<R: Read + Send + 'static>(
    r: R,
    err: bool,
    lines: Arc<Mutex<Vec<(Instant, bool, String)>>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            match line {
                Ok(l) => lines.lock().unwrap().push((Instant::now(), err, l)),
                Err(_) => break,
            }
        }
    })
}

/// A server running on threads inside a namespace: a TCP listener whose connections are
/// each served by a `Handler` on their own thread, or UDP sockets. The default handler
/// (`answer_line`) and the UDP server answer with one line `<peer_ip> <local_ip>:<local_port>`.
/// Stops (and closes its sockets) on drop; it also stops by itself after 120 s.
pub struct Server {
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

/// Serves one accepted TCP connection. It must return soon after `stop` is set (use
/// short read timeouts) and never outlive `SERVER_MAX_LIFE`.
pub type Handler = fn(TcpStream, SocketAddr, &AtomicBool);

pub const SERVER_MAX_LIFE: Duration = Duration::from_secs(120);

impl Server {
    fn udp(topo: &Topology, port: u16) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for ip in ["203.0.113.5", "203.0.113.6", "203.0.113.7"] {
            let (tx, rx) = std::sync::mpsc::channel();
            let st = stop.clone();
            threads.push(topo.in_ns("server", move || {
                // one socket per address so the local address is known and replies
                // leave from the address the datagram was sent to
                let s = match UdpSocket::bind((ip, port)) {
                    Ok(s) => s,
                    Err(e) => {
                        tx.send(Err(e.to_string())).unwrap();
                        return;
                    }
                };
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                tx.send(Ok(())).unwrap();
                serve_udp(&s, &st);
            }));
            rx.recv_timeout(Duration::from_secs(5))
                .expect("udp server thread")
                .unwrap_or_else(|e| panic!("udp server bind {ip}:{port}: {e}"));
        }
        Server {
            stop,
            accepted: Arc::new(AtomicUsize::new(0)),
            threads,
        }
    }

    /// A TCP server on 0.0.0.0:PORT in any namespace (e.g. a local proxy in the router).
    pub fn tcp_in(topo: &Topology, role: &str, port: u16) -> Server {
        Server::tcp_with(topo, role, port, answer_line)
    }

    /// A TCP server on 0.0.0.0:PORT in the namespace of `role`, one thread a connection.
    pub fn tcp_with(topo: &Topology, role: &str, port: u16, handler: Handler) -> Server {
        Server::tcp_at(topo, role, "0.0.0.0", port, handler)
    }

    /// A TCP server on IP:PORT only (other addresses of the namespace refuse that port).
    pub fn tcp_at(
        topo: &Topology,
        role: &str,
        ip: &'static str,
        port: u16,
        handler: Handler,
    ) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let (st, count) = (stop.clone(), accepted.clone());
        let t = topo.in_ns(role, move || {
            let l = TcpListener::bind((ip, port));
            let l = match l {
                Ok(l) => l,
                Err(e) => {
                    tx.send(Err(e.to_string())).unwrap();
                    return;
                }
            };
            l.set_nonblocking(true).unwrap();
            tx.send(Ok(())).unwrap();
            serve_tcp(&l, &st, &count, handler);
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("tcp server thread")
            .unwrap_or_else(|e| panic!("tcp server bind {ip}:{port} in {role}: {e}"));
        Server {
            stop,
            accepted,
            threads: vec![t],
        }
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn serve_tcp(l: &TcpListener, stop: &Arc<AtomicBool>, accepted: &AtomicUsize, handler: Handler) {
    let end = Instant::now() + SERVER_MAX_LIFE;
    let mut conns = Vec::new();
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        match l.accept() {
            Ok((s, peer)) => {
                accepted.fetch_add(1, Ordering::SeqCst);
                let _ = s.set_nonblocking(false);
                let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                let st = stop.clone();
                conns.push(thread::spawn(move || handler(s, peer, &st)));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for c in conns {
        let _ = c.join();
    }
}

/// The default handler: one line `<peer_ip> <local_ip>:<local_port>`, then close.
pub fn answer_line(mut s: TcpStream, peer: SocketAddr, _stop: &AtomicBool) {
    let local = s.local_addr().unwrap();
    let _ = writeln!(s, "{} {}:{}", peer.ip(), local.ip(), local.port());
    let _ = s.flush();
}

fn serve_udp(s: &UdpSocket, stop: &AtomicBool) {
    let end = Instant::now() + SERVER_MAX_LIFE;
    let local = s.local_addr().unwrap();
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        if let Ok((_, peer)) = s.recv_from(&mut buf) {
            let line = format!("{} {}:{}\n", peer.ip(), local.ip(), local.port());
            let _ = s.send_to(line.as_bytes(), peer);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connect, read one line until EOF, with 5 s connect/read timeouts.
pub fn tcp_exchange(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("read from {addr}: {e} (got {text:?})"))?;
    Ok(text.trim().to_string())
}

/// Send one datagram and wait for the answer; up to 3 tries of 2 s.
pub fn udp_exchange(addr: SocketAddr) -> Result<String, String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    s.connect(addr)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1500];
    let mut last = String::new();
    for _ in 0..3 {
        s.send(b"ping").map_err(|e| format!("send {addr}: {e}"))?;
        match s.recv(&mut buf) {
            Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string()),
            Err(e) => last = format!("no answer from {addr}: {e}"),
        }
    }
    Err(last)
}

/// Run a closure with a panic message that includes the router/gw state, to debug
/// network failures.
pub fn expect_reply(topo: &Topology, got: Result<String, String>, want: &str, what: &str) {
    match got {
        Ok(line) if line == want => {}
        Ok(line) => panic!("{what}: server answered {line:?}, expected {want:?}"),
        Err(e) => panic!("{what}: {e}\nstate:\n{}", topo.dump()),
    }
}
