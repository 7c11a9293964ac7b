//! What runs on the HA LAN: the routers (init, then `redirect`), their operations
//! endpoint, the server answering with the addresses it sees, and keepalived as a peer.

use super::super::{ChildGuard, PATH, enter_netns, envs, eventually, output_text, with_var};
use super::{HA_SOURCE, HaLan, VRID};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

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

/// What the tests do to the LAN and through it.
impl HaLan {
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
