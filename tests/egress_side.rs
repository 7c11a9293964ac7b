//! The egress side never opens anything in (SPEC section 4), end to end, as root: from
//! the egress LAN (the gateway's namespace, on the link of `macvlan0`) nothing reaches
//! the proxies' ports, the DNS proxy's ports or the operations endpoint, whether sent to
//! `EGRESS_SOURCE` or, through a route via it, to the pod's `eth0` address (the weak
//! host model), nor over IPv6 link-local on an IPv4-only router; nothing is forwarded
//! from the egress side into the cluster network in redirect mode; and every existing
//! flow still works. With the kernel's guard removed, the proxies still refuse (and
//! log) a connection made to an address of the egress interface, and `check` names the
//! missing rule. These tests FAIL (never skip) without root.

mod common;

use common::egress_lan::{
    ATTEMPT, assert_closed_from_egress_lan, connects, route_cluster_via_source,
};
use common::http::connect_tunnel;
use common::proxy::spawn_http_proxy;
use common::*;
use std::net::TcpStream;
use std::time::Duration;

/// A service of the cluster network: on the node's address in the router pod's subnet.
const CLUSTER_SERVICE: &str = "192.0.2.65";
const CLUSTER_PORT: u16 = 8001;

#[test]
fn the_http_proxy_and_its_endpoint_cannot_be_reached_from_the_egress_lan() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let cluster = Server::tcp_at(&t, "node", CLUSTER_SERVICE, CLUSTER_PORT, answer_line);
    let _line = t.tcp_server(80);
    let p = spawn_http_proxy(&t, "*", &[]);
    route_cluster_via_source(&t);
    assert_closed_from_egress_lan(
        &t,
        &[
            "198.51.100.99:8080",
            "198.51.100.99:9090",
            "192.0.2.70:8080",
            "192.0.2.70:9090",
        ],
    );
    assert_eq!(cluster.accepted(), 0, "the cluster service was reached");
    // the cluster side still works, leaving from EGRESS_SOURCE
    let (resp, mut w) = connect_tunnel(&t, "192.0.2.70:8080", "203.0.113.5:80");
    assert_eq!(resp.status(), 200, "{resp:?}");
    let line = String::from_utf8(w.read_to_end().unwrap()).unwrap();
    assert_eq!(line.trim(), format!("{SOURCE} 203.0.113.5:80"));
    assert!(
        !p.stderr().contains("egress interface"),
        "the kernel, not the proxy, must have stopped them:\n{}",
        p.stderr()
    );
}

#[test]
fn without_the_kernels_guard_the_proxy_still_refuses_the_egress_side_and_init_restores_it() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let cluster = Server::tcp_at(&t, "node", CLUSTER_SERVICE, CLUSTER_PORT, answer_line);
    let p = spawn_http_proxy(&t, "*", &[]);
    t.sh(
        "router",
        &["iptables", "-D", "INPUT", "-j", "EGRESS-ROUTER-INPUT"],
    );
    let target = format!("{CLUSTER_SERVICE}:{CLUSTER_PORT}");
    let refused = t.with_ns("gw", move || {
        let mut stream =
            TcpStream::connect_timeout(&"198.51.100.99:8080".parse().unwrap(), ATTEMPT)
                .expect("without the guard the kernel accepts the connection");
        use std::io::{Read, Write};
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
        let _ = stream.write_all(request.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer
    });
    assert!(
        refused.is_empty(),
        "the proxy answered the egress side: {:?}",
        String::from_utf8_lossy(&refused)
    );
    assert_eq!(cluster.accepted(), 0, "the cluster service was reached");
    p.wait_line(
        |l| l.contains("refused a connection made to an address of the egress interface"),
        Duration::from_secs(3),
    )
    .unwrap_or_else(|| panic!("no refusal logged:\n{}", p.stderr()));
    // init puts the guard back, first in INPUT
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let rules = t.sh("router", &["iptables", "-S", "INPUT"]);
    assert_eq!(
        rules.lines().nth(1),
        Some("-A INPUT -j EGRESS-ROUTER-INPUT"),
        "{rules}"
    );
    assert_closed_from_egress_lan(&t, &["198.51.100.99:8080"]);
}

#[test]
fn the_dns_proxy_ports_cannot_be_reached_from_the_egress_lan() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("dns-proxy"));
    let _line = t.tcp_server(80);
    let mut env = envs(&[("EGRESS_DNS_PROXY_DESTINATION", "5300 203.0.113.5 80")]);
    env.push(("EGRESS_METRICS_ADDRESS".into(), ":9090".into()));
    let mut p = t.spawn_router(&[], &env);
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        1,
        Duration::from_secs(10),
    );
    route_cluster_via_source(&t);
    assert_closed_from_egress_lan(
        &t,
        &[
            "198.51.100.99:5300",
            "192.0.2.70:5300",
            "198.51.100.99:9090",
            "192.0.2.70:9090",
        ],
    );
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:5300"),
        &format!("{SOURCE} 203.0.113.5:80"),
        "the cluster side through the DNS proxy",
    );
}

#[test]
fn redirect_forwards_nothing_from_the_egress_side_into_the_cluster() {
    let t = Topology::new();
    t.router_ok(&[], &good_env("init"));
    let cluster = Server::tcp_at(&t, "node", CLUSTER_SERVICE, CLUSTER_PORT, answer_line);
    let _servers = t.tcp_server(80);
    route_cluster_via_source(&t);
    assert_closed_from_egress_lan(
        &t,
        &[
            &format!("{CLUSTER_SERVICE}:{CLUSTER_PORT}"),
            "192.0.2.70:80",
            "198.51.100.99:80",
        ],
    );
    assert_eq!(cluster.accepted(), 0, "forwarded from the egress side");
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        &format!("{SOURCE} 203.0.113.5:80"),
        "a redirected connection from the cluster side",
    );
    // `check` names a guard rule that is gone
    t.sh(
        "router",
        &[
            "iptables",
            "-D",
            "EGRESS-ROUTER-FORWARD",
            "-i",
            "macvlan0",
            "-j",
            "DROP",
        ],
    );
    let out = t.router(&["check"], &good_env("init"));
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("filter rule missing: -A EGRESS-ROUTER-FORWARD -i macvlan0 -j DROP"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn an_ipv4_only_router_is_closed_to_ipv6_link_local_too() {
    let t = Topology::new();
    for ns in ["router", "gw"] {
        t.sh(
            ns,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=0",
                "net.ipv6.conf.default.disable_ipv6=0",
            ],
        );
    }
    t.sh(
        "router",
        &["sysctl", "-qw", "net.ipv6.conf.macvlan0.disable_ipv6=0"],
    );
    t.sh(
        "gw",
        &["sysctl", "-qw", "net.ipv6.conf.lan0.disable_ipv6=0"],
    );
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let _p = spawn_http_proxy(&t, "*", &[]);
    let link_local = eventually(
        Duration::from_secs(5),
        "macvlan0's link-local address",
        || {
            let shown = t.sh(
                "router",
                &[
                    "ip", "-6", "-o", "addr", "show", "dev", "macvlan0", "scope", "link",
                ],
            );
            match shown
                .split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)
            {
                Some(address) if !shown.contains("tentative") => {
                    Ok(address.split('/').next().unwrap().to_string())
                }
                _ => Err(shown),
            }
        },
    );
    let lan0 = t.sh("gw", &["cat", "/sys/class/net/lan0/ifindex"]);
    let target = format!("[{link_local}%{}]:8080", lan0.trim());
    let rules = t.sh("router", &["ip6tables", "-S", "EGRESS-ROUTER-INPUT"]);
    assert!(rules.contains("-i macvlan0 -j DROP"), "{rules}");
    let reached = eventually(Duration::from_secs(5), "gw's link-local address", || {
        let ready = t.sh(
            "gw",
            &[
                "ip", "-6", "-o", "addr", "show", "dev", "lan0", "scope", "link",
            ],
        );
        if ready.contains("tentative") || ready.is_empty() {
            return Err(ready);
        }
        Ok(connects(&t, "gw", &target))
    });
    assert!(
        !reached,
        "{target} accepted a connection from the egress LAN"
    );
}

#[test]
fn the_dns_proxys_answers_are_not_served_to_the_egress_lan_even_without_the_guard() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("dns-proxy"));
    let env = envs(&[
        ("EGRESS_DNS_PROXY_DESTINATION", "5300 web.example.com 80"),
        ("EGRESS_DNS_PROXY_ANSWER_ADDRESS", ROUTER_IP),
        ("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "true"),
    ]);
    let mut p = t.spawn_router(&[], &env);
    p.wait_ready(
        "dns proxy",
        "answering DNS queries",
        1,
        Duration::from_secs(10),
    );
    t.sh(
        "router",
        &["iptables", "-D", "INPUT", "-j", "EGRESS-ROUTER-INPUT"],
    );
    let dig = |role: &str, server: &str, tcp: bool| {
        let at = format!("@{server}");
        let mut args = vec!["dig", &at, "web.example.com", "A", "+tries=1", "+time=1"];
        if tcp {
            args.push("+tcp");
        }
        let out = t.run(role, &args, &[]);
        String::from_utf8_lossy(&out.stdout).contains("status: NOERROR")
    };
    for tcp in [false, true] {
        assert!(
            dig("client", ROUTER_IP, tcp),
            "the cluster side is answered (tcp: {tcp})"
        );
        assert!(
            !dig("gw", SOURCE, tcp),
            "EGRESS_SOURCE answered a DNS query from the egress LAN (tcp: {tcp})"
        );
    }
}
