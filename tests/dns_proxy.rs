//! DNS proxy end to end, as root (SPEC sections 5 and 6): each test builds its own
//! topology (`tests/topology.sh`), sets the router pod up in dns-proxy mode, runs a real
//! DNS server (dnsmasq, `common::dns`) and servers in the server namespace, runs the
//! forwarder in the router namespace and connects to it from the client namespace.
//! These tests FAIL (never skip) without root.

mod common;

use common::dns::Dns;
use common::http::{Wire, client, closed_within, echo, echo_then_report, get, sample};
use common::proxy::{
    assert_client_half_close, assert_cut_connections_logged, assert_grace_period_bounds_exit,
    assert_idle_closed_busy_kept, assert_sigterm_drains,
};
use common::*;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

/// Ports of the servers in the server namespace (on every server address).
const LINE_PORT: u16 = 80;
const ECHO_PORT: u16 = 7000;
/// Nothing listens there: connections are refused.
const CLOSED_PORT: u16 = 81;
/// The server's re-resolution period for TTL-0 records (the 2 s lower bound).
const REFRESH: Duration = Duration::from_secs(2);

/// One topology with the router set up in dns-proxy mode, DNS, and two servers.
/// Fields drop in order: servers and DNS first, the topology last.
struct Lab {
    line: Server,
    echo: Server,
    dns: Dns,
    t: Topology,
}

impl Lab {
    fn new() -> Lab {
        Lab::with_hosts(&[])
    }

    /// A lab whose DNS also serves `hosts` (name, IPv4) from a file it can rewrite.
    fn with_hosts(hosts: &[(&str, &str)]) -> Lab {
        let t = Topology::new();
        t.router_ok(&[], &proxy_mode_env("dns-proxy"));
        Lab {
            line: t.tcp_server(LINE_PORT),
            echo: Server::tcp_with(&t, "server", ECHO_PORT, echo_then_report),
            dns: Dns::start_with_hosts(&t, hosts),
            t,
        }
    }

    /// Start the forwarder (`args`: none for the role from the environment, or
    /// `["dns-proxy"]`) without waiting for it.
    fn spawn(&self, args: &[&str], list: &str, knobs: &[(&str, &str)]) -> ChildGuard {
        let mut env = envs(knobs);
        env.push(("EGRESS_DNS_PROXY_DESTINATION".into(), list.into()));
        self.t.spawn_router(args, &env)
    }

    /// Start the forwarder; returns once it logged `dns proxy listening` for every line.
    fn proxy(&self, list: &str, knobs: &[(&str, &str)]) -> ChildGuard {
        self.proxy_with_args(&[], list, knobs)
    }

    fn proxy_with_args(&self, args: &[&str], list: &str, knobs: &[(&str, &str)]) -> ChildGuard {
        let mut p = self.spawn(args, list, knobs);
        let entries = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count();
        let what = format!("dns proxy with {list:?}");
        p.wait_ready(
            &what,
            "dns proxy listening",
            entries,
            Duration::from_secs(15),
        );
        p
    }

    /// One connection to the router's `port` from the client: the line a LINE_PORT-like
    /// server answered (`<peer> <local ip>:<local port>`), or the error.
    fn line_via(&self, port: u16) -> Result<String, String> {
        self.t.tcp_from_client(&format!("{ROUTER_IP}:{port}"))
    }

    /// A connection to the router's `port` is forwarded to `ip`:`server_port` and the
    /// server sees it coming from EGRESS_SOURCE.
    fn assert_forwarded(&self, port: u16, ip: &str, server_port: u16) {
        let want = format!("{SOURCE} {ip}:{server_port}");
        expect_reply(
            &self.t,
            self.line_via(port),
            &want,
            &format!("connection to {ROUTER_IP}:{port}"),
        );
    }

    /// The server address that answered one connection to `port` (must be forwarded).
    fn backend_of(&self, port: u16) -> String {
        let line = self
            .line_via(port)
            .unwrap_or_else(|e| panic!("connection to {ROUTER_IP}:{port}: {e}"));
        let mut words = line.split_whitespace();
        assert_eq!(
            words.next(),
            Some(SOURCE),
            "the server must see EGRESS_SOURCE: {line:?}"
        );
        let local = words.next().unwrap_or_default();
        local.split(':').next().unwrap_or_default().to_string()
    }

    /// An open connection through the forwarder on `port` to an `echo_then_report` server.
    fn echo_conn(&self, port: u16) -> Wire<'static> {
        let mut w = client(&self.t, &format!("{ROUTER_IP}:{port}"))
            .unwrap_or_else(|e| panic!("connect to {ROUTER_IP}:{port}: {e}"));
        echo(&mut w, "open\n").unwrap_or_else(|e| panic!("echo through :{port}: {e}"));
        w
    }
}

/// A connection accepted by the router is closed without a byte from any server.
fn assert_closed_without_data(got: Result<String, String>, what: &str) {
    match got {
        Ok(line) => assert!(line.is_empty(), "{what}: a server answered {line:?}"),
        Err(e) => assert!(
            !e.starts_with("connect"),
            "{what}: the router must accept and then close, got: {e}"
        ),
    }
}

/// The `connection` log lines of `listener`, once there are `count` (at most 5 s).
fn connection_lines(p: &ChildGuard, listener: u16, count: usize) -> Vec<String> {
    let want = format!("listener={listener}");
    let is_line = |l: &str| l.contains(" connection ") && l.split_whitespace().any(|w| w == want);
    let lines = eventually(
        Duration::from_secs(5),
        &format!("{count} connection log lines with {want}"),
        || {
            let lines: Vec<String> = p
                .lines()
                .into_iter()
                .map(|l| l.2)
                .filter(|l| is_line(l))
                .collect();
            if lines.len() >= count {
                Ok(lines)
            } else {
                Err(p.stderr())
            }
        },
    );
    assert_eq!(
        lines.len(),
        count,
        "connection log lines for {want}:\n{}",
        p.stderr()
    );
    lines
}

fn log_has(p: &ChildGuard, text: &str, limit: Duration) -> bool {
    p.wait_line(|l| l.contains(text), limit).is_some()
}

// ---------------------------------------------------------------- targets

#[test]
fn address_targets_with_default_and_overridden_port() {
    let lab = Lab::new();
    let _p = lab.proxy("# by address\n80 203.0.113.5\n\n8080 203.0.113.6 80\n", &[]);
    lab.assert_forwarded(80, "203.0.113.5", LINE_PORT);
    lab.assert_forwarded(8080, "203.0.113.6", LINE_PORT);
    assert_eq!(lab.line.accepted(), 2);
}

#[test]
fn name_targets_with_default_and_overridden_port() {
    let lab = Lab::new();
    // the subcommand selects the role too
    let _p = lab.proxy_with_args(
        &["dns-proxy"],
        "80 web.example.com\n8080 Other.Example.NET. 80",
        &[],
    );
    lab.assert_forwarded(80, "203.0.113.5", LINE_PORT);
    lab.assert_forwarded(8080, "203.0.113.6", LINE_PORT);
}

#[test]
fn connections_are_spread_over_every_address_of_a_name() {
    let lab = Lab::new();
    // multi.example.org has 203.0.113.5 and 203.0.113.7
    let _p = lab.proxy("80 multi.example.org", &[]);
    let mut seen = BTreeMap::new();
    for _ in 0..10 {
        *seen.entry(lab.backend_of(80)).or_insert(0) += 1;
    }
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        ["203.0.113.5", "203.0.113.7"],
        "10 connections must reach both addresses: {seen:?}"
    );
    assert!(
        seen.values().all(|&n| n >= 3),
        "10 connections must be spread roughly evenly: {seen:?}"
    );
}

// ---------------------------------------------------------------- re-resolution

#[test]
fn a_changed_address_is_followed_without_restart() {
    let lab = Lab::with_hosts(&[("moving.example.org", "203.0.113.5")]);
    let p = lab.proxy("80 moving.example.org", &[]);
    lab.assert_forwarded(80, "203.0.113.5", LINE_PORT);

    lab.dns
        .set_hosts(&lab.t, &[("moving.example.org", "203.0.113.6")]);
    eventually(
        REFRESH * 3,
        "connections must follow the record to 203.0.113.6 (TTL 0)",
        || match lab.backend_of(80) {
            ip if ip == "203.0.113.6" => Ok(()),
            ip => Err(format!("still {ip}:\n{}", p.stderr())),
        },
    );
    for _ in 0..3 {
        lab.assert_forwarded(80, "203.0.113.6", LINE_PORT);
    }
    assert!(
        log_has(&p, "backends changed", Duration::ZERO),
        "no `backends changed` line:\n{}",
        p.stderr()
    );
}

#[test]
fn a_dns_outage_keeps_the_last_good_addresses() {
    let mut lab = Lab::new();
    let p = lab.proxy("80 web.example.com", &[]);
    lab.assert_forwarded(80, "203.0.113.5", LINE_PORT);

    lab.dns.stop();
    // five refresh periods without DNS: every connection still reaches the last address
    let start = Instant::now();
    while start.elapsed() < REFRESH * 5 {
        lab.assert_forwarded(80, "203.0.113.5", LINE_PORT);
        thread::sleep(Duration::from_millis(250));
    }
    assert!(
        log_has(
            &p,
            "re-resolution failed; keeping the last addresses",
            Duration::from_secs(10)
        ),
        "no warning about the failed re-resolution:\n{}",
        p.stderr()
    );
    lab.assert_forwarded(80, "203.0.113.5", LINE_PORT);
}

#[test]
fn an_unresolvable_name_at_start_is_an_error() {
    let lab = Lab::new();
    let mut p = lab.spawn(&[], "80 203.0.113.5\n8080 late.example.org 80", &[]);
    let st = p.wait_timeout(Duration::from_secs(20));
    // the error names the port, the target and the way to start anyway
    assert_error_exit(
        st,
        &p.stderr(),
        1,
        &[
            "8080",
            "late.example.org",
            "EGRESS_DNS_PROXY_ALLOW_UNRESOLVED",
        ],
        "an unresolvable name at start",
    );
}

#[test]
fn allow_unresolved_starts_and_forwards_once_the_name_exists() {
    let lab = Lab::new();
    let p = lab.proxy(
        "80 late.example.org",
        &[("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "true")],
    );
    assert_closed_without_data(lab.line_via(80), "a name not resolved yet");
    let line = &connection_lines(&p, 80, 1)[0];
    assert_eq!(field(line, "outcome"), Some("failed"), "{line}");
    assert_eq!(lab.line.accepted(), 0);

    lab.dns
        .set_hosts(&lab.t, &[("late.example.org", "203.0.113.6")]);
    let want = format!("{SOURCE} 203.0.113.6:{LINE_PORT}");
    eventually(
        REFRESH * 3,
        "once late.example.org exists (TTL 0) connections must reach it",
        || match lab.line_via(80) {
            Ok(line) if line == want => Ok(()),
            other => Err(format!("got {other:?}:\n{}", p.stderr())),
        },
    );
}

#[test]
fn allow_unresolved_starts_at_once_while_dns_is_down() {
    let mut lab = Lab::new();
    lab.dns.stop();
    let mut p = lab.spawn(
        &[],
        "80 web.example.com\n8080 other.example.net 80",
        &[("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "true")],
    );
    // "starts and retries": serving (and closing connections) while names do not resolve
    p.wait_ready(
        "dns proxy with DNS down and EGRESS_DNS_PROXY_ALLOW_UNRESOLVED=true",
        "dns proxy listening",
        2,
        Duration::from_secs(5),
    );
    assert_closed_without_data(lab.line_via(80), "a name not resolved yet");
    let line = &connection_lines(&p, 80, 1)[0];
    assert_eq!(field(line, "outcome"), Some("failed"), "{line}");
}

// ---------------------------------------------------------------- failed backends

#[test]
fn a_refusing_backend_is_skipped() {
    let four = ["203.0.113.5", "203.0.113.6", "203.0.113.7", "203.0.113.53"];
    let lab = Lab::with_hosts(&four.map(|ip| ("four.example.org", ip)));
    // port 90 only on 203.0.113.5: 203.0.113.7:90 refuses
    let _only_5 = Server::tcp_at(&lab.t, "server", "203.0.113.5", 90, answer_line);
    let p = lab.proxy(
        &format!(
            "90 multi.example.org\n{CLOSED_PORT} multi.example.org\n\
             82 four.example.org {CLOSED_PORT}"
        ),
        &[],
    );
    for i in 0..10 {
        let got = lab.line_via(90);
        expect_reply(
            &lab.t,
            got,
            &format!("{SOURCE} 203.0.113.5:90"),
            &format!("connection {i} to a name with one refusing address"),
        );
    }
    // the refusing address is tried once, then marked down (10 s) and skipped
    let lines = connection_lines(&p, 90, 10);
    let skipped = lines.iter().filter(|l| l.contains("skipped")).count();
    assert_eq!(
        skipped,
        1,
        "the refusing backend must be tried once and then skipped:\n{}",
        lines.join("\n")
    );

    // no backend works: the client connection is closed, both were tried
    assert_closed_without_data(lab.line_via(CLOSED_PORT), "every backend refusing");
    let line = &connection_lines(&p, CLOSED_PORT, 1)[0];
    assert_eq!(field(line, "outcome"), Some("failed"), "{line}");
    for ip in ["203.0.113.5", "203.0.113.7"] {
        assert!(
            line.contains(&format!("{ip}:{CLOSED_PORT}")),
            "{ip} must have been tried: {line}"
        );
    }

    // four addresses, all refusing: three tries, then the client connection is closed
    assert_closed_without_data(lab.line_via(82), "four refusing backends");
    let line = &connection_lines(&p, 82, 1)[0];
    assert_eq!(field(line, "outcome"), Some("failed"), "{line}");
    let tried = four
        .iter()
        .filter(|ip| line.contains(&format!("{ip}:{CLOSED_PORT}")))
        .count();
    assert_eq!(tried, 3, "a client connection tries 3 backends: {line}");
}

#[test]
fn a_silent_backend_is_skipped_after_the_connect_timeout() {
    let lab = Lab::new();
    // SYNs to 203.0.113.7:80 vanish
    lab.t.sh(
        "server",
        &[
            "iptables",
            "-w",
            "5",
            "-A",
            "INPUT",
            "-d",
            "203.0.113.7",
            "-p",
            "tcp",
            "--dport",
            "80",
            "-j",
            "DROP",
        ],
    );
    let p = lab.proxy(
        "80 multi.example.org",
        &[("EGRESS_DNS_PROXY_CONNECT_TIMEOUT", "500ms")],
    );
    let start = Instant::now();
    for i in 0..6 {
        let got = lab.line_via(80);
        expect_reply(
            &lab.t,
            got,
            &format!("{SOURCE} 203.0.113.5:{LINE_PORT}"),
            &format!("connection {i} to a name with one silent address"),
        );
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "6 connections took {took:?}: the silent backend must cost one 500 ms timeout"
    );
    let lines = connection_lines(&p, 80, 6);
    let timed_out: Vec<&String> = lines.iter().filter(|l| l.contains("skipped")).collect();
    assert_eq!(
        timed_out.len(),
        1,
        "the silent backend must be tried once and then skipped:\n{}",
        lines.join("\n")
    );
    let waited: u64 = field(timed_out[0], "duration_ms")
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    assert!(
        (450..3000).contains(&waited),
        "the attempt on the silent backend must end after about 500 ms: {}",
        timed_out[0]
    );
}

// ---------------------------------------------------------------- relaying

/// What `report_after_half_close` received after its own half-close.
static AFTER_HALF_CLOSE: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// Server handler: sends `bye`, half-closes, then keeps reading until the client's end
/// of stream and records what came.
fn report_after_half_close(stream: TcpStream, _peer: SocketAddr, stop: &AtomicBool) {
    let mut w = Wire::new(stream, Duration::from_secs(10), Some(stop));
    if w.write_all(b"bye\n").is_err() || w.shutdown_write().is_err() {
        return;
    }
    if let Ok(got) = w.read_to_end() {
        *AFTER_HALF_CLOSE.lock().unwrap() = Some(got);
    }
}

#[test]
fn half_close_works_both_ways() {
    let lab = Lab::new();
    let _first = Server::tcp_with(&lab.t, "server", 7001, report_after_half_close);
    let _p = lab.proxy(&format!("{ECHO_PORT} 203.0.113.5\n7001 203.0.113.6"), &[]);

    // client -> server: the echo server answers only after it saw our end of stream
    let mut w = lab.echo_conn(ECHO_PORT);
    assert_client_half_close(&mut w, 5);

    // server -> client: the server closes first and still receives what we send after
    let mut w = client(&lab.t, &format!("{ROUTER_IP}:7001")).unwrap();
    let got = w.read_to_end().expect("read until the server's half-close");
    assert_eq!(String::from_utf8_lossy(&got), "bye\n");
    w.write_all(b"sent after your close\n")
        .expect("writing after the server's half-close");
    w.shutdown_write().unwrap();
    let received = eventually(
        Duration::from_secs(5),
        "the server must see the client's end of stream",
        || {
            AFTER_HALF_CLOSE
                .lock()
                .unwrap()
                .take()
                .ok_or("nothing yet".to_string())
        },
    );
    assert_eq!(
        String::from_utf8_lossy(&received),
        "sent after your close\n",
        "after the server's half-close the client's bytes must still arrive"
    );
}

#[test]
fn idle_connections_are_closed_busy_ones_kept() {
    let lab = Lab::new();
    let p = lab.proxy(
        &format!("{ECHO_PORT} 203.0.113.5"),
        &[("EGRESS_DNS_PROXY_IDLE_TIMEOUT", "1s")],
    );
    let mut idle = lab.echo_conn(ECHO_PORT);
    let mut busy = lab.echo_conn(ECHO_PORT);
    assert_idle_closed_busy_kept(&mut idle, &mut busy);
    let lines = connection_lines(&p, ECHO_PORT, 1);
    assert!(
        lines[0].contains("idle"),
        "detail must say idle: {}",
        lines[0]
    );
}

#[test]
fn connections_over_the_limit_are_closed_at_once() {
    let lab = Lab::new();
    let p = lab.proxy(
        &format!("{ECHO_PORT} 203.0.113.5\n8080 203.0.113.6 {ECHO_PORT}"),
        &[("EGRESS_DNS_PROXY_MAX_CONNECTIONS", "2")],
    );
    // the limit is over all listeners
    let mut first = lab.echo_conn(ECHO_PORT);
    let mut second = lab.echo_conn(8080);

    let mut third = client(&lab.t, &format!("{ROUTER_IP}:{ECHO_PORT}"))
        .expect("the third connection must be accepted (and closed)");
    let took = closed_within(&mut third, Duration::from_secs(2));
    assert!(
        took.is_some_and(|t| t < Duration::from_millis(500)),
        "the third connection with a limit of 2 must be closed at once, closed after {took:?}"
    );
    assert_eq!(
        lab.echo.accepted(),
        2,
        "the connection over the limit reached a server"
    );
    assert!(
        log_has(&p, "connection limit reached", Duration::from_secs(2)),
        "the refusal must be logged:\n{}",
        p.stderr()
    );

    echo(&mut first, "a").expect("first connection after the refusal");
    echo(&mut second, "b").expect("second connection after the refusal");
    drop(first);
    eventually(
        Duration::from_secs(3),
        "a new connection must work once one closed",
        || {
            let mut w =
                client(&lab.t, &format!("{ROUTER_IP}:{ECHO_PORT}")).map_err(|e| e.to_string())?;
            w.set_patience(Duration::from_millis(500));
            echo(&mut w, "again")
        },
    );
}

// ---------------------------------------------------------------- logs

#[test]
fn one_log_line_per_connection_with_its_fields() {
    let lab = Lab::new();
    let p = lab.proxy(
        &format!(
            "{ECHO_PORT} 203.0.113.5\n8080 web.example.com {LINE_PORT}\n{CLOSED_PORT} 203.0.113.6"
        ),
        &[],
    );
    let mut w = lab.echo_conn(ECHO_PORT); // "open\n" both ways
    echo(&mut w, "hello\n").unwrap();
    w.shutdown_write().unwrap();
    let rest = w.read_to_end().unwrap(); // "EOF after 11 bytes\n"
    drop(w);
    lab.assert_forwarded(8080, "203.0.113.5", LINE_PORT);
    assert_closed_without_data(lab.line_via(CLOSED_PORT), "a refused target");

    let check = |line: &str, want: &[(&str, String)]| {
        let client_field = field(line, "client").unwrap_or("");
        assert!(
            client_field.starts_with(&format!("{CLIENT_IP}:"))
                && client_field[CLIENT_IP.len() + 1..].parse::<u16>().is_ok(),
            "client={CLIENT_IP}:PORT expected: {line}"
        );
        for (k, v) in want {
            assert_eq!(field(line, k), Some(v.as_str()), "{k} in: {line}");
        }
        assert!(
            field(line, "duration_ms").is_some_and(|d| d.parse::<u64>().is_ok()),
            "duration_ms=N in: {line}"
        );
        assert!(field(line, "detail").is_some(), "detail= in: {line}");
    };
    let line = &connection_lines(&p, ECHO_PORT, 1)[0];
    check(
        line,
        &[
            ("listener", ECHO_PORT.to_string()),
            ("target", "203.0.113.5".into()),
            ("backend", format!("203.0.113.5:{ECHO_PORT}")),
            ("outcome", "forwarded".into()),
            ("bytes_up", "11".into()),
            ("bytes_down", (11 + rest.len()).to_string()),
        ],
    );
    let line = &connection_lines(&p, 8080, 1)[0];
    check(
        line,
        &[
            ("target", "web.example.com".into()),
            ("backend", format!("203.0.113.5:{LINE_PORT}")),
            ("outcome", "forwarded".into()),
            ("bytes_up", "0".into()),
            (
                "bytes_down",
                format!("{SOURCE} 203.0.113.5:{LINE_PORT}\n")
                    .len()
                    .to_string(),
            ),
        ],
    );
    let line = &connection_lines(&p, CLOSED_PORT, 1)[0];
    check(
        line,
        &[
            ("target", "203.0.113.6".into()),
            ("outcome", "failed".into()),
            ("bytes_up", "0".into()),
            ("bytes_down", "0".into()),
        ],
    );
    assert!(
        line.to_lowercase().contains("refused"),
        "the detail must say why: {line}"
    );
    let all = p
        .lines()
        .iter()
        .filter(|l| l.2.contains(" connection ") && l.2.contains("outcome="))
        .count();
    assert_eq!(all, 3, "one line per connection:\n{}", p.stderr());
}

// ---------------------------------------------------------------- DNS answers

/// What `dig` reported for one query.
#[derive(Debug)]
struct Dig {
    status: String,
    flags: Vec<String>,
    answers: Vec<String>,
}

/// `dig @192.0.2.70 NAME TYPE` from the client namespace (one try, 2 s).
fn dig(t: &Topology, name: &str, rtype: &str, tcp: bool) -> Dig {
    let server = format!("@{ROUTER_IP}");
    let mut args = vec!["dig", &server, name, rtype, "+tries=1", "+time=2"];
    if tcp {
        args.push("+tcp");
    }
    let out = t.run("client", &args, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .and_then(|s| s.split(',').next());
    let Some(status) = status else {
        panic!("dig {name} {rtype} got no answer:\n{}", output_text(&out));
    };
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .and_then(|l| l.split(';').next())
        .unwrap_or_default();
    let answers = text
        .split(";; ANSWER SECTION:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|l| !l.trim().is_empty())
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        })
        .unwrap_or_default();
    Dig {
        status: status.to_string(),
        flags: flags.split_whitespace().map(String::from).collect(),
        answers,
    }
}

fn check_answers(tcp: bool) {
    let lab = Lab::new();
    let _p = lab.proxy(
        "80 web.example.com\n8080 Other.Example.NET 80\n9000 203.0.113.7",
        &[("EGRESS_DNS_PROXY_ANSWER_ADDRESS", ROUTER_IP)],
    );
    let transport = if tcp { "TCP" } else { "UDP" };
    for name in ["web.example.com", "other.example.net", "WEB.Example.com"] {
        let got = dig(&lab.t, name, "A", tcp);
        assert_eq!(got.status, "NOERROR", "A {name} over {transport}: {got:?}");
        assert!(
            got.flags.iter().any(|f| f == "aa"),
            "A {name} over {transport} must be authoritative: {got:?}"
        );
        // names compare case-insensitively; the owner's case is the server's choice
        let answers: Vec<String> = got.answers.iter().map(|a| a.to_lowercase()).collect();
        assert_eq!(
            answers,
            [format!("{}. 30 in a {ROUTER_IP}", name.to_lowercase())],
            "A {name} over {transport}: {got:?}"
        );
    }
    let got = dig(&lab.t, "web.example.com", "AAAA", tcp);
    assert!(
        got.status == "NOERROR" && got.answers.is_empty(),
        "AAAA for a listed name over {transport}: NOERROR without answer, got {got:?}"
    );
    // listed nowhere, though the real DNS knows them
    for name in ["www.example.org", "example.com"] {
        let got = dig(&lab.t, name, "A", tcp);
        assert_eq!(
            got.status, "REFUSED",
            "A {name} (not listed) over {transport}: {got:?}"
        );
        assert!(got.answers.is_empty(), "{got:?}");
    }
}

#[test]
fn answers_dns_for_listed_names_over_tcp() {
    check_answers(true);
}

#[test]
fn answers_dns_for_listed_names_over_udp() {
    check_answers(false);
}

// ---------------------------------------------------------------- signals

#[test]
fn sigterm_stops_accepting_and_lets_open_connections_finish() {
    let lab = Lab::new();
    let mut p = lab.proxy(&format!("{ECHO_PORT} 203.0.113.5"), &[]);
    let w = lab.echo_conn(ECHO_PORT); // "open\n"
    assert_sigterm_drains(&lab.t, &mut p, &format!("{ROUTER_IP}:{ECHO_PORT}"), w, 5);
}

#[test]
fn sigterm_grace_period_bounds_the_exit() {
    let lab = Lab::new();
    let mut p = lab.proxy(
        &format!("{ECHO_PORT} 203.0.113.5"),
        &[("EGRESS_DNS_PROXY_GRACE_PERIOD", "1s")],
    );
    let mut w = lab.echo_conn(ECHO_PORT);
    assert_grace_period_bounds_exit(&mut p, &mut w);
}

#[test]
fn connections_cut_at_the_end_of_the_grace_period_are_logged() {
    let lab = Lab::new();
    let mut p = lab.proxy(
        &format!("{ECHO_PORT} 203.0.113.5"),
        &[("EGRESS_DNS_PROXY_GRACE_PERIOD", "1s")],
    );
    let open: Vec<_> = (0..20).map(|_| lab.echo_conn(ECHO_PORT)).collect();
    assert_cut_connections_logged(&mut p, open.len(), "connection");
}

// ---------------------------------------------------------------- hardening

/// README "Metrics": the most `backend_up` series of one target.
const BACKEND_SERIES: usize = 16;

/// The `backend_up` series of port 80's `target` in a scrape: (address, value), in
/// address order.
fn backend_series(metrics: &str, target: &str) -> Vec<(String, f64)> {
    let prefix = format!(r#"egress_router_backend_up{{listener="80",target="{target}",address=""#);
    let mut series: Vec<(std::net::IpAddr, f64)> = metrics
        .lines()
        .filter_map(|l| {
            let (address, value) = l.strip_prefix(&prefix)?.split_once("\"} ")?;
            Some((address.parse().ok()?, value.parse().ok()?))
        })
        .collect();
    series.sort_by_key(|(address, _)| *address);
    series
        .into_iter()
        .map(|(a, v)| (a.to_string(), v))
        .collect()
}

/// A name with 28 A records gets 16 `backend_up` series, the lowest addresses, and the
/// other 12 are counted; once it has 3, it has 3 series and none omitted. (28 records
/// fit a 512-byte UDP answer: a truncated one sends the resolver to TCP, which dnsmasq
/// run with `--no-daemon` answers in its main process, stalling while the connection
/// stays open.)
#[test]
fn backend_up_series_are_capped_per_target_and_the_rest_counted() {
    let addresses: Vec<String> = (100..128).map(|i| format!("203.0.113.{i}")).collect();
    let many: Vec<(&str, &str)> = addresses
        .iter()
        .map(|a| ("many.example.org", a.as_str()))
        .collect();
    let lab = Lab::with_hosts(&many);
    let _p = lab.proxy("80 many.example.org", &[]);
    let scrape_at = format!("{ROUTER_IP}:9090");
    let omitted =
        r#"egress_router_backend_series_omitted{listener="80",target="many.example.org"}"#;

    let (_, metrics) = get(&lab.t, "client", &scrape_at, "/metrics");
    let series = backend_series(&metrics, "many.example.org");
    let lowest: Vec<String> = addresses[..BACKEND_SERIES].to_vec();
    assert_eq!(
        series.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
        lowest,
        "{BACKEND_SERIES} series, the lowest addresses, of 28:\n{metrics}"
    );
    assert!(series.iter().all(|(_, up)| *up == 1.0), "{series:?}");
    assert_eq!(sample(&metrics, omitted), Some(12.0), "{metrics}");

    lab.dns.set_hosts(
        &lab.t,
        &[
            ("many.example.org", "203.0.113.120"),
            ("many.example.org", "203.0.113.5"),
            ("many.example.org", "203.0.113.7"),
        ],
    );
    let metrics = eventually(REFRESH * 3, "three backends after the change", || {
        let (_, metrics) = get(&lab.t, "client", &scrape_at, "/metrics");
        match backend_series(&metrics, "many.example.org").len() {
            3 => Ok(metrics),
            n => Err(format!("{n} series")),
        }
    });
    let addresses: Vec<String> = backend_series(&metrics, "many.example.org")
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        addresses,
        ["203.0.113.5", "203.0.113.7", "203.0.113.120"],
        "the series of addresses gone are gone"
    );
    assert_eq!(sample(&metrics, omitted), Some(0.0), "{metrics}");
}

#[test]
fn answers_that_point_at_the_pod_itself_are_never_backends() {
    let lab = Lab::new();
    // self.example.net is the router pod's own address, on the forwarder's own port;
    // loop.example.net is loopback
    let mut p = lab.proxy(
        "5300 self.example.net\n5301 loop.example.net 80",
        &[("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "true")],
    );
    for port in [5300, 5301] {
        assert_closed_without_data(lab.line_via(port), &format!("port {port}"));
    }
    // Lines in quick succession are written in one batch, at most 50 ms later.
    p.wait_ready(
        "the refusals' log lines",
        "no backend address",
        2,
        Duration::from_secs(5),
    );
    let mut strict = lab.spawn(&[], "5300 self.example.net", &[]);
    let status = strict.wait_timeout(Duration::from_secs(10));
    assert_error_exit(
        status,
        &strict.stderr(),
        1,
        &["self.example.net", "never dialed"],
        "a name that resolves only to the pod itself",
    );
}

#[test]
fn a_literal_target_that_is_the_proxy_itself_is_a_startup_error() {
    let lab = Lab::new();
    for (list, reason) in [
        ("5300 192.0.2.70", "192.0.2.70:5300: an address of this pod"),
        ("5300 127.0.0.1", "127.0.0.1"),
    ] {
        let mut p = lab.spawn(&[], list, &[]);
        let status = p.wait_timeout(Duration::from_secs(5));
        assert_error_exit(
            status,
            &p.stderr(),
            2,
            &["EGRESS_DNS_PROXY_DESTINATION", reason],
            "a forwarder to the pod itself",
        );
    }
}

/// Run as `prlimit --nofile=128` the default cap of 4000 does not fit: it is lowered
/// with a warning naming the numbers, and connections over it are closed at once
/// instead of waiting in the backlog while accept fails.
#[test]
fn the_connection_cap_fits_the_open_file_limit() {
    let lab = Lab::new();
    let list = format!("{ECHO_PORT} 203.0.113.5");
    let env = envs(&[("EGRESS_DNS_PROXY_DESTINATION", list.as_str())]);
    let bin = bin();
    let limited = ["prlimit", "--nofile=128:128", bin.as_str()];
    let mut p = lab.t.spawn("router", &limited, &env);
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        1,
        Duration::from_secs(10),
    );
    let fits = (128 - 64) / 6;
    assert!(
        p.stderr().contains(&format!("using {fits}")),
        "the lowered cap must be logged:\n{}",
        p.stderr()
    );
    let open: Vec<_> = (0..fits).map(|_| lab.echo_conn(ECHO_PORT)).collect();
    let mut over = client(&lab.t, &format!("{ROUTER_IP}:{ECHO_PORT}")).expect("connect");
    let took = closed_within(&mut over, Duration::from_secs(2));
    assert!(
        took.is_some_and(|t| t < Duration::from_millis(500)),
        "a connection over the lowered cap must be closed at once, closed after {took:?}"
    );
    assert_eq!(lab.echo.accepted(), open.len());
    let mut explicit = lab.t.spawn(
        "router",
        &limited,
        &[env, envs(&[("EGRESS_DNS_PROXY_MAX_CONNECTIONS", "4000")])].concat(),
    );
    let status = explicit.wait_timeout(Duration::from_secs(5));
    assert_error_exit(
        status,
        &explicit.stderr(),
        2,
        &[
            "EGRESS_DNS_PROXY_MAX_CONNECTIONS",
            "4000 connections need",
            "128",
        ],
        "an explicit cap over the open-file limit",
    );
}
