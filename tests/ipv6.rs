//! IPv6 destinations through the HTTP proxy, as root (SPEC section 10): an IPv6
//! destination is dialed from the IPv6 egress address on `macvlan0` and through it, or
//! refused when `macvlan0` has none: never through the pod's own IPv6 default route on
//! `eth0`, which would show the server a cluster address. The topology gets IPv6 where
//! a dual-stack cluster has it: the pod's `eth0` (2001:db8:9::70, default route via the
//! node), the node forwarding to the outside network, the gateway and the server.
//! These tests FAIL (never skip) without root.

mod common;

use common::http::connect_tunnel;
use common::proxy::spawn_http_proxy;
use common::*;
use std::time::Duration;

const SERVER: &str = "2001:db8:2::5";
const PORT: u16 = 7000;
const CLUSTER_ADDRESS: &str = "2001:db8:9::70";
const EGRESS_V6: &str = "2001:db8:1::99";

/// The topology with IPv6 on the cluster side and outside, and an IPv6 server that
/// answers each connection with the address it came from.
fn dual_stack_lab() -> (Topology, ChildGuard) {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let on = [
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=0",
        "net.ipv6.conf.default.disable_ipv6=0",
    ];
    for ns in ["router", "node", "gw", "server"] {
        t.sh(ns, &on);
    }
    for (ns, commands) in [
        (
            "router",
            &[
                "ip -6 addr add 2001:db8:9::70/64 dev eth0 nodad",
                "ip -6 route add default via 2001:db8:9::1 dev eth0",
            ][..],
        ),
        (
            "node",
            &[
                "sysctl -qw net.ipv6.conf.all.forwarding=1",
                "ip -6 addr add 2001:db8:9::1/64 dev pod0 nodad",
                "ip -6 addr add 2001:db8:1::2/64 dev uplink0 nodad",
                "ip -6 route add default via 2001:db8:1::1",
            ][..],
        ),
        (
            "gw",
            &[
                "sysctl -qw net.ipv6.conf.all.forwarding=1",
                "ip -6 addr add 2001:db8:1::1/64 dev lan0 nodad",
                "ip -6 addr add 2001:db8:2::1/64 dev wan0 nodad",
                "ip -6 route add 2001:db8:9::/64 via 2001:db8:1::2",
            ][..],
        ),
        (
            "server",
            &[
                "ip -6 addr add 2001:db8:2::5/64 dev eth0 nodad",
                "ip -6 route add default via 2001:db8:2::1",
            ][..],
        ),
    ] {
        for command in commands {
            t.sh(ns, &command.split(' ').collect::<Vec<_>>());
        }
    }
    let listen = format!("TCP6-LISTEN:{PORT},bind=[{SERVER}],fork,reuseaddr");
    let server = t.spawn(
        "server",
        &["socat", &listen, "SYSTEM:echo $SOCAT_PEERADDR"],
        &[],
    );
    let reached = eventually(
        Duration::from_secs(5),
        "the IPv6 server answering from the pod's eth0",
        || {
            let out = t.run(
                "router",
                &["socat", "-T2", "-", &format!("TCP6:[{SERVER}]:{PORT}")],
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
        reached, CLUSTER_ADDRESS,
        "the leak path exists: eth0's default IPv6 route reaches the server"
    );
    (t, server)
}

/// The server's answer (socat's `[2001:0db8:...]`) as an address in its usual spelling.
fn peer(answer: &str) -> String {
    let text = answer.trim().trim_start_matches('[').trim_end_matches(']');
    text.parse::<std::net::Ipv6Addr>()
        .map_or_else(|_| answer.trim().to_string(), |a| a.to_string())
}

fn tunnel_answer(t: &Topology) -> (u16, String) {
    let (resp, mut wire) = connect_tunnel(
        t,
        &format!("{ROUTER_IP}:8080"),
        &format!("[{SERVER}]:{PORT}"),
    );
    if resp.status() != 200 {
        return (resp.status(), resp.body.clone());
    }
    let line = wire.read_line().unwrap_or_default();
    (200, peer(&line))
}

#[test]
fn an_ipv6_destination_without_an_ipv6_egress_address_is_refused_not_leaked() {
    let (t, _server) = dual_stack_lab();
    let _p = spawn_http_proxy(&t, "2001:db8:2::/64", &[]);
    let (status, body) = tunnel_answer(&t);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("no IPv6 egress address"), "{body}");
}

/// What the init container will set up for an IPv6 EGRESS_SOURCE: the address on
/// macvlan0 and a route out of it; the pod's default IPv6 route stays on eth0.
fn add_ipv6_egress(t: &Topology) {
    for command in [
        "ip -6 addr add 2001:db8:1::99/64 dev macvlan0 nodad",
        "ip -6 route add default via 2001:db8:1::1 dev macvlan0 metric 2048",
    ] {
        t.sh("router", &command.split(' ').collect::<Vec<_>>());
    }
}

fn dns_proxy_env(list: &str) -> Vec<(String, String)> {
    envs(&[("EGRESS_DNS_PROXY_DESTINATION", list)])
}

#[test]
fn a_dns_proxy_ipv6_target_without_an_ipv6_egress_address_is_a_startup_error() {
    let (t, _server) = dual_stack_lab();
    let out = t.router(&[], &dns_proxy_env(&format!("{PORT} {SERVER}")));
    assert_error_exit(
        out.status.code().map(|_| out.status),
        &String::from_utf8_lossy(&out.stderr),
        2,
        &[
            "EGRESS_DNS_PROXY_DESTINATION",
            SERVER,
            "no IPv6 egress address",
        ],
        "an IPv6 target without an IPv6 egress address",
    );
}

#[test]
fn a_dns_proxy_ipv6_target_is_reached_from_the_ipv6_egress_address() {
    let (t, _server) = dual_stack_lab();
    add_ipv6_egress(&t);
    let mut p = t.spawn_router(&[], &dns_proxy_env(&format!("{PORT} {SERVER}")));
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        1,
        Duration::from_secs(10),
    );
    let seen = t
        .tcp_from_client(&format!("{ROUTER_IP}:{PORT}"))
        .expect("forwarded");
    assert_eq!(peer(&seen), EGRESS_V6);
}

#[test]
fn an_ipv6_destination_leaves_from_the_ipv6_egress_address_on_macvlan0() {
    let (t, _server) = dual_stack_lab();
    add_ipv6_egress(&t);
    let _p = spawn_http_proxy(&t, "2001:db8:2::/64", &[]);
    assert_eq!(tunnel_answer(&t), (200, EGRESS_V6.to_string()));
}
