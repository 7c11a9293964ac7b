//! The test topology of `tests/topology.sh` (client, node, router, gw and server
//! namespaces), one instance a test, removed on drop: commands and the binary run in
//! its namespaces, closures run on threads inside them, the gateway's ARP capture, and
//! the `ip` commands that restore the router's reply routing.

use super::process::clean_command;
use super::{ChildGuard, PATH, TOPOLOGY_SH, bin, output_text, require_root};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One instance of the topology of `tests/topology.sh`, removed on drop (also on panic).
pub struct Topology {
    pub prefix: String,
}

impl Topology {
    /// Builds a fresh instance with a unique prefix (requires root).
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

    /// Runs a command in the namespace of `role` and returns its output, whatever it is.
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

    /// Spawns the binary under test in the router namespace (see `spawn`).
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
