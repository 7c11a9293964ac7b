//! Host names in `EGRESS_DESTINATION` (SPEC section 13), end to end, as root: init
//! resolves a name (dnsmasq, on the cluster side as a cluster DNS is) and installs its
//! chain; the `redirect` container follows the name's address while an open connection
//! keeps its own; several addresses share new connections; a name that stops resolving
//! or answers only addresses the router may not use keeps its last rules; an unresolved
//! name (allowed) refuses its traffic and never sends it to the fallback; restarting the
//! container leaves one copy of every rule and SIGTERM leaves them in place; `legacy`
//! follows too. These tests FAIL (never skip) without root.

mod common;

use common::dns::Dns;
use common::http::{client, echo, echo_then_report, get, sample};
use common::*;
use std::time::Duration;

const NAME: &str = "db.example.com";
/// The name's entries: one answering with the address reached, one that echoes.
const LIST: &str = "80 tcp db.example.com\n81 tcp db.example.com";
const SCRAPE: &str = "192.0.2.70:9090";

fn env(list: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = envs(&[
        ("EGRESS_SOURCE", SOURCE),
        ("EGRESS_GATEWAY", GATEWAY),
        ("EGRESS_DESTINATION", list),
        ("EGRESS_ROUTER_MODE", "init"),
    ]);
    env.extend(envs(extra));
    env
}

/// The lines of `chain` in the router's IPv4 nat table.
fn chain(t: &Topology, chain: &str) -> Vec<String> {
    let prefix = format!("-A {chain} ");
    t.sh("router", &["iptables-nft-save", "-t", "nat"])
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(String::from)
        .collect()
}

/// The server address a new connection to the router's `port` reaches.
fn reached(t: &Topology, port: u16) -> Result<String, String> {
    let answer = t.tcp_from_client(&format!("{ROUTER_IP}:{port}"))?;
    let local = answer.split_whitespace().nth(1).unwrap_or("");
    Ok(local
        .rsplit_once(':')
        .map_or(local, |(ip, _)| ip)
        .to_string())
}

/// Waits until new connections to port 80 reach `address`.
fn reaches(t: &Topology, address: &str, limit: Duration) {
    eventually(
        limit,
        &format!("port 80 reaching {address}"),
        || match reached(t, 80)? {
            found if found == address => Ok(()),
            found => Err(format!("reached {found}")),
        },
    );
}

/// The `redirect` container, once it verified the setup and serves its endpoint.
fn redirect(t: &Topology, env: &[(String, String)]) -> ChildGuard {
    let mut r = t.spawn_router(&["redirect"], env);
    r.wait_ready(
        "redirect",
        "metrics and health endpoint listening",
        1,
        Duration::from_secs(10),
    );
    r
}

#[test]
fn the_redirect_container_follows_a_changed_address_while_an_open_connection_keeps_its_own() {
    let _x = xtables_shared();
    let t = Topology::new();
    let dns = Dns::start_outside(&t, &[(NAME, "203.0.113.5")]);
    let _answers = t.tcp_server(80);
    let _echo = Server::tcp_with(&t, "server", 81, echo_then_report);
    let env = env(LIST, &[]);
    t.router_ok(&[], &env);
    assert_eq!(
        chain(&t, "EGRESS-ROUTER-N-1"),
        ["-A EGRESS-ROUTER-N-1 -p tcp -j DNAT --to-destination 203.0.113.5"]
    );
    assert_eq!(reached(&t, 80).unwrap(), "203.0.113.5");
    let r = redirect(&t, &env);
    let mut open = client(&t, &format!("{ROUTER_IP}:81")).unwrap();
    echo(&mut open, "before\n").unwrap();
    let entry = r#"egress_router_nat_packets_total{rule="80 tcp db.example.com"}"#;
    let counted = |t: &Topology| sample(&get(t, "client", SCRAPE, "/metrics").1, entry);
    let before = counted(&t).expect("the entry's counters");
    assert!(before >= 1.0, "{before}");

    dns.set_hosts(&t, &[(NAME, "203.0.113.6")]);
    reaches(&t, "203.0.113.6", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(5)); // the endpoint's counters are cached 5 s
    let after = counted(&t).expect("the entry's counters");
    assert!(
        after > before,
        "the entry's counters went from {before} to {after}"
    );
    echo(&mut open, "after the change\n")
        .unwrap_or_else(|e| panic!("the open connection broke: {e}\n{}", r.stderr()));
    for name_chain in ["EGRESS-ROUTER-N-1", "EGRESS-ROUTER-N-2"] {
        assert_eq!(chain(&t, name_chain).len(), 1, "{name_chain}");
        assert!(chain(&t, name_chain)[0].contains("--to-destination 203.0.113.6"));
    }
    let jumps = t.sh("router", &["iptables-nft-save", "-t", "nat"]);
    assert_eq!(jumps.matches("-j EGRESS-ROUTER-N-1").count(), 1, "{jumps}");
    t.router_ok(&["check"], &env);
    assert!(
        r.wait_line(|l| l.contains("rules replaced"), Duration::from_secs(5))
            .is_some(),
        "{}",
        r.stderr()
    );

    let (status, metrics) = get(&t, "client", SCRAPE, "/metrics");
    assert_eq!(status, 200);
    for (series, at_least) in [
        (
            r#"egress_router_redirect_address{rule="80 tcp db.example.com",address="203.0.113.6"}"#,
            1.0,
        ),
        (
            r#"egress_router_redirect_addresses{rule="81 tcp db.example.com"}"#,
            1.0,
        ),
        (
            r#"egress_router_redirect_rule_updates_total{rule="80 tcp db.example.com"}"#,
            1.0,
        ),
        (
            r#"egress_router_nat_packets_total{rule="80 tcp db.example.com"}"#,
            2.0,
        ),
        (
            r#"egress_router_resolution_last_success_timestamp_seconds{target="db.example.com"}"#,
            1.0,
        ),
    ] {
        let value =
            sample(&metrics, series).unwrap_or_else(|| panic!("{series} not in\n{metrics}"));
        assert!(value >= at_least, "{series} = {value}");
    }
    assert!(!metrics.contains(r#"address="203.0.113.5""#), "{metrics}");
    assert_eq!(get(&t, "client", SCRAPE, "/readyz").0, 200);

    // the check finds a chain that no longer holds the rules of its addresses
    t.sh(
        "router",
        &["iptables-nft", "-t", "nat", "-F", "EGRESS-ROUTER-N-2"],
    );
    let out = t.router(&["check"], &env);
    let err = output_text(&out);
    assert!(
        !out.status.success()
            && err.contains("nat chain EGRESS-ROUTER-N-2 (81 tcp db.example.com) holds other rules than those of its addresses"),
        "{err}"
    );
}

#[test]
fn several_addresses_share_new_connections_evenly() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _dns = Dns::start_outside(
        &t,
        &[
            (NAME, "203.0.113.7"),
            (NAME, "203.0.113.5"),
            (NAME, "203.0.113.6"),
        ],
    );
    let _answers = t.tcp_server(80);
    t.router_ok(&[], &env("80 tcp db.example.com", &[]));
    let mut seen: Vec<String> = (0..9).map(|_| reached(&t, 80).unwrap()).collect();
    seen.sort();
    let each = |a: &str| seen.iter().filter(|s| *s == a).count();
    assert_eq!(
        (
            each("203.0.113.5"),
            each("203.0.113.6"),
            each("203.0.113.7")
        ),
        (3, 3, 3),
        "{seen:?}"
    );
}

#[test]
fn a_name_that_stops_resolving_or_answers_only_unusable_addresses_keeps_its_rules() {
    let _x = xtables_shared();
    let t = Topology::new();
    let dns = Dns::start_outside(
        &t,
        &[(NAME, "203.0.113.5"), ("other.example.com", "203.0.113.6")],
    );
    let _answers = t.tcp_server(80);
    let env = env(LIST, &[]);
    t.router_ok(&[], &env);
    let r = redirect(&t, &env);
    let before = chain(&t, "EGRESS-ROUTER-N-1");
    let failures = r#"egress_router_resolution_failures_total{target="db.example.com"}"#;

    dns.set_hosts(&t, &[("other.example.com", "203.0.113.6")]);
    eventually(
        Duration::from_secs(10),
        "two failed lookups",
        || match sample(&get(&t, "client", SCRAPE, "/metrics").1, failures) {
            Some(n) if n >= 2.0 => Ok(()),
            other => Err(format!("{failures} = {other:?}")),
        },
    );
    assert_eq!(chain(&t, "EGRESS-ROUTER-N-1"), before);
    assert_eq!(reached(&t, 80).unwrap(), "203.0.113.5");

    // loopback, link-local, multicast, the pod's eth0 and its source: never a destination
    let unusable: [(&'static str, &'static str); 5] = [
        (NAME, "127.0.0.1"),
        (NAME, "169.254.169.254"),
        (NAME, "224.0.0.1"),
        (NAME, "192.0.2.70"),
        (NAME, "198.51.100.99"),
    ];
    dns.set_hosts(&t, &unusable);
    let counted = r#"egress_router_redirect_unusable_answers_total{target="db.example.com"}"#;
    eventually(
        Duration::from_secs(10),
        "an unusable answer counted",
        || match sample(&get(&t, "client", SCRAPE, "/metrics").1, counted) {
            Some(n) if n >= 1.0 => Ok(()),
            other => Err(format!("{counted} = {other:?}")),
        },
    );
    assert_eq!(chain(&t, "EGRESS-ROUTER-N-1"), before);
    let log = r.stderr();
    for reason in [
        "127.0.0.1: a loopback address",
        "169.254.169.254: a link-local address",
        "224.0.0.1: a multicast address",
        "192.0.2.70: an address of this pod",
        "198.51.100.99: an address of this pod",
    ] {
        assert!(log.contains(reason), "{reason} not in\n{log}");
    }

    // one usable address among them is taken alone
    dns.set_hosts(&t, &[(NAME, "127.0.0.1"), (NAME, "203.0.113.7")]);
    reaches(&t, "203.0.113.7", Duration::from_secs(5));
    assert_eq!(chain(&t, "EGRESS-ROUTER-N-1").len(), 1);
}

#[test]
fn an_unresolved_name_fails_init_unless_allowed_and_then_its_traffic_is_refused() {
    let _x = xtables_shared();
    let t = Topology::new();
    let dns = Dns::start_outside(&t, &[("loop.example.com", "127.0.0.1")]);
    let fallback = Server::tcp_at(&t, "server", "203.0.113.7", 80, answer_line);
    let _other = Server::tcp_at(&t, "server", "203.0.113.7", 9999, answer_line);
    let _udp = t.udp_server(53);
    let before = t.snapshot("router");
    for (list, reason) in [
        (
            "80 tcp loop.example.com\n203.0.113.7",
            "127.0.0.1: a loopback address",
        ),
        (
            "80 tcp db.example.com\n203.0.113.7",
            "db.example.com has no IPv4 address",
        ),
    ] {
        let out = t.router(&[], &env(list, &[]));
        let line = list.lines().next().unwrap();
        assert_error_exit(
            Some(out.status),
            &String::from_utf8_lossy(&out.stderr),
            1,
            &[
                &format!("EGRESS_DESTINATION: line {line:?}"),
                reason,
                "EGRESS_ROUTER_ALLOW_UNRESOLVED=true",
            ],
            "init with a name that has no usable address",
        );
        assert_same(
            &before,
            &t.snapshot("router"),
            "a failed lookup changes nothing",
        );
    }

    let allowed = env(
        "80 tcp db.example.com\n53 udp db.example.com\n203.0.113.7",
        &[("EGRESS_ROUTER_ALLOW_UNRESOLVED", "true")],
    );
    t.router_ok(&[], &allowed);
    assert!(t.refused_within(&format!("{ROUTER_IP}:80"), Duration::from_secs(2)));
    let udp = t.udp_from_client(&format!("{ROUTER_IP}:53"));
    assert!(udp.is_err(), "UDP goes nowhere either: {udp:?}");
    assert_eq!(
        fallback.accepted(),
        0,
        "a refused name's traffic never reaches the fallback"
    );
    assert_eq!(
        reached(&t, 9999).unwrap(),
        "203.0.113.7",
        "the fallback still serves other ports"
    );

    let r = redirect(&t, &allowed);
    dns.set_hosts(&t, &[(NAME, "203.0.113.5")]);
    let _answers = Server::tcp_at(&t, "server", "203.0.113.5", 80, answer_line);
    reaches(&t, "203.0.113.5", Duration::from_secs(5));
    assert_eq!(
        t.udp_from_client(&format!("{ROUTER_IP}:53")).unwrap(),
        format!("{SOURCE} 203.0.113.5:53")
    );
    assert!(
        r.wait_line(|l| l.contains("rules replaced"), Duration::from_secs(5))
            .is_some(),
        "{}",
        r.stderr()
    );
    assert_eq!(fallback.accepted(), 0);
}

#[test]
fn sigterm_leaves_the_rules_and_a_restarted_container_follows_what_changed() {
    let _x = xtables_shared();
    let t = Topology::new();
    let dns = Dns::start_outside(&t, &[(NAME, "203.0.113.5")]);
    let _answers = t.tcp_server(80);
    let env = env(LIST, &[]);
    t.router_ok(&[], &env);
    let mut r = redirect(&t, &env);
    let nat_before = t.sh("router", &["iptables-nft-save", "-t", "nat"]);
    r.signal(libc::SIGTERM);
    let status = r
        .wait_timeout(Duration::from_secs(3))
        .expect("redirect exits on SIGTERM");
    assert!(status.success(), "{}", r.stderr());
    let rules = |save: &str| -> Vec<String> {
        save.lines()
            .filter(|l| l.starts_with("-A "))
            .map(String::from)
            .collect()
    };
    let nat_after = t.sh("router", &["iptables-nft-save", "-t", "nat"]);
    assert_eq!(
        rules(&nat_after),
        rules(&nat_before),
        "SIGTERM leaves the rules"
    );

    // while no container runs, the name moves: traffic keeps flowing to the old address
    dns.set_hosts(&t, &[(NAME, "203.0.113.6")]);
    for _ in 0..3 {
        assert_eq!(reached(&t, 80).unwrap(), "203.0.113.5");
    }
    let _again = redirect(&t, &env);
    reaches(&t, "203.0.113.6", Duration::from_secs(5));
    let nat = t.sh("router", &["iptables-nft-save", "-t", "nat"]);
    let all = rules(&nat);
    for rule in &all {
        assert_eq!(
            all.iter().filter(|r| *r == rule).count(),
            1,
            "{rule} twice:\n{nat}"
        );
    }
    assert_eq!(all.len(), rules(&nat_before).len(), "{nat}");
}

#[test]
fn legacy_sets_up_and_follows_a_name() {
    let _x = xtables_shared();
    let t = Topology::new();
    let dns = Dns::start_outside(&t, &[(NAME, "203.0.113.5")]);
    let _answers = t.tcp_server(80);
    let env = with_var(env(LIST, &[]), "EGRESS_ROUTER_MODE", Some("legacy"));
    let mut r = t.spawn_router(&[], &env);
    r.wait_ready(
        "legacy",
        "metrics and health endpoint listening",
        1,
        Duration::from_secs(10),
    );
    reaches(&t, "203.0.113.5", Duration::from_secs(5));
    dns.set_hosts(&t, &[(NAME, "203.0.113.6")]);
    reaches(&t, "203.0.113.6", Duration::from_secs(5));
    r.signal(libc::SIGTERM);
    assert!(
        r.wait_timeout(Duration::from_secs(3))
            .is_some_and(|s| s.success())
    );
    assert_eq!(
        reached(&t, 80).unwrap(),
        "203.0.113.6",
        "the rules stay after SIGTERM"
    );
}
