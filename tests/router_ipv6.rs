//! The router's IPv6 half, as root (SPEC section 10): `EGRESS_SOURCE` and
//! `EGRESS_GATEWAY` with one address a family, duplicate address detection, the
//! unsolicited neighbour advertisement, ip6tables NAT with the replies' way back to
//! clients in other subnets, an IPv6-only router with a link-local gateway, and
//! restarts. The topology is `tests/topology.sh` with IPv6 added as in a dual-stack
//! cluster (`common::ipv6`). These tests FAIL (never skip) without root.

mod common;

use common::ipv6::{self, POD6, SERVER6, SOURCE6, peer};
use common::*;
use std::time::Duration;

const PORT: u16 = 7000;
const SOURCES: &str = "198.51.100.99/24,2001:db8:1::99/64";
const GATEWAYS: &str = "198.51.100.1,2001:db8:1::1";

/// Both families' echo servers: 203.0.113.5 (and the other IPv4 addresses) and
/// 2001:db8:2::5, each answering with the address the connection came from.
fn servers(t: &Topology) -> (Server, Server) {
    (
        t.tcp_server(PORT),
        Server::tcp_at(t, "server", SERVER6, PORT, answer_line),
    )
}

fn router_env(
    mode: &str,
    sources: &str,
    gateways: &str,
    destinations: &str,
) -> Vec<(String, String)> {
    let mut env = envs(&[
        ("EGRESS_ROUTER_MODE", mode),
        ("EGRESS_SOURCE", sources),
        ("EGRESS_GATEWAY", gateways),
    ]);
    if !destinations.is_empty() {
        env.extend(envs(&[("EGRESS_DESTINATION", destinations)]));
    }
    env
}

/// The address the server saw for a connection from the client to `target`.
fn seen_from_client(t: &Topology, target: &str) -> String {
    let answer = t
        .tcp_from_client(target)
        .unwrap_or_else(|e| panic!("{target}: {e}\n{}", t.dump()));
    peer(&answer)
}

fn macvlan_addresses(t: &Topology) -> String {
    t.sh("router", &["ip", "-6", "addr", "show", "dev", "macvlan0"])
}

#[test]
fn dual_stack_init_redirects_each_family_from_its_own_source() {
    let t = Topology::new();
    ipv6::enable(&t);
    let _servers = servers(&t);
    let list = format!("{PORT} tcp 203.0.113.5\n{PORT} tcp {SERVER6}\n7001 tcp {SERVER6} {PORT}\n");
    let env = router_env("init", SOURCES, GATEWAYS, &list);
    let out = t.router_ok(&[], &env);
    let log = output_text(&out);
    assert!(
        log.contains("source=198.51.100.99/24,2001:db8:1::99/64"),
        "{log}"
    );

    let addresses = macvlan_addresses(&t);
    let source_line = addresses
        .lines()
        .find(|l| l.contains("inet6 2001:db8:1::99/64"))
        .unwrap_or_else(|| panic!("no IPv6 source on macvlan0:\n{addresses}"));
    assert!(
        !source_line.contains("tentative"),
        "the IPv6 source is usable when init returns:\n{addresses}"
    );
    assert_eq!(seen_from_client(&t, &format!("{ROUTER_IP}:{PORT}")), SOURCE);
    assert_eq!(seen_from_client(&t, &format!("[{POD6}]:{PORT}")), SOURCE6);
    assert_eq!(seen_from_client(&t, &format!("[{POD6}]:7001")), SOURCE6);

    let nat6 = t.sh("router", &["ip6tables-save", "-t", "nat"]);
    for rule in [
        "-A PREROUTING -i eth0 -p tcp -m tcp --dport 7000 -j DNAT --to-destination 2001:db8:2::5",
        "-A PREROUTING -i eth0 -p tcp -m tcp --dport 7001 -j DNAT --to-destination [2001:db8:2::5]:7000",
        "-A POSTROUTING -j SNAT --to-source 2001:db8:1::99",
    ] {
        assert!(nat6.contains(rule), "{rule} not in\n{nat6}");
    }
    let defaults = t.sh("router", &["ip", "-6", "route", "show", "default"]);
    assert!(
        defaults.contains("default via 2001:db8:1::1 dev macvlan0"),
        "{defaults}"
    );
    t.router_ok(&["check"], &env);
    // the pod's own IPv6 connections leave by macvlan0 too, not by eth0 (whose
    // address the gateway routes back: a leak would show the server 2001:db8:9::70)
    let own = t.run(
        "router",
        &["socat", "-T2", "-", &format!("TCP6:[{SERVER6}]:{PORT}")],
        &[],
    );
    assert_eq!(
        peer(&String::from_utf8_lossy(&own.stdout)),
        SOURCE6,
        "{}",
        output_text(&own)
    );

    // a restart is recognised by the source addresses: nothing is added twice
    let again = output_text(&t.router_ok(&[], &env));
    assert!(again.contains("network_changes=0"), "{again}");
    let nat6_again = t.sh("router", &["ip6tables-save", "-t", "nat"]);
    assert_eq!(
        nat6_again
            .matches("SNAT --to-source 2001:db8:1::99")
            .count(),
        1,
        "{nat6_again}"
    );
    assert_eq!(seen_from_client(&t, &format!("[{POD6}]:{PORT}")), SOURCE6);

    // the check (and so the redirect container) covers the IPv6 half
    t.sh(
        "router",
        &[
            "ip6tables",
            "-t",
            "nat",
            "-D",
            "POSTROUTING",
            "-j",
            "SNAT",
            "--to-source",
            SOURCE6,
        ],
    );
    let broken = t.router(&["check"], &env);
    assert!(!broken.status.success(), "{}", output_text(&broken));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(
        stderr.contains(
            "ip6tables nat rule missing: -A POSTROUTING -j SNAT --to-source 2001:db8:1::99"
        ),
        "{stderr}"
    );
}

#[test]
fn an_ipv6_only_router_with_a_link_local_gateway_leaves_ipv4_alone() {
    let t = Topology::new();
    ipv6::enable(&t);
    let _servers = servers(&t);
    let ipv4_routes = t.sh("router", &["ip", "-4", "route", "show", "table", "all"]);
    let env = router_env(
        "init",
        "2001:db8:1::99/64",
        "fe80::1%macvlan0",
        &format!("{PORT} tcp {SERVER6}"),
    );
    t.router_ok(&[], &env);
    assert_eq!(
        t.sh("router", &["ip", "-4", "route", "show", "table", "all"]),
        ipv4_routes,
        "IPv4 routing untouched"
    );
    let defaults = t.sh("router", &["ip", "-6", "route", "show", "default"]);
    assert!(
        defaults.contains("default via fe80::1 dev macvlan0"),
        "{defaults}"
    );
    assert_eq!(seen_from_client(&t, &format!("[{POD6}]:{PORT}")), SOURCE6);
    t.router_ok(&["check"], &env);
    let again = output_text(&t.router_ok(&[], &env));
    assert!(again.contains("network_changes=0"), "{again}");
}

#[test]
fn the_ipv6_source_is_announced_by_unsolicited_neighbour_advertisements() {
    let t = Topology::new();
    ipv6::enable(&t);
    let dump = t.spawn(
        "gw",
        &[
            "timeout",
            "20",
            "tcpdump",
            "-l",
            "-n",
            "-e",
            "-v",
            "-i",
            "lan0",
            "icmp6 and ip6[40] == 136",
        ],
        &[],
    );
    dump.wait_line(|l| l.contains("listening on"), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("tcpdump not listening:\n{}", dump.stderr()));
    t.router_ok(&[], &router_env("http-proxy", SOURCES, GATEWAYS, ""));
    let mac = t.sh("router", &["cat", "/sys/class/net/macvlan0/address"]);
    let mac = mac.trim();
    let advertisements = || -> Vec<std::time::Instant> {
        dump.lines()
            .into_iter()
            .filter(|(_, _, line)| line.contains("neighbor advertisement"))
            .map(|(at, _, _)| at)
            .collect()
    };
    let end = std::time::Instant::now() + Duration::from_secs(6);
    while advertisements().len() < 2 && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = dump.stdout();
    let seen = advertisements();
    assert_eq!(
        seen.len(),
        2,
        "one advertisement at once, one ~2 s later:\n{text}"
    );
    let apart = seen[1] - seen[0];
    assert!(
        apart >= Duration::from_millis(1500),
        "the second came {apart:?} after the first:\n{text}"
    );
    for needle in [
        format!("{mac} > 33:33:00:00:00:01"),
        "hlim 255".to_string(),
        format!("{SOURCE6} > ff02::1"),
        format!("tgt is {SOURCE6}, Flags [override]"),
        format!("destination link-address option (2), length 8 (1): {mac}"),
    ] {
        assert!(text.contains(&needle), "{needle:?} not in\n{text}");
    }
}

#[test]
fn a_duplicate_ipv6_source_fails_naming_egress_source_and_changes_nothing() {
    let t = Topology::new();
    ipv6::enable(&t);
    t.sh(
        "gw",
        &[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8:1::99/64",
            "dev",
            "lan0",
            "nodad",
        ],
    );
    let before = t.snapshot("router");
    let out = t.router(&[], &router_env("init", SOURCES, GATEWAYS, "203.0.113.7"));
    assert_error_exit(
        out.status.code().map(|_| out.status),
        &String::from_utf8_lossy(&out.stderr),
        2,
        &[
            "EGRESS_SOURCE: 2001:db8:1::99 is already used by another host",
            "duplicate address detection failed",
            "changes rolled back",
        ],
        "a duplicate IPv6 source",
    );
    // the guard went in first, so the rollback may leave empty built-in tables
    assert_same(
        &before.without_empty_tables(),
        &t.snapshot("router").without_empty_tables(),
        "after the refused init",
    );
}

#[test]
fn router_advertisements_on_the_egress_network_configure_nothing() {
    let t = Topology::new();
    ipv6::enable(&t);
    // IPv6 not forwarded (no IPv6 line): the kernel would take advertisements
    let env = router_env("init", SOURCES, GATEWAYS, "203.0.113.7");
    t.router_ok(&[], &env);
    ipv6::advertise_router(&t);
    // what an autoconfigured address would take: the advertisement's DAD
    std::thread::sleep(Duration::from_millis(2500));
    let addresses = macvlan_addresses(&t);
    let global: Vec<&str> = addresses
        .lines()
        .filter(|l| l.contains("inet6") && l.contains("scope global"))
        .collect();
    assert_eq!(global.len(), 1, "only EGRESS_SOURCE:\n{addresses}");
    let defaults = t.sh("router", &["ip", "-6", "route", "show", "default"]);
    assert_eq!(defaults.lines().count(), 1, "{defaults}");
    t.router_ok(&["check"], &env);
}
