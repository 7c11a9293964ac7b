//! SNI-checked tunnels, as root: a CONNECT tunnel that a name rule allowed carries TLS
//! only to a server name the list allows. The shared front end is one server address
//! (203.0.113.5) serving both `web.example.com` (listed) and `other.example.net` (not);
//! the test DNS server answers for both. Real handshakes use `openssl s_client` through
//! the proxy to `openssl s_server`; split, replayed and non-TLS first bytes go to an
//! echo server, which shows exactly what reached the target. These tests FAIL (never
//! skip) without root.

mod common;

use common::dns::Dns;
use common::http::{Wire, connect_tunnel, echo_then_report};
use common::proxy::spawn_http_proxy;
use common::*;
use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

const TLS_PORT: u16 = 443;
const ECHO_PORT: u16 = 7443;
const LISTED: &str = "web.example.com";
const UNLISTED: &str = "other.example.net";

struct Lab {
    t: Topology,
    _dns: Dns,
    _echo: Server,
}

impl Lab {
    fn new() -> Lab {
        let t = Topology::new();
        t.router_ok(&[], &proxy_mode_env("http-proxy"));
        Lab {
            _echo: Server::tcp_with(&t, "server", ECHO_PORT, echo_then_report),
            _dns: Dns::start(&t),
            t,
        }
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
    let mut back = wire.read_to_end().unwrap_or_default();
    // the echo server ends with `EOF after N bytes`
    if let Some(end) = back.windows(9).position(|w| w == b"EOF after") {
        back.truncate(end);
    }
    back
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

#[test]
fn a_real_handshake_completes_for_the_listed_name_and_not_for_another() {
    let lab = Lab::new();
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
    let lines = decision_lines(&p);
    let cut = lines
        .iter()
        .find(|l| l.contains("denied") && l.contains(&format!("{LISTED}:{TLS_PORT}")))
        .unwrap_or_else(|| panic!("no decision line for the cut tunnel:\n{}", lines.join("\n")));
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
    let lab = Lab::new();
    let _p = lab.proxy(LISTED, &[]);
    let target = format!("{LISTED}:{ECHO_PORT}");
    let listed = two_records(&lab.client_hello(LISTED));
    assert_eq!(
        through_tunnel(&lab.t, &target, &listed, 3),
        listed,
        "relayed whole"
    );
    let unlisted = two_records(&lab.client_hello(UNLISTED));
    assert!(
        through_tunnel(&lab.t, &target, &unlisted, 3).is_empty(),
        "cut before relaying"
    );
    let upper = lab.client_hello("WEB.Example.COM.");
    assert_eq!(
        through_tunnel(&lab.t, &target, &upper, 1),
        upper,
        "one name, any spelling"
    );
}

#[test]
fn other_protocols_address_decisions_the_switch_and_report_mode_are_not_cut() {
    let lab = Lab::new();
    let unlisted = lab.client_hello(UNLISTED);
    let ssh = b"SSH-2.0-OpenSSH_9.6\r\n".to_vec();
    {
        let _p = lab.proxy(LISTED, &[]);
        let target = format!("{LISTED}:{ECHO_PORT}");
        assert_eq!(through_tunnel(&lab.t, &target, &ssh, 1), ssh, "not TLS");
    }
    {
        // an address rule decided: by address literal, and for a name by its address
        let _p = lab.proxy("203.0.113.0/24", &[]);
        for target in [
            format!("203.0.113.5:{ECHO_PORT}"),
            format!("{LISTED}:{ECHO_PORT}"),
        ] {
            assert_eq!(
                through_tunnel(&lab.t, &target, &unlisted, 1),
                unlisted,
                "{target}"
            );
        }
    }
    {
        let _p = lab.proxy(LISTED, &[("EGRESS_HTTP_PROXY_TLS_SNI", "off")]);
        let target = format!("{LISTED}:{ECHO_PORT}");
        assert_eq!(
            through_tunnel(&lab.t, &target, &unlisted, 1),
            unlisted,
            "switched off"
        );
    }
    let p = lab.proxy(LISTED, &[("EGRESS_HTTP_PROXY_MODE", "report")]);
    let target = format!("{LISTED}:{ECHO_PORT}");
    assert_eq!(
        through_tunnel(&lab.t, &target, &unlisted, 1),
        unlisted,
        "report mode"
    );
    let lines = decision_lines(&p);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("reported") && l.contains(&format!("no rule allows {UNLISTED}"))),
        "{}",
        lines.join("\n")
    );
}
