//! SNI-checked tunnels, as root: a CONNECT tunnel that a name rule allowed carries TLS
//! only to a server name the list allows. The shared front end is one server address
//! (203.0.113.5) serving both `web.example.com` (listed) and `other.example.net` (not);
//! the test DNS server answers for both. Real handshakes use `openssl s_client` through
//! the proxy to `openssl s_server`; split, replayed and non-TLS first bytes go to an
//! echo server, which shows exactly what reached the target. These tests FAIL (never
//! skip) without root.

mod common;

use common::dns::Dns;
use common::http::{Wire, client, connect_tunnel};
use common::proxy::spawn_http_proxy;
use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const TLS_PORT: u16 = 443;
const LISTED: &str = "web.example.com";
const UNLISTED: &str = "other.example.net";

/// What the counting echo servers received, by port: (connections ended, bytes).
static RECEIVED: Mutex<BTreeMap<u16, (usize, usize)>> = Mutex::new(BTreeMap::new());

/// Echo handler that counts, server side, the connections it saw end and the bytes it
/// received on them: what reached the target, whatever the client saw.
fn counting_echo(mut stream: TcpStream, _peer: SocketAddr, _stop: &AtomicBool) {
    let port = stream.local_addr().unwrap().port();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut total = 0;
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        total += n;
        if stream.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
    let mut received = RECEIVED.lock().unwrap();
    let entry = received.entry(port).or_default();
    entry.0 += 1;
    entry.1 += total;
}

/// The connections ended and bytes received so far on `port`.
fn received(port: u16) -> (usize, usize) {
    RECEIVED
        .lock()
        .unwrap()
        .get(&port)
        .copied()
        .unwrap_or_default()
}

struct Lab {
    t: Topology,
    _dns: Dns,
    _echo: Server,
    /// The counting echo server's port (one a test: the counts are the process's).
    port: u16,
}

impl Lab {
    fn new(port: u16) -> Lab {
        let t = Topology::new();
        t.router_ok(&[], &proxy_mode_env("http-proxy"));
        Lab {
            _echo: Server::tcp_with(&t, "server", port, counting_echo),
            _dns: Dns::start(&t),
            port,
            t,
        }
    }

    /// Asserts that the next connection to end at the target (after `before`) brought
    /// it exactly `bytes`.
    fn target_got(&self, before: (usize, usize), bytes: usize) {
        let after = eventually(
            Duration::from_secs(5),
            "the target's connection ended",
            || {
                let now = received(self.port);
                match now.0 > before.0 {
                    true => Ok(now),
                    false => Err(format!("{now:?}")),
                }
            },
        );
        assert_eq!(after.1 - before.1, bytes, "bytes that reached the target");
    }

    fn proxy(&self, rules: &str, knobs: &[(&str, &str)]) -> ChildGuard {
        spawn_http_proxy(&self.t, rules, knobs)
    }

    /// A real ClientHello naming `name`, as `openssl s_client` sends it (caught on a
    /// listener of the client namespace).
    fn client_hello(&self, name: &str) -> Vec<u8> {
        let (tx, rx) = std::sync::mpsc::channel();
        let catcher = self.t.in_ns("client", move || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut bytes = Vec::new();
            let mut chunk = [0u8; 4096];
            while bytes.len() < 5
                || bytes.len() < 5 + usize::from(u16::from_be_bytes([bytes[3], bytes[4]]))
            {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "s_client closed early");
                bytes.extend_from_slice(&chunk[..n]);
            }
            bytes
        });
        let port = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let mut client = self.t.spawn(
            "client",
            &[
                "timeout",
                "10",
                "openssl",
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                name,
            ],
            &[],
        );
        let hello = catcher.join().unwrap();
        client.stop();
        hello
    }
}

/// Opens a tunnel to `target`, sends `first` in `pieces` writes 50 ms apart, and
/// returns what came back before the tunnel closed: the echo when it was relayed,
/// nothing when it was cut.
fn through_tunnel(t: &Topology, target: &str, first: &[u8], pieces: usize) -> Vec<u8> {
    let (resp, mut wire) = connect_tunnel(t, &format!("{ROUTER_IP}:8080"), target);
    assert_eq!(resp.status(), 200, "{}", resp.body);
    for piece in first.chunks(first.len().div_ceil(pieces)) {
        wire.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    wire.shutdown_write().unwrap();
    echoed(&mut wire)
}

fn echoed(wire: &mut Wire) -> Vec<u8> {
    wire.read_to_end().unwrap_or_default()
}

/// The CONNECT request and `first` in one write (a client that does not wait for the
/// `200`): the proxy reads `first` with the request. Returns what came back after the
/// `200`.
fn pipelined(t: &Topology, target: &str, first: &[u8]) -> Vec<u8> {
    let mut wire = client(t, &format!("{ROUTER_IP}:8080")).unwrap();
    let mut bytes = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
    bytes.extend_from_slice(first);
    wire.write_all(&bytes).unwrap();
    let resp = wire.read_response("CONNECT").unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.body);
    wire.shutdown_write().unwrap();
    echoed(&mut wire)
}

/// `hello` (one TLS record) as two records, the handshake split in the middle.
fn two_records(hello: &[u8]) -> Vec<u8> {
    let handshake = &hello[5..];
    let (a, b) = handshake.split_at(handshake.len() / 2);
    let mut out = Vec::new();
    for part in [a, b] {
        out.extend_from_slice(&hello[..3]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn decision_lines(p: &ChildGuard) -> Vec<String> {
    p.stderr()
        .lines()
        .filter(|l| l.contains("decision"))
        .map(str::to_string)
        .collect()
}

/// The HTTP proxy's `/metrics`, scraped from the client side.
fn metrics(t: &Topology) -> String {
    let mut wire = client(t, &format!("{ROUTER_IP}:9090")).unwrap();
    wire.write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\n\r\n")
        .unwrap();
    wire.read_response("GET").unwrap().body
}

#[test]
fn a_real_handshake_completes_for_the_listed_name_and_not_for_another() {
    let lab = Lab::new(7443);
    let dir = std::env::temp_dir().join(format!("sni-{}", lab.t.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=web.example.com", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", output_text(&made));
    let cert_text = cert.to_str().unwrap();
    let key_text = key.to_str().unwrap();
    let mut server = lab.t.spawn(
        "server",
        &[
            "openssl",
            "s_server",
            "-accept",
            "203.0.113.5:443",
            "-cert",
            cert_text,
            "-key",
            key_text,
            "-www",
        ],
        &[],
    );
    server
        .wait_line(|l| l.contains("ACCEPT"), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("s_server did not start: {}", server.stderr()));
    let p = lab.proxy(LISTED, &[]);
    let handshake = |name: &str| {
        let command = format!(
            "echo | timeout 10 openssl s_client -brief -proxy {ROUTER_IP}:8080 -connect {LISTED}:{TLS_PORT} -servername {name}"
        );
        output_text(&lab.t.run("client", &["sh", "-c", &command], &[]))
    };
    let listed = handshake(LISTED);
    assert!(listed.contains("CONNECTION ESTABLISHED"), "{listed}");
    let unlisted = handshake(UNLISTED);
    assert!(!unlisted.contains("CONNECTION ESTABLISHED"), "{unlisted}");
    let (_, cut) = p
        .wait_line(
            |l| l.contains("denied") && l.contains(&format!("{LISTED}:{TLS_PORT}")),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| {
            panic!(
                "no line for the cut tunnel:\n{}",
                decision_lines(&p).join("\n")
            )
        });
    assert!(
        cut.contains(&format!("no rule allows {UNLISTED}"))
            && cut.contains("closed before relaying a byte"),
        "{cut}"
    );
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn split_hellos_are_read_whole_and_judged_before_a_byte_reaches_the_target() {
    let lab = Lab::new(7444);
    let _p = lab.proxy(LISTED, &[]);
    let target = format!("{LISTED}:{}", lab.port);
    let listed = two_records(&lab.client_hello(LISTED));
    let before = received(lab.port);
    assert_eq!(
        through_tunnel(&lab.t, &target, &listed, 3),
        listed,
        "relayed whole"
    );
    lab.target_got(before, listed.len());
    let unlisted = two_records(&lab.client_hello(UNLISTED));
    let before = received(lab.port);
    assert!(
        through_tunnel(&lab.t, &target, &unlisted, 3).is_empty(),
        "cut"
    );
    lab.target_got(before, 0);
    let upper = lab.client_hello("WEB.Example.COM.");
    assert_eq!(
        through_tunnel(&lab.t, &target, &upper, 1),
        upper,
        "one name, any spelling"
    );
    // sent with the request, in its read-ahead
    assert_eq!(pipelined(&lab.t, &target, &listed), listed);
    let before = received(lab.port);
    assert!(pipelined(&lab.t, &target, &unlisted).is_empty());
    lab.target_got(before, 0);
}

#[test]
fn star_judges_addresses_too_and_broken_tls_is_cut_and_counted() {
    let lab = Lab::new(7445);
    let p = lab.proxy(&format!("!{UNLISTED}\n*"), &[]);
    let target = format!("203.0.113.5:{}", lab.port);
    let listed = lab.client_hello(LISTED);
    let unlisted = lab.client_hello(UNLISTED);
    assert_eq!(through_tunnel(&lab.t, &target, &listed, 1), listed);
    let before = received(lab.port);
    assert!(
        through_tunnel(&lab.t, &target, &unlisted, 1).is_empty(),
        "behind an address"
    );
    lab.target_got(before, 0);
    // a warning alert before the ClientHello, which TLS servers skip: judged, refused
    let mut alert_first = vec![21, 3, 1, 0, 2, 1, 90];
    alert_first.extend(&unlisted);
    let before = received(lab.port);
    assert!(
        through_tunnel(&lab.t, &target, &alert_first, 1).is_empty(),
        "alert first"
    );
    lab.target_got(before, 0);
    let scraped = metrics(&lab.t);
    for sample in [
        "egress_router_tls_sni_cuts_total{role=\"http-proxy\",reason=\"server-name\"} 1",
        "egress_router_tls_sni_cuts_total{role=\"http-proxy\",reason=\"tls\"} 1",
    ] {
        assert!(scraped.contains(sample), "{sample} not in\n{scraped}");
    }
    let broken = p.wait_line(
        |l| l.contains("rule=tls") && l.contains("other than handshake"),
        Duration::from_secs(5),
    );
    assert!(broken.is_some(), "{}", decision_lines(&p).join("\n"));
}

#[test]
fn other_protocols_address_decisions_the_switch_and_report_mode_are_not_cut() {
    let lab = Lab::new(7446);
    let unlisted = lab.client_hello(UNLISTED);
    let ssh = b"SSH-2.0-OpenSSH_9.6\r\n".to_vec();
    let target = format!("{LISTED}:{}", lab.port);
    {
        let p = lab.proxy(LISTED, &[]);
        assert_eq!(through_tunnel(&lab.t, &target, &ssh, 1), ssh, "not TLS");
        let noted = p.wait_line(
            |l| l.contains("not judged by TLS server name: not TLS"),
            Duration::from_secs(5),
        );
        assert!(noted.is_some(), "{}", decision_lines(&p).join("\n"));
    }
    {
        // an address rule decided: by address literal, and for a name by its address
        let _p = lab.proxy("203.0.113.0/24", &[]);
        for target in [format!("203.0.113.5:{}", lab.port), target.clone()] {
            assert_eq!(
                through_tunnel(&lab.t, &target, &unlisted, 1),
                unlisted,
                "{target}"
            );
        }
    }
    {
        let _p = lab.proxy(LISTED, &[("EGRESS_HTTP_PROXY_TLS_SNI", "off")]);
        assert_eq!(
            through_tunnel(&lab.t, &target, &unlisted, 1),
            unlisted,
            "switched off"
        );
    }
    let p = lab.proxy(LISTED, &[("EGRESS_HTTP_PROXY_MODE", "report")]);
    assert_eq!(
        through_tunnel(&lab.t, &target, &unlisted, 1),
        unlisted,
        "report mode"
    );
    let reported = p.wait_line(
        |l| {
            l.contains("reported")
                && l.contains("rule=default")
                && l.contains(&format!("no rule allows {UNLISTED}"))
        },
        Duration::from_secs(5),
    );
    assert!(reported.is_some(), "{}", decision_lines(&p).join("\n"));
}
