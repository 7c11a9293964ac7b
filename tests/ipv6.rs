//! IPv6 destinations through the HTTP proxy, as root (SPEC section 10): an IPv6
//! destination is dialed from the IPv6 egress address on `macvlan0` and through it, or
//! refused when `macvlan0` has none: never through the pod's own IPv6 default route on
//! `eth0`, which would show the server a cluster address. The topology gets IPv6 where
//! a dual-stack cluster has it (`common::ipv6`); init puts the IPv6 egress address on
//! `macvlan0` when `EGRESS_SOURCE` has one.
//! These tests FAIL (never skip) without root.

mod common;

use common::dns::Dns;
use common::http::connect_tunnel;
use common::ipv6::{self, POD6, SERVER6, SOURCE6, peer};
use common::proxy::spawn_http_proxy;
use common::*;
use std::time::Duration;

const PORT: u16 = 7000;

/// The topology with IPv6 on the cluster side and outside (`common::ipv6`), the
/// router set up for the HTTP proxy by init with `sources` and `gateways`, and an IPv6
/// server that answers each connection with the address it came from.
fn dual_stack_lab(sources: &str, gateways: &str) -> (Topology, ChildGuard) {
    let t = Topology::new();
    ipv6::enable(&t);
    t.router_ok(
        &[],
        &envs(&[
            ("EGRESS_ROUTER_MODE", "http-proxy"),
            ("EGRESS_SOURCE", sources),
            ("EGRESS_GATEWAY", gateways),
        ]),
    );
    let listen = format!("TCP6-LISTEN:{PORT},bind=[{SERVER6}],fork,reuseaddr");
    let server = t.spawn(
        "server",
        &["socat", &listen, "SYSTEM:echo $SOCAT_PEERADDR"],
        &[],
    );
    (t, server)
}

/// The lab with an IPv4 egress address only, and proof that the leak path exists:
/// the pod's own default IPv6 route (eth0) reaches the server.
fn ipv4_only_lab() -> (Topology, ChildGuard) {
    let (t, server) = dual_stack_lab(SOURCE, GATEWAY);
    let reached = eventually(
        Duration::from_secs(5),
        "the IPv6 server answering from the pod's eth0",
        || {
            let out = t.run(
                "router",
                &["socat", "-T2", "-", &format!("TCP6:[{SERVER6}]:{PORT}")],
                &[],
            );
            let seen = peer(&String::from_utf8_lossy(&out.stdout));
            if seen.is_empty() {
                Err(output_text(&out))
            } else {
                Ok(seen)
            }
        },
    );
    assert_eq!(
        reached, POD6,
        "the leak path exists: eth0's default IPv6 route reaches the server"
    );
    (t, server)
}

/// The lab with both egress addresses, set up by init.
fn egress_lab() -> (Topology, ChildGuard) {
    dual_stack_lab(
        "198.51.100.99/24,2001:db8:1::99/64",
        "198.51.100.1,2001:db8:1::1",
    )
}

fn tunnel_answer(t: &Topology) -> (u16, String) {
    let (resp, mut wire) = connect_tunnel(
        t,
        &format!("{ROUTER_IP}:8080"),
        &format!("[{SERVER6}]:{PORT}"),
    );
    if resp.status() != 200 {
        return (resp.status(), resp.body.clone());
    }
    let line = wire.read_line().unwrap_or_default();
    (200, peer(&line))
}

#[test]
fn an_ipv6_destination_without_an_ipv6_egress_address_is_refused_not_leaked() {
    let (t, _server) = ipv4_only_lab();
    let _p = spawn_http_proxy(&t, "2001:db8:2::/64", &[]);
    let (status, body) = tunnel_answer(&t);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("no IPv6 egress address"), "{body}");
}

fn dns_proxy_env(list: &str) -> Vec<(String, String)> {
    envs(&[("EGRESS_DNS_PROXY_DESTINATION", list)])
}

#[test]
fn a_dns_proxy_ipv6_target_without_an_ipv6_egress_address_is_a_startup_error() {
    let (t, _server) = ipv4_only_lab();
    let out = t.router(&[], &dns_proxy_env(&format!("{PORT} {SERVER6}")));
    assert_error_exit(
        out.status.code().map(|_| out.status),
        &String::from_utf8_lossy(&out.stderr),
        2,
        &[
            "EGRESS_DNS_PROXY_DESTINATION",
            SERVER6,
            "no IPv6 egress address",
        ],
        "an IPv6 target without an IPv6 egress address",
    );
}

#[test]
fn a_dns_proxy_ipv6_target_is_reached_from_the_ipv6_egress_address() {
    let (t, _server) = egress_lab();
    let mut p = t.spawn_router(&[], &dns_proxy_env(&format!("{PORT} {SERVER6}")));
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        1,
        Duration::from_secs(10),
    );
    let seen = t
        .tcp_from_client(&format!("{ROUTER_IP}:{PORT}"))
        .expect("forwarded");
    assert_eq!(peer(&seen), SOURCE6);
}

#[test]
fn an_ipv6_destination_leaves_from_the_ipv6_egress_address_on_macvlan0() {
    let (t, _server) = egress_lab();
    let _p = spawn_http_proxy(&t, "2001:db8:2::/64", &[]);
    assert_eq!(tunnel_answer(&t), (200, SOURCE6.to_string()));
    // a client of the IPv6 cluster network reaches the proxy over IPv6: the proxy
    // listens on both families, and its replies go back by eth0 (the reply routing)
    let (resp, mut wire) = connect_tunnel(
        &t,
        &format!("[{POD6}]:8080"),
        &format!("[{SERVER6}]:{PORT}"),
    );
    assert_eq!(resp.status(), 200, "{}", resp.body);
    assert_eq!(peer(&wire.read_line().unwrap_or_default()), SOURCE6);
}

#[test]
fn an_ipv6_only_router_refuses_ipv4_destinations_and_dials_ipv6_ones() {
    let (t, _server) = dual_stack_lab("2001:db8:1::99/64", "2001:db8:1::1");
    let _v4 = t.tcp_server(PORT);
    let _p = spawn_http_proxy(&t, "2001:db8:2::/64\n203.0.113.0/24", &[]);
    let (resp, _) = connect_tunnel(
        &t,
        &format!("{ROUTER_IP}:8080"),
        &format!("203.0.113.5:{PORT}"),
    );
    assert_eq!(resp.status(), 502, "{}", resp.body);
    assert!(
        resp.body.contains("no IPv4 egress address"),
        "{}",
        resp.body
    );
    assert_eq!(tunnel_answer(&t), (200, SOURCE6.to_string()));
}

#[test]
fn an_address_router_advertisements_configured_is_no_egress_address() {
    let (t, _server) = ipv4_only_lab();
    // The guard of macvlan0 keeps router advertisements out: none configures anything.
    ipv6::advertise_router(&t);
    std::thread::sleep(Duration::from_millis(500));
    let shown = t.sh(
        "router",
        &[
            "ip", "-6", "addr", "show", "dev", "macvlan0", "scope", "global",
        ],
    );
    assert!(
        !shown.contains("inet6"),
        "an advertisement came through: {shown}"
    );
    // Without the guard, an address it configures is still no egress address.
    t.sh(
        "router",
        &["ip6tables", "-D", "INPUT", "-j", "EGRESS-ROUTER-INPUT"],
    );
    ipv6::advertise_router(&t);
    let autoconfigured = eventually(
        Duration::from_secs(5),
        "an autoconfigured address on macvlan0",
        || {
            let shown = t.sh(
                "router",
                &[
                    "ip", "-6", "addr", "show", "dev", "macvlan0", "scope", "global",
                ],
            );
            match shown.contains("inet6") && !shown.contains("tentative") {
                true => Ok(shown),
                false => Err(shown),
            }
        },
    );
    assert!(autoconfigured.contains("dynamic"), "{autoconfigured}");
    let _p = spawn_http_proxy(&t, "2001:db8:2::/64", &[]);
    let (status, body) = tunnel_answer(&t);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("no IPv6 egress address"), "{body}");
}

#[test]
fn an_ipv6_only_routers_dns_proxy_reaches_its_ipv6_target_from_the_egress_address() {
    let (t, _server) = dual_stack_lab("2001:db8:1::99/64", "fe80::1");
    let mut p = t.spawn_router(&[], &dns_proxy_env(&format!("{PORT} {SERVER6}")));
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        1,
        Duration::from_secs(10),
    );
    let seen = t
        .tcp_from_client(&format!("[{POD6}]:{PORT}"))
        .expect("forwarded");
    assert_eq!(peer(&seen), SOURCE6);
}

/// A name with an A and an AAAA record: the server's IPv4 and IPv6 addresses.
const DUAL_NAME: [(&str, &str); 2] = [
    ("dual.example.org", "203.0.113.5"),
    ("dual.example.org", SERVER6),
];

#[test]
fn an_ipv6_only_routers_dns_proxy_forwards_to_a_dual_stack_name_from_its_ipv6_source() {
    let (t, _server) = dual_stack_lab("2001:db8:1::99/64", "fe80::1");
    let _dns = Dns::start_v6(&t, &DUAL_NAME);
    let mut p = t.spawn_router(&[], &dns_proxy_env(&format!("{PORT} dual.example.org")));
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        1,
        Duration::from_secs(10),
    );
    let seen = t
        .tcp_from_client(&format!("[{POD6}]:{PORT}"))
        .unwrap_or_else(|e| panic!("not forwarded: {e}\n{}", p.stderr()));
    assert_eq!(peer(&seen), SOURCE6, "{}", p.stderr());
}

#[test]
fn an_ipv4_only_routers_dns_proxy_forwards_to_a_dual_stack_name_from_its_ipv4_source() {
    let (t, _server) = ipv4_only_lab();
    let _v4 = t.tcp_server(PORT);
    let _dns = Dns::start_with_hosts(&t, &DUAL_NAME);
    let mut p = t.spawn_router(&[], &dns_proxy_env(&format!("{PORT} dual.example.org")));
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        1,
        Duration::from_secs(10),
    );
    expect_reply(
        &t,
        t.tcp_from_client(&format!("{ROUTER_IP}:{PORT}")),
        &format!("{SOURCE} 203.0.113.5:{PORT}"),
        "the dual-stack name from the IPv4-only router",
    );
}

#[test]
fn a_name_of_a_family_the_router_cannot_leave_by_is_named_as_such() {
    let (t, _server) = ipv4_only_lab();
    let _dns = Dns::start_with_hosts(&t, &[("v6only.example.org", "2001:db8:2::50")]);
    let mut p = t.spawn_router(&[], &dns_proxy_env("9003 v6only.example.org 443"));
    let status = p.wait_timeout(Duration::from_secs(15));
    assert_error_exit(
        status,
        &p.stderr(),
        1,
        &[
            "v6only.example.org has no IPv4 address",
            "macvlan0 has no IPv6 egress address",
        ],
        "an IPv6-only name on an IPv4-only router",
    );
    assert!(!p.stderr().contains("never dialed"), "{}", p.stderr());
}
