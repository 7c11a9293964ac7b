//! The operations endpoint end to end, as root (SPEC section 9): `/metrics`,
//! `/healthz` and `/readyz` of the HTTP proxy, the DNS proxy and `redirect`, scraped
//! while real traffic goes through the router namespace of a topology of their own;
//! counters must move by exactly what the traffic did, and readiness must fail when the
//! egress route is removed. These tests FAIL (never skip) without root.

mod common;

use common::http::{connect_tunnel, echo, echo_then_report, get, sample};
use common::proxy::spawn_http_proxy;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const ECHO_PORT: u16 = 7000;
/// Nothing listens there: connections are refused.
const CLOSED_PORT: u16 = 81;
const METRICS_PORT: u16 = 9090;

fn assert_sample(text: &str, series: &str, want: f64) {
    assert_eq!(sample(text, series), Some(want), "{series} in:\n{text}");
}

/// Readiness turns 503, saying `reason`, within the check's cache time, once the main
/// table's default route is removed from the router namespace; `setup_healthy` is 0.
fn assert_unready_without_route(t: &Topology, role: &str, address: &str) {
    assert_eq!(get(t, role, address, "/readyz"), (200, "ready\n".into()));
    t.sh("router", &["ip", "route", "del", "default"]);
    let body = eventually(
        Duration::from_secs(7),
        "/readyz answering 503",
        || match get(t, role, address, "/readyz") {
            (503, body) => Ok(body),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(body.contains("default route"), "{body}");
    let (_, metrics) = get(t, role, address, "/metrics");
    assert_sample(&metrics, "egress_router_setup_healthy", 0.0);
    assert_sample(&metrics, "egress_router_ready", 0.0);
    assert_eq!(
        get(t, role, address, "/healthz").0,
        200,
        "alive while unready"
    );
}

#[test]
fn http_proxy_counts_decisions_bytes_connects_and_goes_unready_without_its_route() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let echo_server = Server::tcp_with(&t, "server", ECHO_PORT, echo_then_report);
    let _p = spawn_http_proxy(&t, "!203.0.113.6\n*", &[]);
    let proxy = format!("{ROUTER_IP}:8080");
    let scrape_at = format!("{ROUTER_IP}:{METRICS_PORT}");

    let (resp, mut open) = connect_tunnel(&t, &proxy, &format!("203.0.113.5:{ECHO_PORT}"));
    assert_eq!(resp.status(), 200, "{resp:?}");
    echo(&mut open, "hello").unwrap();
    let (_, during) = get(&t, "client", &scrape_at, "/metrics");
    assert_sample(
        &during,
        r#"egress_router_connections_active{role="http-proxy",listener="8080"}"#,
        1.0,
    );

    let (resp, mut second) = connect_tunnel(&t, &proxy, &format!("203.0.113.5:{ECHO_PORT}"));
    assert_eq!(resp.status(), 200, "{resp:?}");
    echo(&mut second, "world").unwrap();
    drop(second);
    drop(open);
    for (target, status) in [
        (format!("203.0.113.6:{ECHO_PORT}"), 403),
        (format!("203.0.113.5:{CLOSED_PORT}"), 502),
        (format!("{ROUTER_IP}:{METRICS_PORT}"), 403),
        (format!("127.0.0.1:{METRICS_PORT}"), 403),
    ] {
        let (resp, _) = connect_tunnel(&t, &proxy, &target);
        assert_eq!(resp.status(), status, "CONNECT {target}: {resp:?}");
    }
    assert_eq!(
        echo_server.accepted(),
        2,
        "only the two tunnels reached the server"
    );

    let metrics = eventually(Duration::from_secs(3), "every connection closed", || {
        let (_, text) = get(&t, "client", &scrape_at, "/metrics");
        let active = r#"egress_router_connections_active{role="http-proxy",listener="8080"}"#;
        match sample(&text, active) {
            Some(0.0) => Ok(text),
            other => Err(format!("{other:?}")),
        }
    });
    let decided = |decision: &str, reason: &str| {
        format!(
            r#"egress_router_connections_total{{role="http-proxy",listener="8080",decision="{decision}",reason="{reason}"}}"#
        )
    };
    assert_sample(&metrics, &decided("allowed", "*"), 3.0);
    assert_sample(&metrics, &decided("denied", "!203.0.113.6"), 1.0);
    assert_sample(&metrics, &decided("denied", "own-listener"), 1.0);
    assert_sample(&metrics, &decided("denied", "pod-address"), 1.0);
    // "hello" and "world" through the tunnels: 10 bytes up; down, their echoes and
    // perhaps the server's `EOF after 5 bytes` line each, sent as the client left.
    assert_sample(
        &metrics,
        r#"egress_router_bytes_total{role="http-proxy",direction="up"}"#,
        10.0,
    );
    let down = sample(
        &metrics,
        r#"egress_router_bytes_total{role="http-proxy",direction="down"}"#,
    );
    assert!(
        down.is_some_and(|d| (10.0..=46.0).contains(&d)),
        "bytes down: {down:?}"
    );
    assert_sample(
        &metrics,
        r#"egress_router_upstream_connect_seconds_count{role="http-proxy"}"#,
        2.0,
    );
    assert_sample(
        &metrics,
        r#"egress_router_upstream_errors_total{role="http-proxy",kind="refused"}"#,
        1.0,
    );
    let connections = sample(
        &metrics,
        r#"egress_router_connection_duration_seconds_count{role="http-proxy"}"#,
    );
    assert!(
        connections >= Some(6.0),
        "six client connections closed: {connections:?}"
    );
    let version = format!(
        r#"egress_router_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_sample(&metrics, &version, 1.0);
    let fds = sample(&metrics, "egress_router_process_open_fds").unwrap_or(0.0);
    assert!(fds > 3.0, "open descriptors: {fds}");
    assert!(sample(&metrics, "egress_router_process_max_fds") >= Some(fds));
    assert_sample(&metrics, "egress_router_setup_healthy", 1.0);
    assert_sample(&metrics, "egress_router_ready", 1.0);
    assert!(
        !metrics.contains(CLIENT_IP),
        "no label holds a client address"
    );
    let dropped = t.with_ns("gw", || {
        let address: SocketAddr = format!("{SOURCE}:{METRICS_PORT}").parse().unwrap();
        TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err()
    });
    assert!(
        dropped,
        "the guard of macvlan0 keeps the outside network from the endpoint"
    );
    // Without the guard the endpoint itself leaves the outside network unanswered.
    t.sh(
        "router",
        &["iptables", "-D", "INPUT", "-j", "EGRESS-ROUTER-INPUT"],
    );
    let from_outside = t.with_ns("gw", || {
        let address: SocketAddr = format!("{SOURCE}:{METRICS_PORT}").parse().unwrap();
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
            .expect("the endpoint listens on every address, macvlan0's too");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).map(|_| answer)
    });
    let closed_unanswered = match &from_outside {
        Ok(answer) => answer.is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        closed_unanswered,
        "the outside network (EGRESS_SOURCE on macvlan0) gets no answer: {from_outside:?}"
    );

    assert_eq!(
        get(&t, "client", &scrape_at, "/healthz"),
        (200, "ok\n".into())
    );
    assert_eq!(get(&t, "client", &scrape_at, "/nothing").0, 404);
    // The kubelet probes from the node, on the pod's own link.
    assert_unready_without_route(&t, "node", &scrape_at);
}

#[test]
fn dns_proxy_reports_backends_and_is_unready_while_a_target_has_none_up() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("dns-proxy"));
    let _echo = Server::tcp_with(&t, "server", ECHO_PORT, echo_then_report);
    let list = format!("{ECHO_PORT} 203.0.113.5\n{CLOSED_PORT} 203.0.113.6");
    let mut env = envs(&[("EGRESS_METRICS_ADDRESS", ":9100")]);
    env.push(("EGRESS_DNS_PROXY_DESTINATION".into(), list));
    let mut p = t.spawn_router(&[], &env);
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        2,
        Duration::from_secs(10),
    );
    let scrape_at = format!("{ROUTER_IP}:9100");

    let mut w = common::http::client(&t, &format!("{ROUTER_IP}:{ECHO_PORT}")).unwrap();
    echo(&mut w, "ping").unwrap();
    drop(w);
    let refused = t.tcp_from_client(&format!("{ROUTER_IP}:{CLOSED_PORT}"));
    assert!(
        refused.as_deref().map_or(true, str::is_empty),
        "nothing listens behind port {CLOSED_PORT}: {refused:?}"
    );

    let metrics = eventually(
        Duration::from_secs(3),
        "the forwarded connection counted",
        || {
            let (_, text) = get(&t, "client", &scrape_at, "/metrics");
            let series = r#"egress_router_bytes_total{role="dns-proxy",direction="up"}"#;
            match sample(&text, series) {
                Some(bytes) if bytes >= 4.0 => Ok(text),
                other => Err(format!("bytes up: {other:?}")),
            }
        },
    );
    let decided = |port: u16, reason: &str| {
        format!(
            r#"egress_router_connections_total{{role="dns-proxy",listener="{port}",decision="allowed",reason="{reason}"}}"#
        )
    };
    assert_sample(&metrics, &decided(ECHO_PORT, "forwarded"), 1.0);
    assert_sample(&metrics, &decided(CLOSED_PORT, "connect-failed"), 1.0);
    assert_sample(
        &metrics,
        r#"egress_router_bytes_total{role="dns-proxy",direction="up"}"#,
        4.0,
    );
    assert_sample(
        &metrics,
        r#"egress_router_upstream_errors_total{role="dns-proxy",kind="refused"}"#,
        1.0,
    );
    assert_sample(
        &metrics,
        r#"egress_router_backend_up{listener="7000",target="203.0.113.5",address="203.0.113.5"}"#,
        1.0,
    );
    assert_sample(
        &metrics,
        r#"egress_router_backend_up{listener="81",target="203.0.113.6",address="203.0.113.6"}"#,
        0.0,
    );

    let (status, body) = get(&t, "client", &scrape_at, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&format!("port {CLOSED_PORT}: every backend of 203.0.113.6")),
        "{body}"
    );
    assert!(!body.contains(&format!("port {ECHO_PORT}")), "{body}");
}

#[test]
fn redirect_exposes_the_kernels_nat_counters_and_goes_unready_without_its_route() {
    let _x = xtables_shared();
    let t = Topology::new();
    t.router_ok(&[], &good_env("init"));
    let _server = t.tcp_server(80);
    let mut r = t.spawn_router(&["redirect"], &good_env("init"));
    r.wait_ready(
        "redirect",
        "metrics and health endpoint listening",
        1,
        Duration::from_secs(5),
    );
    for _ in 0..2 {
        t.tcp_from_client(&format!("{ROUTER_IP}:80"))
            .expect("redirected connection");
    }
    // The fallback entry redirects every other port arriving on eth0, the endpoint's
    // too: it is scraped from inside the pod.
    let scrape_at = format!("127.0.0.1:{METRICS_PORT}");
    let (_, metrics) = get(&t, "router", &scrape_at, "/metrics");
    assert_sample(
        &metrics,
        r#"egress_router_nat_packets_total{rule="80 tcp 203.0.113.5"}"#,
        2.0,
    );
    assert_sample(
        &metrics,
        r#"egress_router_nat_packets_total{rule="8080 tcp 203.0.113.6 80"}"#,
        0.0,
    );
    let snat = sample(&metrics, r#"egress_router_nat_packets_total{rule="snat"}"#);
    assert!(snat >= Some(2.0), "both connections source-NATed: {snat:?}");
    let bytes = sample(
        &metrics,
        r#"egress_router_nat_bytes_total{rule="80 tcp 203.0.113.5"}"#,
    );
    assert!(
        bytes >= Some(120.0),
        "two SYNs of at least 60 bytes: {bytes:?}"
    );
    assert_sample(&metrics, "egress_router_setup_healthy", 1.0);
    assert!(
        r.stderr().contains("fallback entry"),
        "warns that the endpoint's port is redirected:\n{}",
        r.stderr()
    );
    assert_unready_without_route(&t, "router", &scrape_at);
}

#[test]
fn an_empty_address_turns_the_endpoint_off_and_a_bad_one_is_an_error() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let mut p = spawn_http_proxy(&t, "*", &[("EGRESS_METRICS_ADDRESS", "")]);
    assert!(
        t.refused_within(
            &format!("{ROUTER_IP}:{METRICS_PORT}"),
            Duration::from_secs(1)
        ),
        "nothing listens on {METRICS_PORT} with EGRESS_METRICS_ADDRESS empty"
    );
    p.signal(libc::SIGHUP);
    p.wait_ready(
        "proxy",
        "SIGHUP: nothing to reload",
        1,
        Duration::from_secs(3),
    );
    assert!(
        p.try_wait().is_none(),
        "SIGHUP does not end a proxy without a list file"
    );
    let mut env = envs(&[
        ("EGRESS_METRICS_ADDRESS", "localhost:9090"),
        ("EGRESS_HTTP_PROXY_PORT", "8081"),
    ]);
    env.push(("EGRESS_HTTP_PROXY_DESTINATION".into(), "*".into()));
    let out = t.router(&[], &env);
    assert_error_exit(
        out.status.code().map(|_| out.status),
        &String::from_utf8_lossy(&out.stderr),
        2,
        &["EGRESS_METRICS_ADDRESS", "localhost:9090"],
        "a metrics address that is no address",
    );
}

#[test]
fn report_mode_counts_what_the_list_would_deny() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let echo_server = Server::tcp_with(&t, "server", ECHO_PORT, echo_then_report);
    let knobs = [("EGRESS_HTTP_PROXY_MODE", "report")];
    let _p = spawn_http_proxy(&t, "!203.0.113.6\n203.0.113.5", &knobs);
    let proxy = format!("{ROUTER_IP}:8080");
    for target in ["203.0.113.5", "203.0.113.6", "203.0.113.7"] {
        let (resp, _) = connect_tunnel(&t, &proxy, &format!("{target}:{ECHO_PORT}"));
        assert_eq!(
            resp.status(),
            200,
            "report mode lets {target} through: {resp:?}"
        );
    }
    eventually(
        Duration::from_secs(3),
        "three tunnels at the server",
        || match echo_server.accepted() {
            3 => Ok(()),
            n => Err(format!("{n} accepted")),
        },
    );
    let (_, metrics) = get(
        &t,
        "client",
        &format!("{ROUTER_IP}:{METRICS_PORT}"),
        "/metrics",
    );
    let would_deny = |reason: &str| {
        format!(r#"egress_router_report_would_deny_total{{role="http-proxy",reason="{reason}"}}"#)
    };
    assert_sample(&metrics, &would_deny("!203.0.113.6"), 1.0);
    assert_sample(&metrics, &would_deny("default"), 1.0);
    assert!(
        !metrics.contains(&would_deny("203.0.113.5")),
        "an allowed target is not counted:\n{metrics}"
    );
}
