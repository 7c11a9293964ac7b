//! HTTP proxy end to end, as root (SPEC section 4 and 6): each test builds its own
//! topology (`tests/topology.sh`), sets the router pod up in http-proxy mode, runs a
//! real DNS server (dnsmasq) for the test names and the proxy in the router namespace,
//! and talks to it from the client namespace with a small hand-written HTTP client.
//! These tests FAIL (never skip) without root.

mod common;

use common::dns::Dns;
use common::http::{
    Response, Wire, client, closed_within, connect_tunnel, echo, echo_then_report, http_origin,
};
use common::proxy::{
    assert_client_half_close, assert_grace_period_bounds_exit, assert_idle_closed_busy_kept,
    assert_sigterm_drains, spawn_http_proxy,
};
use common::*;
use std::io::ErrorKind;
use std::thread;
use std::time::{Duration, Instant};

const PROXY: &str = "192.0.2.70:8080";
/// Ports of the servers in the server namespace (on every server address).
const LINE_PORT: u16 = 80;
const ECHO_PORT: u16 = 7000;
const ORIGIN_PORT: u16 = 8000;
/// Nothing listens there: connections are refused.
const CLOSED_PORT: u16 = 81;

/// One topology with the router set up in http-proxy mode, DNS, and three servers.
/// Fields drop in order: servers and DNS first, the topology last.
struct Lab {
    line: Server,
    echo: Server,
    origin: Server,
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
            _dns: Dns::start(&t),
            t,
        }
    }

    /// Start the proxy with a rule list and extra variables; returns once it logged
    /// `http proxy listening`.
    fn proxy(&self, rules: &str, knobs: &[(&str, &str)]) -> ChildGuard {
        spawn_http_proxy(&self.t, rules, knobs)
    }

    /// Total connections the servers accepted: what the proxy forwarded.
    fn accepted(&self) -> usize {
        self.line.accepted() + self.echo.accepted() + self.origin.accepted()
    }

    /// CONNECT `target` (a LINE_PORT server) is allowed and the server at `ip` sees
    /// the connection coming from EGRESS_SOURCE.
    fn assert_tunnel(&self, target: &str, ip: &str) {
        let (resp, mut w) = connect_tunnel(&self.t, PROXY, target);
        assert_eq!(
            resp.status(),
            200,
            "CONNECT {target} must be allowed: {resp:?}"
        );
        let got = w
            .read_to_end()
            .unwrap_or_else(|e| panic!("CONNECT {target}: reading the tunnel: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&got).trim(),
            format!("{SOURCE} {ip}:{LINE_PORT}"),
            "CONNECT {target}: the server at {ip} must see the connection from EGRESS_SOURCE"
        );
    }

    /// With the proxy running `rules`: every `allowed` (target, server IP) gets its
    /// tunnel, every `denied` target gets 403 and reaches no server.
    fn check(&self, rules: &str, allowed: &[(&str, &str)], denied: &[&str]) {
        let _p = self.proxy(rules, &[]);
        for (target, ip) in allowed {
            self.assert_tunnel(target, ip);
        }
        for target in denied {
            self.assert_denied(target);
        }
    }

    /// CONNECT `target` is denied with 403 and no server receives a connection.
    fn assert_denied(&self, target: &str) {
        let before = self.accepted();
        let (resp, _w) = connect_tunnel(&self.t, PROXY, target);
        assert_denied_response(&resp, &format!("CONNECT {target}"));
        thread::sleep(Duration::from_millis(100));
        assert_eq!(
            self.accepted(),
            before,
            "CONNECT {target} was denied but a server received a connection"
        );
    }

    /// Status of `CONNECT target`.
    fn connect_status(&self, target: &str) -> u16 {
        connect_tunnel(&self.t, PROXY, target).0.status()
    }

    /// An open tunnel to the echo server at `ip`.
    fn echo_tunnel(&self, ip: &str) -> Wire<'static> {
        let target = format!("{ip}:{ECHO_PORT}");
        let (resp, w) = connect_tunnel(&self.t, PROXY, &target);
        assert_eq!(resp.status(), 200, "CONNECT {target}: {resp:?}");
        w
    }
}

fn assert_denied_response(resp: &Response, what: &str) {
    assert_eq!(resp.status(), 403, "{what} must be denied: {resp:?}");
    assert!(
        resp.body.starts_with("egress-router: denied"),
        "{what}: a 403 body starts with `egress-router: denied`, got {:?}",
        resp.body
    );
}

/// One request on a new client connection: its response.
fn request(t: &Topology, raw: &str) -> Response {
    let mut w = client(t, PROXY).expect("connect to proxy");
    send_request(&mut w, raw)
}

fn send_request(w: &mut Wire, raw: &str) -> Response {
    w.write_all(raw.as_bytes()).expect("send request");
    let method = raw.split(' ').next().unwrap();
    w.read_response(method)
        .unwrap_or_else(|e| panic!("no response to {:?}: {e}", first_line(raw)))
}

fn first_line(raw: &str) -> &str {
    raw.lines().next().unwrap_or("")
}

fn decision_line(p: &ChildGuard, target: &str) -> String {
    let want = format!("target={target}");
    match p.wait_line(
        |l| l.contains("decision") && l.split_whitespace().any(|w| w == want),
        Duration::from_secs(5),
    ) {
        Some((_, line)) => line,
        None => panic!("no decision log line with {want}:\n{}", p.stderr()),
    }
}

// ---------------------------------------------------------------- allow rules

#[test]
fn connect_allowed_by_ip_rule() {
    let lab = Lab::new();
    lab.check(
        "203.0.113.5",
        &[("203.0.113.5:80", "203.0.113.5")],
        &["203.0.113.6:80"],
    );
}

#[test]
fn connect_allowed_by_cidr_for_addresses_and_names() {
    let lab = Lab::new();
    lab.check(
        "# the .4/.5 pair\n\n203.0.113.4/31\n",
        &[
            ("203.0.113.5:80", "203.0.113.5"),
            ("web.example.com:80", "203.0.113.5"),
        ],
        &["203.0.113.6:80", "other.example.net:80"],
    );
}

#[test]
fn connect_allowed_by_exact_name_only() {
    let lab = Lab::new();
    lab.check(
        "web.example.com",
        &[("web.example.com:80", "203.0.113.5")],
        &[
            "api.web.example.com:80",
            "example.com:80",
            "other.example.net:80",
        ],
    );
}

#[test]
fn connect_allowed_by_wildcard_and_its_bare_domain() {
    let lab = Lab::new();
    lab.check(
        "*.example.com",
        &[
            ("web.example.com:80", "203.0.113.5"),
            ("api.web.example.com:80", "203.0.113.7"),
            ("example.com:80", "203.0.113.5"),
        ],
        &["badexample.com:80", "other.example.net:80"],
    );
}

#[test]
fn connect_allowed_by_star_default_deny_without() {
    let lab = Lab::new();
    lab.check(
        "*",
        &[
            ("other.example.net:80", "203.0.113.6"),
            ("203.0.113.7:80", "203.0.113.7"),
        ],
        &[],
    );
    lab.check(
        "203.0.113.7",
        &[],
        &["203.0.113.5:80", "web.example.com:80"],
    );
}

#[test]
fn address_rule_allows_only_the_addresses_inside_it() {
    // multi.example.org is 203.0.113.5 and 203.0.113.7; only .7 is allowed, so the
    // proxy may connect to .7 only, whatever order the answers come in
    let lab = Lab::new();
    let target = ("multi.example.org:80", "203.0.113.7");
    lab.check("203.0.113.7", &[target; 4], &[]);
}

// ---------------------------------------------------------------- deny rules

#[test]
fn deny_rule_before_star() {
    let lab = Lab::new();
    lab.check(
        "!203.0.113.7\n!*.example.net\n*",
        &[
            ("203.0.113.5:80", "203.0.113.5"),
            ("web.example.com:80", "203.0.113.5"),
        ],
        &["203.0.113.7:80", "other.example.net:80"],
    );
}

#[test]
fn name_with_any_address_in_denied_cidr_is_denied() {
    let lab = Lab::new();
    lab.check(
        "!203.0.113.6/32\n*",
        &[("web.example.com:80", "203.0.113.5")],
        // mixed.example.org is 203.0.113.5 and 203.0.113.6: one denied address is enough
        &[
            "other.example.net:80",
            "mixed.example.org:80",
            "203.0.113.6:80",
        ],
    );
}

#[test]
fn ip_literals_and_name_rules_do_not_mix() {
    let lab = Lab::new();
    lab.check(
        "web.example.com",
        &[],
        &["203.0.113.5:80", "[2001:db8::5]:80"],
    );
    lab.check("203.0.113.5", &[("web.example.com:80", "203.0.113.5")], &[]);

    // an IPv6 literal is matched by an IPv6 rule (IPv6 is off in the topology: the
    // connect fails locally, nothing is sent)
    let _p = lab.proxy("2001:db8::/32", &[]);
    let status = lab.connect_status("[2001:db8::5]:80");
    assert!(
        status == 502 || status == 504,
        "CONNECT [2001:db8::5]:80 allowed by 2001:db8::/32 on a host without IPv6 must \
         fail with 502/504, got {status}"
    );
}

#[test]
fn names_compare_case_insensitively_and_ignore_one_trailing_dot() {
    let lab = Lab::new();
    lab.check(
        "Web.Example.COM.",
        &[
            ("WEB.example.com.:80", "203.0.113.5"),
            ("web.example.com:80", "203.0.113.5"),
        ],
        &["other.example.net:80"],
    );
    lab.check(
        "*.EXAMPLE.org",
        &[("WWW.Example.ORG:80", "203.0.113.6")],
        &["web.example.com:80"],
    );
}

// ---------------------------------------------------------------- forwarding

#[test]
fn get_is_forwarded_in_origin_form_without_hop_by_hop_headers() {
    let lab = Lab::new();
    let _p = lab.proxy("web.example.com", &[]);
    let resp = request(
        &lab.t,
        &format!(
            "GET http://web.example.com:{ORIGIN_PORT}/path/x?q=1 HTTP/1.1\r\n\
             Host: web.example.com:{ORIGIN_PORT}\r\n\
             Proxy-Connection: keep-alive\r\n\
             Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\
             Connection: keep-alive, X-Hop\r\n\
             X-Hop: secret\r\n\
             Keep-Alive: timeout=5\r\n\
             TE: trailers\r\n\
             X-End-To-End: kept\r\n\r\n"
        ),
    );
    assert_eq!(resp.status(), 200, "forwarded GET: {resp:?}");
    let body = resp.body.to_lowercase();
    let lines: Vec<&str> = body.lines().collect();
    for want in [
        format!("peer {SOURCE}"),
        format!("local 203.0.113.5:{ORIGIN_PORT}"),
        "request get /path/x?q=1 http/1.1".to_string(),
        format!("header host: web.example.com:{ORIGIN_PORT}"),
        "header x-end-to-end: kept".to_string(),
    ] {
        assert!(
            lines.contains(&want.as_str()),
            "the origin must have received `{want}`; it saw:\n{}",
            resp.body
        );
    }
    for gone in [
        "proxy-connection",
        "proxy-authorization",
        "x-hop",
        "keep-alive",
        "te",
    ] {
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with(&format!("header {gone}:"))),
            "hop-by-hop header {gone} was forwarded; the origin saw:\n{}",
            resp.body
        );
    }
}

#[test]
fn post_body_is_forwarded() {
    let lab = Lab::new();
    let _p = lab.proxy("*.example.com", &[]);
    let payload = "name=egress&value=router\n";
    let resp = request(
        &lab.t,
        &format!(
            "POST http://web.example.com:{ORIGIN_PORT}/submit HTTP/1.1\r\n\
             Host: web.example.com:{ORIGIN_PORT}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{payload}",
            payload.len()
        ),
    );
    assert_eq!(resp.status(), 200, "forwarded POST: {resp:?}");
    assert!(
        resp.body.contains("request POST /submit HTTP/1.1\n")
            && resp
                .body
                .ends_with(&format!("body {}\n{payload}", payload.len())),
        "the origin must receive the POST and its body; it saw:\n{}",
        resp.body
    );
}

#[test]
fn keep_alive_requests_are_decided_one_by_one() {
    let lab = Lab::new();
    let _p = lab.proxy("web.example.com", &[]);
    let mut w = client(&lab.t, PROXY).expect("connect to proxy");
    let first = send_request(
        &mut w,
        &format!(
            "GET http://web.example.com:{ORIGIN_PORT}/one HTTP/1.1\r\n\
             Host: web.example.com:{ORIGIN_PORT}\r\n\r\n"
        ),
    );
    assert_eq!(first.status(), 200, "first request: {first:?}");
    assert!(
        first.body.contains("request GET /one HTTP/1.1"),
        "{first:?}"
    );
    let accepted = lab.accepted();
    let second = send_request(
        &mut w,
        &format!(
            "GET http://other.example.net:{ORIGIN_PORT}/two HTTP/1.1\r\n\
             Host: other.example.net:{ORIGIN_PORT}\r\n\r\n"
        ),
    );
    assert_denied_response(&second, "second request on the same connection");
    assert_eq!(
        lab.accepted(),
        accepted,
        "the denied second request reached a server"
    );
}

#[test]
fn forwarding_to_denied_host_is_403() {
    let lab = Lab::new();
    let _p = lab.proxy("web.example.com", &[]);
    let resp = request(
        &lab.t,
        &format!(
            "GET http://203.0.113.5:{ORIGIN_PORT}/ HTTP/1.1\r\nHost: 203.0.113.5:{ORIGIN_PORT}\r\n\r\n"
        ),
    );
    assert_denied_response(&resp, "GET http://203.0.113.5/ with only a name rule");
    assert_eq!(lab.accepted(), 0, "a denied GET reached the origin");
}

// ---------------------------------------------------------------- errors

#[test]
fn origin_form_request_is_400() {
    let lab = Lab::new();
    let _p = lab.proxy("*", &[]);
    let resp = request(&lab.t, "GET / HTTP/1.1\r\nHost: web.example.com\r\n\r\n");
    assert_eq!(resp.status(), 400, "origin-form request: {resp:?}");
    assert_eq!(lab.accepted(), 0);
}

#[test]
fn unresolvable_name_is_502() {
    let lab = Lab::new();
    let _p = lab.proxy("*", &[]);
    assert_eq!(lab.connect_status("nx.example.com:80"), 502);
    let resp = request(
        &lab.t,
        "GET http://nx.example.com/ HTTP/1.1\r\nHost: nx.example.com\r\n\r\n",
    );
    assert_eq!(resp.status(), 502, "GET to an unresolvable name: {resp:?}");
}

#[test]
fn refused_port_is_502() {
    let lab = Lab::new();
    let _p = lab.proxy("*", &[]);
    assert_eq!(
        lab.connect_status(&format!("203.0.113.5:{CLOSED_PORT}")),
        502
    );
    let resp = request(
        &lab.t,
        &format!(
            "GET http://web.example.com:{CLOSED_PORT}/ HTTP/1.1\r\nHost: web.example.com\r\n\r\n"
        ),
    );
    assert_eq!(resp.status(), 502, "GET to a refused port: {resp:?}");
}

#[test]
fn connect_timeout_is_504() {
    let lab = Lab::new();
    // SYNs to this port vanish: routed, but silent
    lab.t.sh(
        "server",
        &[
            "iptables", "-w", "5", "-A", "INPUT", "-p", "tcp", "--dport", "82", "-j", "DROP",
        ],
    );
    // a bare number of seconds
    let _p = lab.proxy("*", &[("EGRESS_HTTP_PROXY_CONNECT_TIMEOUT", "1")]);
    let start = Instant::now();
    let status = lab.connect_status("203.0.113.5:82");
    let took = start.elapsed();
    assert_eq!(status, 504, "CONNECT to a silent port ({took:?})");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "504 after {took:?}, connect timeout is 1 s"
    );
}

#[test]
fn tunnel_half_close_keeps_the_other_direction() {
    let lab = Lab::new();
    let _p = lab.proxy("203.0.113.5", &[]);
    let mut w = lab.echo_tunnel("203.0.113.5");
    echo(&mut w, "hello\n").expect("echo through the tunnel");
    // the echo server answers only after it saw our end of stream
    assert_client_half_close(&mut w, 6);
}

// ---------------------------------------------------------------- limits

#[test]
fn connections_over_the_cap_get_503() {
    let lab = Lab::new();
    let _p = lab.proxy("*", &[("EGRESS_HTTP_PROXY_MAX_CONNECTIONS", "2")]);
    let mut first = lab.echo_tunnel("203.0.113.5");
    let mut second = lab.echo_tunnel("203.0.113.6");

    let mut third = client(&lab.t, PROXY).expect("connect to proxy");
    // the proxy may answer at once, before any request
    third.set_patience(Duration::from_millis(500));
    let early = third.read_response("CONNECT");
    let resp = match early {
        Ok(resp) => resp,
        Err(_) => {
            third.set_patience(Duration::from_secs(5));
            send_request(
                &mut third,
                "CONNECT 203.0.113.7:80 HTTP/1.1\r\nHost: x\r\n\r\n",
            )
        }
    };
    assert_eq!(
        resp.status(),
        503,
        "third connection with a cap of 2: {resp:?}"
    );

    // the first two still work; once one closes there is room again
    echo(&mut first, "a").expect("first tunnel after the refusal");
    echo(&mut second, "b").expect("second tunnel after the refusal");
    drop(first);
    eventually(
        Duration::from_secs(3),
        "CONNECT must work again once a tunnel closed",
        || match lab.connect_status("203.0.113.7:80") {
            200 => Ok(()),
            status => Err(format!("status {status}")),
        },
    );
}

#[test]
fn incomplete_headers_are_cut_at_the_header_timeout() {
    let lab = Lab::new();
    let _p = lab.proxy("*", &[("EGRESS_HTTP_PROXY_HEADER_TIMEOUT", "1s")]);

    // a partial head, then silence
    let mut w = client(&lab.t, PROXY).unwrap();
    w.write_all(b"CONNECT 203.0.113.5:80 HTTP/1.1\r\nHost: x")
        .unwrap();
    let took = closed_within(&mut w, Duration::from_secs(5));
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(800) && t <= Duration::from_millis(2500)),
        "a partial head must be cut after about 1 s, closed after {took:?}"
    );

    // a slow writer: one byte every 200 ms never completes the head in time
    let mut w = client(&lab.t, PROXY).unwrap();
    w.set_patience(Duration::from_millis(200));
    let start = Instant::now();
    let head = b"GET http://web.example.com:8000/ HTTP/1.1\r\nX-Slow: ".repeat(2);
    let mut cut = None;
    for b in head.iter().cycle().take(25) {
        if w.write_all(&[*b]).is_err()
            || !matches!(w.read_to_end(), Err(ref e) if e.kind() == ErrorKind::TimedOut)
        {
            cut = Some(start.elapsed());
            break;
        }
    }
    assert!(
        cut.is_some_and(|t| t <= Duration::from_millis(2500)),
        "a client trickling its head must be cut after about 1 s, cut after {cut:?}"
    );
    assert_eq!(lab.accepted(), 0, "an incomplete request reached a server");
}

#[test]
fn oversized_headers_are_refused() {
    let lab = Lab::new();
    let _p = lab.proxy("*", &[]);
    let request_with = |size: usize| {
        format!(
            "GET http://web.example.com:{ORIGIN_PORT}/ HTTP/1.1\r\nHost: web.example.com\r\n\
             X-Big: {}\r\n\r\n",
            "a".repeat(size)
        )
    };

    // under the default limit of 16384 bytes: forwarded
    let resp = request(&lab.t, &request_with(8000));
    assert_eq!(
        resp.status(),
        200,
        "an 8 kB header is under the limit: {resp:?}"
    );
    assert!(
        resp.body
            .to_lowercase()
            .contains(&format!("header x-big: {}\n", "a".repeat(8000))),
        "the 8 kB header must reach the origin"
    );
    let accepted = lab.accepted();

    // over it: 431 or closed, and nothing forwarded
    let mut w = client(&lab.t, PROXY).unwrap();
    let outcome = match w.write_all(request_with(20000).as_bytes()) {
        Err(e) => format!("closed while sending ({e})"),
        Ok(()) => match w.read_response("GET") {
            Ok(resp) => {
                assert_eq!(resp.status(), 431, "20 kB of headers: {resp:?}");
                "431".into()
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => panic!("20 kB of headers: no answer"),
            Err(e) => format!("closed ({e})"),
        },
    };
    assert_eq!(
        lab.accepted(),
        accepted,
        "20 kB of headers ({outcome}) reached the origin"
    );
}

#[test]
fn idle_tunnels_are_closed_busy_ones_kept() {
    let lab = Lab::new();
    let _p = lab.proxy("*", &[("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", "1000ms")]);
    let mut idle = lab.echo_tunnel("203.0.113.5");
    let mut busy = lab.echo_tunnel("203.0.113.6");
    assert_idle_closed_busy_kept(&mut idle, &mut busy);
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let lab = Lab::new();
    let _p = lab.proxy(
        "*",
        &[
            ("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", "1000ms"),
            ("EGRESS_HTTP_PROXY_HEADER_TIMEOUT", "10s"),
        ],
    );
    let mut w = client(&lab.t, PROXY).unwrap();
    let resp = send_request(
        &mut w,
        &format!("GET http://203.0.113.5:{ORIGIN_PORT}/ HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    assert_eq!(resp.status(), 200);
    let took = closed_within(&mut w, Duration::from_secs(4));
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(800)),
        "a keep-alive connection idle after its response must close after about 1 s \
         (idle timeout 1 s, header timeout 10 s), closed after {took:?}"
    );
}

// ---------------------------------------------------------------- logs and signals

#[test]
fn decision_lines_log_outcome_and_rule() {
    let lab = Lab::new();
    let p = lab.proxy("203.0.113.5\n!203.0.113.6", &[]);

    let mut w = lab.echo_tunnel("203.0.113.5");
    echo(&mut w, "hello\n").unwrap();
    w.shutdown_write().unwrap();
    let rest = w.read_to_end().unwrap(); // "EOF after 6 bytes\n"
    drop(w);
    lab.assert_denied("203.0.113.6:80");
    lab.assert_denied("203.0.113.7:80");

    let line = decision_line(&p, &format!("203.0.113.5:{ECHO_PORT}"));
    let client_field = field(&line, "client").unwrap_or("");
    assert!(
        client_field.starts_with(&format!("{CLIENT_IP}:")),
        "client={CLIENT_IP}:PORT expected: {line}"
    );
    let want = [
        ("rule", "203.0.113.5".to_string()),
        ("outcome", "allowed".into()),
        ("status", "200".into()),
        ("bytes_up", "6".into()),
        ("bytes_down", (6 + rest.len()).to_string()),
    ];
    for (k, v) in want {
        assert_eq!(field(&line, k), Some(v.as_str()), "{k} in: {line}");
    }
    assert!(
        field(&line, "duration_ms").is_some_and(|d| d.parse::<u64>().is_ok()),
        "duration_ms=N in: {line}"
    );

    let line = decision_line(&p, "203.0.113.6:80");
    assert_eq!(field(&line, "outcome"), Some("denied"), "{line}");
    assert_eq!(field(&line, "status"), Some("403"), "{line}");
    assert!(
        matches!(field(&line, "rule"), Some("!203.0.113.6" | "203.0.113.6")),
        "the deny rule's text in: {line}"
    );

    let line = decision_line(&p, "203.0.113.7:80");
    assert_eq!(field(&line, "outcome"), Some("denied"), "{line}");
    assert_eq!(field(&line, "rule"), Some("default"), "{line}");
}

#[test]
fn report_mode_lets_what_the_list_denies_through_but_not_what_the_screens_refuse() {
    let lab = Lab::new();
    let p = lab.proxy(
        "!203.0.113.6\n203.0.113.5",
        &[("EGRESS_HTTP_PROXY_MODE", "report")],
    );
    assert!(
        p.wait_line(
            |l| l.contains("WARN") && l.contains("EGRESS_HTTP_PROXY_MODE=report"),
            Duration::from_secs(5)
        )
        .is_some(),
        "a warning that the list is not enforced:\n{}",
        p.stderr()
    );
    for ip in ["203.0.113.6", "203.0.113.7", "203.0.113.5"] {
        lab.assert_tunnel(&format!("{ip}:{LINE_PORT}"), ip);
    }
    for target in [
        "192.0.2.70:8080",
        "127.0.0.1:8080",
        "127.0.0.1:80",
        "0.0.0.0:80",
        "169.254.169.254:80",
    ] {
        lab.assert_denied(target);
    }

    let line = decision_line(&p, "203.0.113.6:80");
    assert_eq!(field(&line, "outcome"), Some("reported"), "{line}");
    assert_eq!(
        field(&line, "rule"),
        Some("!203.0.113.6"),
        "the rule that would deny: {line}"
    );
    assert!(line.contains("the list would deny it"), "{line}");
    let line = decision_line(&p, "203.0.113.7:80");
    assert_eq!(field(&line, "outcome"), Some("reported"), "{line}");
    assert_eq!(field(&line, "rule"), Some("default"), "{line}");
    let line = decision_line(&p, "203.0.113.5:80");
    assert_eq!(field(&line, "outcome"), Some("allowed"), "{line}");
    assert_eq!(field(&line, "rule"), Some("203.0.113.5"), "{line}");
    for (target, rule) in [
        ("192.0.2.70:8080", "pod-address"),
        ("127.0.0.1:8080", "own-listener"),
        ("127.0.0.1:80", "local-only"),
        ("0.0.0.0:80", "never-dialed"),
        ("169.254.169.254:80", "local-only"),
    ] {
        let line = decision_line(&p, target);
        assert_eq!(field(&line, "outcome"), Some("denied"), "{line}");
        assert_eq!(field(&line, "rule"), Some(rule), "{line}");
    }
}

/// The JSON object of every stderr line of `p` (each must be one).
fn json_lines(p: &ChildGuard) -> Vec<serde_json::Value> {
    p.stderr()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn json_lines_carry_the_decision_fields_and_a_connection_id() {
    let lab = Lab::new();
    let p = lab.proxy(
        "web.example.com\n203.0.113.5",
        &[("EGRESS_LOG_FORMAT", "json")],
    );
    // two requests on one connection, then a tunnel and a denied CONNECT on others
    let mut w = client(&lab.t, PROXY).expect("connect to proxy");
    for path in ["one", "two"] {
        let resp = send_request(
            &mut w,
            &format!(
                "GET http://web.example.com:{ORIGIN_PORT}/{path} HTTP/1.1\r\n\
                 Host: web.example.com:{ORIGIN_PORT}\r\n\r\n"
            ),
        );
        assert_eq!(resp.status(), 200, "{path}: {resp:?}");
    }
    drop(w);
    lab.assert_tunnel(&format!("203.0.113.5:{LINE_PORT}"), "203.0.113.5");
    lab.assert_denied("other.example.net:80");
    let decided = |target: &str| {
        p.wait_line(
            |l| l.contains("\"decision\"") && l.contains(target),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| panic!("no decision line for {target}:\n{}", p.stderr()));
    };
    decided("other.example.net:80");
    decided("web.example.com");
    decided("203.0.113.5:80");

    let lines = json_lines(&p);
    for line in &lines {
        for key in ["timestamp", "level", "message"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let decisions: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 4, "four decisions: {lines:?}");
    let of = |target: &str| {
        decisions
            .iter()
            .filter(|l| l["target"] == target)
            .copied()
            .collect::<Vec<_>>()
    };
    let web = of(&format!("web.example.com:{ORIGIN_PORT}"));
    assert_eq!(web.len(), 2, "{lines:?}");
    let (first, second) = (web[0], web[1]);
    let tunnel = of(&format!("203.0.113.5:{LINE_PORT}"))[0];
    let denied = of("other.example.net:80")[0];
    assert_eq!(
        first["target"],
        format!("web.example.com:{ORIGIN_PORT}"),
        "{first}"
    );
    assert_eq!(first["outcome"], "allowed", "{first}");
    assert_eq!(first["rule"], "web.example.com", "{first}");
    assert_eq!(first["level"], "INFO", "{first}");
    assert!(
        first["client"]
            .as_str()
            .is_some_and(|c| c.starts_with(&format!("{CLIENT_IP}:"))),
        "{first}"
    );
    assert!(
        first["bytes_down"].as_u64().is_some_and(|b| b > 0),
        "{first}"
    );
    assert!(first["duration_ms"].as_u64().is_some(), "{first}");
    assert_eq!(denied["outcome"], "denied", "{denied}");
    let id = |line: &serde_json::Value| {
        line["connection"]
            .as_u64()
            .unwrap_or_else(|| panic!("no connection id: {line}"))
    };
    assert_eq!(id(first), id(second), "one connection, one id");
    let ids = [id(first), id(tunnel), id(denied)];
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "another connection, another id: {ids:?}"
    );
    assert_eq!(tunnel["outcome"], "allowed", "{tunnel}");
    assert!(
        tunnel["bytes_down"].as_u64().is_some_and(|b| b > 0),
        "{tunnel}"
    );
}

#[test]
fn debug_lines_are_this_crates_only_unless_rust_log_says_otherwise() {
    let lab = Lab::new();
    // The module path of each text line: after the time and the level, the first word
    // ending in ':' that is not a span (`connection{id=3}:`).
    let targets = |p: &ChildGuard| -> Vec<String> {
        p.stderr()
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace().skip(2);
                let word = words.find(|w| w.ends_with(':') && !w.contains('{'))?;
                Some(word.trim_end_matches(':').to_string())
            })
            .collect()
    };
    let traffic = || {
        let resp = request(
            &lab.t,
            &format!(
                "GET http://web.example.com:{ORIGIN_PORT}/x HTTP/1.1\r\n\
                 Host: web.example.com:{ORIGIN_PORT}\r\n\r\n"
            ),
        );
        assert_eq!(resp.status(), 200, "{resp:?}");
    };

    let p = lab.proxy("web.example.com", &[("EGRESS_ROUTER_DEBUG", "1")]);
    traffic();
    decision_line(&p, &format!("web.example.com:{ORIGIN_PORT}"));
    let ours = targets(&p);
    assert!(
        p.stderr()
            .lines()
            .any(|l| l.contains(" DEBUG ") && l.contains(" egress_router::")),
        "EGRESS_ROUTER_DEBUG shows this crate's debug lines:\n{}",
        p.stderr()
    );
    assert!(
        ours.iter().all(|t| t.starts_with("egress_router")),
        "only this crate's lines with EGRESS_ROUTER_DEBUG: {ours:?}\n{}",
        p.stderr()
    );
    drop(p);

    let p = lab.proxy("web.example.com", &[("RUST_LOG", "debug")]);
    traffic();
    decision_line(&p, &format!("web.example.com:{ORIGIN_PORT}"));
    assert!(
        targets(&p).iter().any(|t| !t.starts_with("egress_router")),
        "RUST_LOG=debug shows the libraries' lines too:\n{}",
        p.stderr()
    );
}

#[test]
fn sigterm_stops_accepting_and_lets_open_tunnels_finish() {
    let lab = Lab::new();
    let mut p = lab.proxy("*", &[]);
    let mut w = lab.echo_tunnel("203.0.113.5");
    echo(&mut w, "before\n").unwrap();
    assert_sigterm_drains(&lab.t, &mut p, PROXY, w, 7);
}

#[test]
fn sigterm_grace_period_bounds_the_exit() {
    let lab = Lab::new();
    let mut p = lab.proxy("*", &[("EGRESS_HTTP_PROXY_GRACE_PERIOD", "1s")]);
    let mut w = lab.echo_tunnel("203.0.113.5");
    echo(&mut w, "hold\n").unwrap();
    assert_grace_period_bounds_exit(&mut p, &mut w);
}
