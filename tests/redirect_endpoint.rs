//! The `redirect` container's operations endpoint beside a fallback entry (issue 22 item
//! 4), end to end, as root: with `EGRESS_METRICS_ADDRESS` set in the init container's
//! environment (and the main container's, as the examples do), the fallback's DNAT
//! leaves the endpoint's TCP port alone, so Prometheus and the kubelet reach
//! `/metrics`, `/healthz` and `/readyz` through `eth0` from the cluster, while every
//! other port is redirected and the NAT counters move with the traffic; the check covers
//! the exemption, and a main container that expects it from an init that did not make
//! it is told so. These tests FAIL (never skip) without root.

mod common;

use common::http::{get, sample};
use common::*;
use std::time::Duration;

const METRICS_PORT: u16 = 9090;

/// The router env of a redirect pod with a fallback line alone, the endpoint's address
/// set.
fn fallback_only_env() -> Vec<(String, String)> {
    envs(&[
        ("EGRESS_SOURCE", SOURCE),
        ("EGRESS_GATEWAY", GATEWAY),
        ("EGRESS_DESTINATION", "203.0.113.7"),
        ("EGRESS_ROUTER_MODE", "init"),
        ("EGRESS_METRICS_ADDRESS", ":9090"),
    ])
}

#[test]
fn a_fallback_leaves_the_endpoint_reachable_through_eth0_and_its_counters_move() {
    let _x = xtables_shared();
    let t = Topology::new();
    t.router_ok(&[], &fallback_only_env());
    let _server = t.tcp_server(80);
    let mut r = t.spawn_router(&["redirect"], &fallback_only_env());
    r.wait_ready(
        "redirect",
        "metrics and health endpoint listening",
        1,
        Duration::from_secs(5),
    );
    let scrape_at = format!("{ROUTER_IP}:{METRICS_PORT}");
    assert_eq!(
        get(&t, "client", &scrape_at, "/healthz"),
        (200, "ok\n".into())
    );
    assert_eq!(
        get(&t, "client", &scrape_at, "/readyz"),
        (200, "ready\n".into())
    );
    let fallback = r#"egress_router_nat_packets_total{rule="203.0.113.7"}"#;
    let before = sample(&get(&t, "client", &scrape_at, "/metrics").1, fallback);
    for _ in 0..3 {
        expect_reply(
            &t,
            t.tcp_from_client(&format!("{ROUTER_IP}:80")),
            &format!("{SOURCE} 203.0.113.7:80"),
            "port 80 through the fallback",
        );
    }
    // the counters are read at most every 5 s
    let metrics = eventually(
        Duration::from_secs(7),
        "the fallback's counter moving",
        || {
            let (status, metrics) = get(&t, "client", &scrape_at, "/metrics");
            match sample(&metrics, fallback) {
                found if status == 200 && found == before.map(|n| n + 3.0) => Ok(metrics),
                found => Err(format!("{status}: {found:?} after {before:?}")),
            }
        },
    );
    let exempted = sample(
        &metrics,
        r#"egress_router_nat_packets_total{rule="metrics-port"}"#,
    );
    assert!(
        exempted >= Some(3.0),
        "the scrapes and probes took the exemption: {exempted:?}"
    );
    assert!(
        !r.stderr().contains("fallback entry"),
        "no warning when the port is exempted:\n{}",
        r.stderr()
    );
    // the check covers the exemption: without it the endpoint is redirected away, and
    // the pod's own probe names the rule
    t.sh(
        "router",
        &[
            "iptables",
            "-t",
            "nat",
            "-D",
            "PREROUTING",
            "-i",
            "eth0",
            "-p",
            "tcp",
            "--dport",
            "9090",
            "-j",
            "RETURN",
        ],
    );
    let inside = format!("127.0.0.1:{METRICS_PORT}");
    let body = eventually(
        Duration::from_secs(7),
        "/readyz naming the rule",
        || match get(&t, "router", &inside, "/readyz") {
            (503, body) => Ok(body),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(
        body.contains("nat rule missing: -A PREROUTING -i eth0 -p tcp --dport 9090 -j RETURN"),
        "{body}"
    );
}

#[test]
fn a_main_container_expecting_the_exemption_from_an_init_that_did_not_make_it_is_told_so() {
    let _x = xtables_shared();
    let t = Topology::new();
    let without = with_var(fallback_only_env(), "EGRESS_METRICS_ADDRESS", None);
    let out = t.router_ok(&[], &without);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("RETURN"),
        "unset, the rules are as they always were"
    );
    let mut r = t.spawn_router(&["redirect"], &fallback_only_env());
    let status = r.wait_timeout(Duration::from_secs(10));
    assert_error_exit(
        status,
        &r.stderr(),
        1,
        &[
            "nat rule missing: -A PREROUTING -i eth0 -p tcp --dport 9090 -j RETURN",
            "EGRESS_METRICS_ADDRESS in the init container",
        ],
        "redirect with the address set, init without",
    );
}
