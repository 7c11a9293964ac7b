//! The HTTP proxy's security model end to end, as root: every spelling of an address
//! is the same address, special addresses and the proxy itself are never dialed,
//! numeric host names are addresses, names without addresses are denied, forwarded
//! requests carry the target's Host, and connections cut at the end of the SIGTERM
//! grace period still get their decision line. Each test builds its own topology
//! (`tests/topology.sh`) and FAILS (never skips) without root.

mod common;

use common::dns::Dns;
use common::http::{Response, client, connect_tunnel, echo, echo_then_report, http_origin};
use common::proxy::{assert_cut_connections_logged, spawn_http_proxy};
use common::*;
use std::thread;
use std::time::Duration;

const PROXY: &str = "192.0.2.70:8080";
const LINE_PORT: u16 = 80;
const ECHO_PORT: u16 = 7000;
const ORIGIN_PORT: u16 = 8000;
/// A service on the router pod's loopback only.
const LOOPBACK_PORT: u16 = 9000;

/// A topology with the router in http-proxy mode, DNS, servers in the server namespace
/// and a loopback-only service in the router namespace.
struct Lab {
    line: Server,
    echo: Server,
    origin: Server,
    loopback: Server,
    _dns: Dns,
    t: Topology,
}

impl Lab {
    fn new() -> Lab {
        let t = Topology::new();
        t.router_ok(&[], &proxy_mode_env("http-proxy"));
        Lab {
            line: t.tcp_server(LINE_PORT),
            echo: Server::tcp_with(&t, "server", ECHO_PORT, echo_then_report),
            origin: Server::tcp_with(&t, "server", ORIGIN_PORT, http_origin),
            loopback: Server::tcp_at(&t, "router", "127.0.0.1", LOOPBACK_PORT, answer_line),
            _dns: Dns::start(&t),
            t,
        }
    }

    fn proxy(&self, rules: &str, knobs: &[(&str, &str)]) -> ChildGuard {
        spawn_http_proxy(&self.t, rules, knobs)
    }

    fn accepted(&self) -> usize {
        self.line.accepted()
            + self.echo.accepted()
            + self.origin.accepted()
            + self.loopback.accepted()
    }

    /// `CONNECT target` gets `status` (with a body naming the reason for 403) and no
    /// server anywhere receives a connection.
    fn assert_refused(&self, target: &str, status: u16, reason: &str) {
        let before = self.accepted();
        let (resp, _w) = connect_tunnel(&self.t, PROXY, target);
        assert_eq!(resp.status(), status, "CONNECT {target}: {resp:?}");
        assert!(
            resp.body.contains(reason),
            "CONNECT {target}: the body must say {reason:?}: {:?}",
            resp.body
        );
        thread::sleep(Duration::from_millis(100));
        assert_eq!(self.accepted(), before, "CONNECT {target} reached a server");
    }

    /// `CONNECT target` is allowed and the line server at 203.0.113.5 sees EGRESS_SOURCE.
    fn assert_tunnel_to_5(&self, target: &str) {
        let (resp, mut w) = connect_tunnel(&self.t, PROXY, target);
        assert_eq!(resp.status(), 200, "CONNECT {target}: {resp:?}");
        let got = w.read_to_end().expect("read the tunnel");
        assert_eq!(
            String::from_utf8_lossy(&got).trim(),
            format!("{SOURCE} 203.0.113.5:{LINE_PORT}"),
            "CONNECT {target}"
        );
    }
}

fn request(t: &Topology, raw: &str) -> Response {
    let mut w = client(t, PROXY).expect("connect to proxy");
    w.write_all(raw.as_bytes()).expect("send request");
    w.read_response(raw.split(' ').next().unwrap())
        .unwrap_or_else(|e| panic!("no response to {raw:?}: {e}"))
}

#[test]
fn ipv4_in_ipv6_spellings_meet_the_ipv4_deny_rule() {
    let lab = Lab::new();
    {
        let _p = lab.proxy("!203.0.113.0/24\n*", &[]);
        for target in [
            "[::ffff:203.0.113.5]:80",
            "[::ffff:cb00:7105]:80",
            "[::203.0.113.5]:80",
            "[64:ff9b::203.0.113.5]:80",
            "[::ffff:0:203.0.113.5]:80",
            // a name whose only record is AAAA ::ffff:203.0.113.5
            "mapped.example.net:80",
        ] {
            lab.assert_refused(target, 403, "denied by rule \"!203.0.113.0/24\"");
        }
        lab.assert_refused("[2002:cb00:7105::1]:80", 403, "6to4");
    }
    // allowed, a mapped spelling is dialed as the IPv4 address, from EGRESS_SOURCE
    let _p = lab.proxy("203.0.113.5", &[]);
    lab.assert_tunnel_to_5("[::ffff:203.0.113.5]:80");
    lab.assert_tunnel_to_5("mapped.example.net:80");
}

#[test]
fn unspecified_loopback_and_the_proxy_itself_are_never_dialed() {
    let lab = Lab::new();
    {
        let _p = lab.proxy("!127.0.0.0/8\n*", &[]);
        let port = LOOPBACK_PORT;
        for target in [
            format!("0.0.0.0:{port}"),
            format!("[::]:{port}"),
            format!("0.1.2.3:{port}"),
        ] {
            lab.assert_refused(&target, 403, "never dialed");
        }
        lab.assert_refused(&format!("127.0.0.1:{port}"), 403, "denied by rule");
        lab.assert_refused(&format!("[::ffff:127.0.0.1]:{port}"), 403, "denied by rule");
        for own in [
            "0.0.0.0:8080",
            "[::]:8080",
            "192.0.2.70:8080",
            "198.51.100.99:8080",
            "127.0.0.1:8080",
        ] {
            let reason = if own.starts_with('0') || own.starts_with('[') {
                "never dialed"
            } else if own.starts_with("127.") {
                "own listener"
            } else {
                "an address of this pod"
            };
            lab.assert_refused(own, 403, reason);
        }
        lab.assert_refused("self.example.net:8080", 403, "an address of this pod");
        lab.assert_refused("255.255.255.255:80", 403, "broadcast");
        lab.assert_refused("224.0.0.1:80", 403, "multicast");
    }
    {
        // `*` and name rules do not reach loopback; an address rule naming it does
        let _p = lab.proxy("*.example.net\n*", &[]);
        lab.assert_refused(&format!("127.0.0.1:{LOOPBACK_PORT}"), 403, "loopback");
        lab.assert_refused(
            &format!("loop.example.net:{LOOPBACK_PORT}"),
            403,
            "loopback",
        );
        lab.assert_refused("169.254.169.254:80", 403, "link-local");
    }
    let _p = lab.proxy("127.0.0.1", &[]);
    let (resp, mut w) = connect_tunnel(&lab.t, PROXY, &format!("127.0.0.1:{LOOPBACK_PORT}"));
    assert_eq!(
        resp.status(),
        200,
        "an address rule naming loopback allows it: {resp:?}"
    );
    let got = String::from_utf8_lossy(&w.read_to_end().unwrap()).into_owned();
    assert!(got.starts_with("127.0.0.1 127.0.0.1:9000"), "{got:?}");
    lab.assert_refused("127.0.0.1:8080", 403, "own listener");
}

#[test]
fn numeric_host_names_are_addresses_or_invalid() {
    let lab = Lab::new();
    let _p = lab.proxy("!203.0.113.5\n*", &[]);
    lab.assert_refused("203.0.113.5.:80", 403, "denied by rule");
    for disguised in [
        "2130706433:80",
        "0x7f.0.0.1:80",
        "127.1:80",
        "203.0.113.05:80",
        "example.0x1:80",
    ] {
        lab.assert_refused(disguised, 400, "not a valid host");
    }
}

#[test]
fn a_name_without_addresses_is_denied_unless_a_rule_allows_the_name() {
    let lab = Lab::new();
    {
        let _p = lab.proxy("203.0.113.0/24", &[]);
        lab.assert_refused("nx.example.com:80", 403, "no rule allows nx.example.com");
        let resp = request(
            &lab.t,
            "GET http://nx.example.com/ HTTP/1.1\r\nHost: nx.example.com\r\n\r\n",
        );
        assert_eq!(resp.status(), 403, "{resp:?}");
    }
    let _p = lab.proxy("203.0.113.0/24\nnx.example.com", &[]);
    assert_eq!(
        connect_tunnel(&lab.t, PROXY, "nx.example.com:80")
            .0
            .status(),
        502
    );
}

#[test]
fn forwarded_requests_carry_the_target_host_and_never_userinfo() {
    let lab = Lab::new();
    let _p = lab.proxy("web.example.com", &[]);
    let resp = request(
        &lab.t,
        &format!(
            "GET http://web.example.com:{ORIGIN_PORT}/ HTTP/1.1\r\nHost: other.example.net\r\n\r\n"
        ),
    );
    assert_eq!(resp.status(), 200, "{resp:?}");
    let hosts: Vec<&str> = resp
        .body
        .lines()
        .filter(|l| l.to_lowercase().starts_with("header host:"))
        .collect();
    assert_eq!(
        hosts,
        [format!("header host: web.example.com:{ORIGIN_PORT}").as_str()],
        "the origin must see only the target's Host:\n{}",
        resp.body
    );
    let before = lab.accepted();
    let resp = request(
        &lab.t,
        &format!(
            "GET http://user:secret@web.example.com:{ORIGIN_PORT}/ HTTP/1.1\r\nHost: web.example.com\r\n\r\n"
        ),
    );
    assert_eq!(resp.status(), 400, "userinfo in a forwarded URL: {resp:?}");
    assert!(!resp.body.contains("secret"), "{resp:?}");
    lab.assert_refused("user:pw@web.example.com:80", 400, "userinfo");
    assert_eq!(
        lab.accepted(),
        before,
        "a request with userinfo reached the origin"
    );
}

#[test]
fn the_503_of_a_full_proxy_is_framed_by_its_body() {
    let lab = Lab::new();
    let _p = lab.proxy("*", &[("EGRESS_HTTP_PROXY_MAX_CONNECTIONS", "1")]);
    let (resp, _held) = connect_tunnel(&lab.t, PROXY, &format!("203.0.113.5:{ECHO_PORT}"));
    assert_eq!(resp.status(), 200);
    let mut w = client(&lab.t, PROXY).expect("connect to proxy");
    let raw = String::from_utf8(w.read_to_end().expect("read the 503")).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    assert!(head.starts_with("HTTP/1.1 503"), "{raw:?}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(
        length,
        body.len(),
        "Content-Length must be the body's length: {raw:?}"
    );
}

#[test]
fn connections_cut_at_the_end_of_the_grace_period_are_logged() {
    let lab = Lab::new();
    let mut p = lab.proxy("*", &[("EGRESS_HTTP_PROXY_GRACE_PERIOD", "1s")]);
    let tunnels: Vec<_> = (0..20)
        .map(|i| {
            let (resp, mut w) = connect_tunnel(&lab.t, PROXY, &format!("203.0.113.5:{ECHO_PORT}"));
            assert_eq!(resp.status(), 200, "tunnel {i}");
            echo(&mut w, "x").expect("echo");
            w
        })
        .collect();
    assert_cut_connections_logged(&mut p, tunnels.len(), "decision");
}
