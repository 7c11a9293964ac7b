//! Host names in `EGRESS_DESTINATION` (SPEC section 13) on IPv6-only and dual-stack
//! routers, end to end, as root: a name is asked for in the families the router has a
//! source of and each family's chain sends to that family's addresses; the redirect
//! container follows each family, and a family the answer lost keeps its last rules.
//! The topology is `tests/topology.sh` with IPv6 as in a dual-stack cluster
//! (`common::ipv6`); the DNS server is on the cluster side. These tests FAIL (never
//! skip) without root.

mod common;

use common::dns::Dns;
use common::ipv6::{self, POD6, SOURCE6};
use common::*;
use std::time::Duration;

const PORT: u16 = 7000;
const LIST: &str = "7000 tcp both.example.com";
const NAME: &str = "both.example.com";

fn env(sources: &str, gateways: &str) -> Vec<(String, String)> {
    envs(&[
        ("EGRESS_ROUTER_MODE", "init"),
        ("EGRESS_SOURCE", sources),
        ("EGRESS_GATEWAY", gateways),
        ("EGRESS_DESTINATION", LIST),
    ])
}

/// (the address the server saw the connection from, the server address it reached),
/// IPv4 as IPv4 (the server listens on `::`).
fn seen(t: &Topology, target: &str) -> Result<(String, String), String> {
    let answer = t.tcp_from_client(target)?;
    let mut words = answer.split_whitespace();
    let plain = |text: &str| match text.parse::<std::net::IpAddr>() {
        Ok(address) => address.to_canonical().to_string(),
        Err(_) => text.to_string(),
    };
    let peer = plain(words.next().unwrap_or(""));
    let local = words.next().unwrap_or("");
    let local = plain(local.rsplit_once(':').map_or(local, |(ip, _)| ip));
    Ok((peer, local))
}

fn reaches(t: &Topology, target: &str, want: (&str, &str)) {
    eventually(
        Duration::from_secs(5),
        &format!("{target} reaching {want:?}"),
        || match seen(t, target)? {
            (peer, local) if peer == want.0 && local == want.1 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

fn chain6(t: &Topology) -> Vec<String> {
    t.sh("router", &["ip6tables-nft-save", "-t", "nat"])
        .lines()
        .filter(|l| l.starts_with("-A EGRESS-ROUTER-N-1 "))
        .map(String::from)
        .collect()
}

#[test]
fn an_ipv6_only_router_asks_for_aaaa_records_and_follows_them() {
    let _x = xtables_shared();
    let t = Topology::new();
    ipv6::enable(&t);
    let _server = Server::tcp_at(&t, "server", "::", PORT, answer_line);
    let dns = Dns::start_outside(&t, &[(NAME, "2001:db8:2::5"), (NAME, "203.0.113.5")]);
    let env = env("2001:db8:1::99/64", "2001:db8:1::1");
    t.router_ok(&[], &env);
    assert_eq!(
        chain6(&t),
        ["-A EGRESS-ROUTER-N-1 -p tcp -j DNAT --to-destination 2001:db8:2::5"]
    );
    let nat4 = t.sh("router", &["iptables-nft-save", "-t", "nat"]);
    assert!(
        !nat4.contains("EGRESS-ROUTER-N-1"),
        "no IPv4 source, no IPv4 rules:\n{nat4}"
    );
    let target = format!("[{POD6}]:{PORT}");
    reaches(&t, &target, (SOURCE6, "2001:db8:2::5"));

    let mut r = t.spawn_router(&["redirect"], &env);
    r.wait_ready("redirect", "setup verified", 1, Duration::from_secs(10));
    dns.set_hosts(&t, &[(NAME, "2001:db8:2::6"), (NAME, "203.0.113.6")]);
    reaches(&t, &target, (SOURCE6, "2001:db8:2::6"));
    assert_eq!(chain6(&t).len(), 1);
    t.router_ok(&["check"], &env);
}

#[test]
fn a_dual_stack_router_sends_each_family_to_the_names_addresses_of_that_family() {
    let _x = xtables_shared();
    let t = Topology::new();
    ipv6::enable(&t);
    let _server = Server::tcp_at(&t, "server", "::", PORT, answer_line);
    let dns = Dns::start_outside(&t, &[(NAME, "203.0.113.5"), (NAME, "2001:db8:2::5")]);
    let env = env(
        "198.51.100.99/24,2001:db8:1::99/64",
        "198.51.100.1,2001:db8:1::1",
    );
    t.router_ok(&[], &env);
    let v4 = format!("{ROUTER_IP}:{PORT}");
    let v6 = format!("[{POD6}]:{PORT}");
    reaches(&t, &v4, (SOURCE, "203.0.113.5"));
    reaches(&t, &v6, (SOURCE6, "2001:db8:2::5"));
    t.router_ok(&["check"], &env);

    let mut r = t.spawn_router(&["redirect"], &env);
    r.wait_ready("redirect", "setup verified", 1, Duration::from_secs(10));
    // the AAAA record goes away: IPv4 follows, IPv6 keeps its last rules
    dns.set_hosts(&t, &[(NAME, "203.0.113.6")]);
    reaches(&t, &v4, (SOURCE, "203.0.113.6"));
    std::thread::sleep(Duration::from_secs(2));
    reaches(&t, &v6, (SOURCE6, "2001:db8:2::5"));
    dns.set_hosts(&t, &[(NAME, "203.0.113.7"), (NAME, "2001:db8:2::7")]);
    reaches(&t, &v4, (SOURCE, "203.0.113.7"));
    reaches(&t, &v6, (SOURCE6, "2001:db8:2::7"));
    t.router_ok(&["check"], &env);
    assert!(r.try_wait().is_none(), "{}", r.stderr());
}
