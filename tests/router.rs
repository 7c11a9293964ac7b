//! Router (redirect mode) end to end, as root: real network namespaces, a real macvlan,
//! real iptables and real traffic, on the topology of `tests/topology.sh`.
//! These tests FAIL (never skip) without root.

mod common;

use common::*;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

fn macvlan_inets(t: &Topology) -> Vec<String> {
    let out = t.sh(
        "router",
        &["ip", "-4", "-o", "addr", "show", "dev", "macvlan0"],
    );
    out.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "inet")
        .map(|w| w[1].to_string())
        .collect()
}

fn macvlan_mac(t: &Topology) -> String {
    let out = t.sh("router", &["ip", "-o", "link", "show", "dev", "macvlan0"]);
    let words: Vec<&str> = out.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == "link/ether")
        .expect("macvlan0 has a MAC");
    words[i + 1].to_string()
}

/// `-A` lines of the nat table, with the implicit `-m tcp`/`-m udp` that iptables-save
/// adds removed so they compare with SPEC section 3.
fn nat_rules(t: &Topology, save: &str) -> Vec<String> {
    t.sh("router", &[save, "-t", "nat"])
        .lines()
        .filter(|l| l.starts_with("-A "))
        .map(|l| l.replace(" -m tcp", "").replace(" -m udp", ""))
        .collect()
}

fn assert_planned_rules_once(t: &Topology) {
    let rules = nat_rules(t, "iptables-nft-save");
    for want in PLANNED_RULES {
        let n = rules.iter().filter(|r| r.as_str() == want).count();
        assert_eq!(
            n, 1,
            "rule {want:?} present {n} times in nat table:\n{rules:#?}"
        );
    }
}

/// The main table has one default route, via the gateway on macvlan0, from SOURCE.
fn assert_default_via_gateway(t: &Topology) {
    let routes = t.sh("router", &["ip", "route", "show", "default"]);
    let lines: Vec<&str> = routes.lines().collect();
    assert!(
        lines.len() == 1
            && lines[0].starts_with("default via 198.51.100.1 dev macvlan0 ")
            && lines[0].contains(" src 198.51.100.99"),
        "main table must have one default route via 198.51.100.1 dev macvlan0 src 198.51.100.99, got:\n{routes}"
    );
}

fn wait_until<F: FnMut() -> bool>(limit: Duration, mut f: F) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tcp_port_mapping_snats_to_egress_source() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _srv = t.tcp_server(80);
    t.router_ok(&[], &good_env("init"));

    assert_eq!(
        macvlan_inets(&t),
        vec!["198.51.100.99/32"],
        "source without prefix is /32"
    );
    assert_default_via_gateway(&t);
    assert_eq!(
        t.sh("router", &["sysctl", "-n", "net.ipv4.ip_forward"])
            .trim(),
        "1"
    );
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.5:80",
        "client -> 192.0.2.70:80",
    );
}

#[test]
fn tcp_port_to_other_port() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _srv = t.tcp_server(80);
    t.router_ok(&[], &good_env("init"));
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:8080"),
        "198.51.100.99 203.0.113.6:80",
        "client -> 192.0.2.70:8080",
    );
}

#[test]
fn udp_port_mapping() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _srv = t.udp_server(5353);
    t.router_ok(&[], &good_env("init"));
    expect_reply(
        &t,
        t.udp_from_client("192.0.2.70:53"),
        "198.51.100.99 203.0.113.5:5353",
        "client -> 192.0.2.70:53/udp",
    );
}

#[test]
fn fallback_takes_every_other_port() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _tcp = t.tcp_server(9999);
    let _udp = t.udp_server(9999);
    t.router_ok(&[], &good_env("init"));
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:9999"),
        "198.51.100.99 203.0.113.7:9999",
        "client -> 192.0.2.70:9999/tcp (fallback)",
    );
    expect_reply(
        &t,
        t.udp_from_client("192.0.2.70:9999"),
        "198.51.100.99 203.0.113.7:9999",
        "client -> 192.0.2.70:9999/udp (fallback)",
    );
}

#[test]
fn init_twice_is_idempotent() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _srv = t.tcp_server(80);
    t.router_ok(&[], &good_env("init"));
    assert_planned_rules_once(&t);
    let first = t.snapshot("router");

    let second = t.router(&[], &good_env("init"));
    assert!(
        second.status.success(),
        "second init (restarted pod) failed:\n{}",
        output_text(&second)
    );
    assert_planned_rules_once(&t);
    let dnat = nat_rules(&t, "iptables-save")
        .iter()
        .filter(|r| r.contains("-j DNAT"))
        .count();
    assert_eq!(dnat, 4, "iptables-save -t nat: DNAT rules after two runs");
    assert_eq!(
        macvlan_inets(&t),
        vec!["198.51.100.99/32"],
        "macvlan0 has the source address exactly once"
    );
    assert_same(&first, &t.snapshot("router"), "second init");
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.5:80",
        "traffic after second init",
    );
}

#[test]
fn source_with_prefix() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _srv = t.tcp_server(80);
    let env = with_var(good_env("init"), "EGRESS_SOURCE", Some("198.51.100.99/24"));
    t.router_ok(&[], &env);
    assert_eq!(macvlan_inets(&t), vec!["198.51.100.99/24"]);
    assert_planned_rules_once(&t); // SNAT --to-source without the prefix
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.5:80",
        "client -> 192.0.2.70:80 with EGRESS_SOURCE=198.51.100.99/24",
    );
}

#[test]
fn gratuitous_arp_reaches_gateway_before_traffic() {
    let _x = xtables_shared();
    let t = Topology::new();
    t.sh(
        "gw",
        &[
            "ip",
            "neigh",
            "replace",
            SOURCE,
            "lladdr",
            "02:00:00:00:00:01",
            "dev",
            "lan0",
            "nud",
            "stale",
        ],
    );
    let dump = t.arp_capture();
    // the kernel ignores a neighbour update within 1 s (locktime) of the last change
    thread::sleep(Duration::from_millis(1100));

    let started = Instant::now();
    let out = t.router(&[], &good_env("init"));
    let exited = Instant::now();
    assert!(out.status.success(), "init failed:\n{}", output_text(&out));
    assert!(
        exited - started < Duration::from_secs(1),
        "init took {:?}: the delayed ARP must not delay exit",
        exited - started
    );

    let mac = macvlan_mac(&t);
    let mut neigh = String::new();
    let updated = wait_until(Duration::from_secs(1), || {
        neigh = t.sh("gw", &["ip", "neigh", "show", SOURCE, "dev", "lan0"]);
        neigh.contains(&mac)
    });
    assert!(
        updated,
        "gateway neighbour for {SOURCE} not updated to macvlan0 {mac} without traffic: {neigh:?}\n\
         tcpdump:\n{}",
        dump.stdout()
    );

    let (t_reply, reply) = dump
        .wait_line(
            |l| l.contains("Reply 198.51.100.99 is-at"),
            Duration::from_secs(2),
        )
        .unwrap_or_else(|| panic!("no gratuitous ARP reply seen:\n{}", dump.stdout()));
    assert!(reply.contains(&mac), "ARP reply carries {mac}: {reply}");
    let (t_req, req) = dump
        .wait_line(
            |l| l.contains("who-has 198.51.100.99") && l.contains("tell 198.51.100.99"),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| panic!("no unsolicited ARP request seen:\n{}", dump.stdout()));
    let gap = t_req - t_reply;
    assert!(
        gap >= Duration::from_millis(1500) && gap <= Duration::from_millis(3500),
        "ARP request came {gap:?} after the reply (want ~2 s):\n{reply}\n{req}"
    );
    assert!(
        exited < t_req,
        "init had not exited before the delayed ARP request"
    );
    thread::sleep(Duration::from_millis(500));
    let lines = dump.stdout();
    let replies = lines
        .lines()
        .filter(|l| l.contains("Reply 198.51.100.99 is-at"))
        .count();
    let requests = lines
        .lines()
        .filter(|l| l.contains("who-has 198.51.100.99") && l.contains("tell 198.51.100.99"))
        .count();
    assert_eq!(
        (replies, requests),
        (1, 1),
        "want one ARP reply then one ARP request:\n{lines}"
    );
}

#[test]
fn replies_to_local_listener_leave_via_eth0_http_proxy_mode() {
    let _x = xtables_shared();
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));

    for save in ["iptables-nft-save", "iptables-legacy-save"] {
        let nat = nat_rules(&t, save);
        assert!(
            !nat.iter().any(|r| r.contains("DNAT") || r.contains("SNAT")),
            "http-proxy mode must not add NAT rules ({save}):\n{nat:#?}"
        );
    }
    assert_default_via_gateway(&t);
    assert_eq!(macvlan_inets(&t), vec!["198.51.100.99/32"]);

    // the proxy listens in the router pod; the client is in another subnet and the
    // router has no route to it except through the reply routing
    let _proxy = Server::tcp_in(&t, "router", 8080);
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:8080"),
        "192.0.2.10 192.0.2.70:8080",
        "client -> local listener 192.0.2.70:8080",
    );
}

#[test]
fn dns_proxy_mode_sets_up_network_without_nat() {
    let _x = xtables_shared();
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("dns-proxy"));
    let nat = nat_rules(&t, "iptables-nft-save");
    assert!(
        !nat.iter().any(|r| r.contains("DNAT") || r.contains("SNAT")),
        "dns-proxy mode must not add NAT rules:\n{nat:#?}"
    );
    assert_default_via_gateway(&t);
    let _proxy = Server::tcp_in(&t, "router", 5000);
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:5000"),
        "192.0.2.10 192.0.2.70:5000",
        "client -> local listener 192.0.2.70:5000",
    );
}

#[test]
fn legacy_mode_stays_up_and_exits_on_sigterm() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _srv = t.tcp_server(80);
    let mut r = t.spawn_router(&[], &good_env("legacy"));
    let ready = wait_until(Duration::from_secs(10), || {
        nat_rules(&t, "iptables-nft-save")
            .iter()
            .any(|l| l.contains("SNAT"))
            && macvlan_inets(&t).contains(&"198.51.100.99/32".to_string())
    });
    assert!(
        ready,
        "legacy mode did not set up within 10 s\nstatus {:?}\n{}",
        r.try_wait(),
        r.stderr()
    );
    thread::sleep(Duration::from_millis(500));
    assert!(
        r.try_wait().is_none(),
        "legacy mode exited instead of staying up:\n{}",
        r.stderr()
    );
    assert_planned_rules_once(&t);
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.5:80",
        "traffic in legacy mode",
    );

    r.signal(libc::SIGTERM);
    let st = r.wait_timeout(Duration::from_secs(3));
    let st = st.unwrap_or_else(|| panic!("legacy mode still running 3 s after SIGTERM"));
    assert!(
        st.success(),
        "legacy mode exit on SIGTERM: {st:?}\n{}",
        r.stderr()
    );
}

#[test]
fn redirect_verifies_setup_and_exits_on_sigterm() {
    let _x = xtables_shared();
    let t = Topology::new();
    t.router_ok(&[], &good_env("init"));
    let mut r = t.spawn_router(&["redirect"], &good_env("init"));
    let seen = r.wait_line(|l| l.contains("setup verified"), Duration::from_secs(5));
    assert!(
        seen.is_some() && r.stderr().contains("setup verified"),
        "redirect did not log `setup verified` on stderr\nstatus {:?}\nstdout:\n{}\nstderr:\n{}",
        r.try_wait(),
        r.stdout(),
        r.stderr()
    );
    thread::sleep(Duration::from_millis(300));
    assert!(
        r.try_wait().is_none(),
        "redirect exited instead of staying up:\n{}",
        r.stderr()
    );
    r.signal(libc::SIGTERM);
    let st = r
        .wait_timeout(Duration::from_secs(3))
        .unwrap_or_else(|| panic!("redirect still running 3 s after SIGTERM"));
    assert!(
        st.success(),
        "redirect exit on SIGTERM: {st:?}\n{}",
        r.stderr()
    );
}

#[test]
fn redirect_without_setup_fails() {
    let _x = xtables_shared();
    let t = Topology::new();
    let before = t.snapshot("router");
    let mut r = t.spawn_router(&["redirect"], &good_env("init"));
    let st = r.wait_timeout(Duration::from_secs(10));
    let st = st.unwrap_or_else(|| {
        panic!(
            "redirect without setup still running after 10 s:\n{}",
            r.stderr()
        )
    });
    let err = r.stderr();
    assert!(
        !st.success(),
        "redirect without setup must fail, got {st:?}\n{err}"
    );
    assert!(
        err.lines().any(|l| l.to_lowercase().contains("error")),
        "redirect without setup: no error line on stderr:\n{err}"
    );
    assert_same(&before, &t.snapshot("router"), "redirect without setup");
}

#[test]
fn logs_go_to_stderr_and_debug_is_verbose() {
    let _x = xtables_shared();
    let quiet = {
        let t = Topology::new();
        t.router_ok(&[], &good_env("init"))
    };
    let verbose = {
        let t = Topology::new();
        let env = with_var(good_env("init"), "EGRESS_ROUTER_DEBUG", Some("1"));
        t.router_ok(&[], &env)
    };
    for out in [&quiet, &verbose] {
        assert!(
            out.stdout.is_empty(),
            "init writes logs to stderr only, stdout was:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let count = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).lines().count();
    assert!(
        count(&verbose) > count(&quiet),
        "EGRESS_ROUTER_DEBUG=1 must log more\nquiet:\n{}\nverbose:\n{}",
        String::from_utf8_lossy(&quiet.stderr),
        String::from_utf8_lossy(&verbose.stderr)
    );
}

#[test]
fn unit_test_mode_touches_nothing() {
    let _x = xtables_shared();
    let t = Topology::new();
    let before = t.snapshot("router");
    let out = t.router_ok(&[], &good_env("unit-test"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        PLANNED_RULES,
        "unit-test output"
    );
    assert_same(&before, &t.snapshot("router"), "unit-test mode");
}

/// (case, env, variable to name, accepted quotes of the offending value)
type BadCase<'a> = (&'a str, Vec<(String, String)>, &'a str, Vec<&'a str>);

#[test]
fn bad_config_changes_nothing() {
    let _x = xtables_shared();
    let t = Topology::new();
    let before = t.snapshot("router");
    let good = good_env("init");
    let dest = |d: &str| with_var(good.clone(), "EGRESS_DESTINATION", Some(d));
    let cases: Vec<BadCase> = vec![
        (
            "missing EGRESS_SOURCE",
            with_var(good.clone(), "EGRESS_SOURCE", None),
            "EGRESS_SOURCE",
            vec![""],
        ),
        (
            "bad gateway",
            with_var(good.clone(), "EGRESS_GATEWAY", Some("198.51.100.300")),
            "EGRESS_GATEWAY",
            vec!["198.51.100.300"],
        ),
        (
            "sctp",
            dest("80 tcp 203.0.113.5\n80 sctp 203.0.113.5\n203.0.113.7"),
            "EGRESS_DESTINATION",
            vec!["80 sctp 203.0.113.5"],
        ),
        (
            "fallback not last",
            dest("203.0.113.7\n80 tcp 203.0.113.5"),
            "EGRESS_DESTINATION",
            vec!["203.0.113.7", "80 tcp 203.0.113.5"],
        ),
        (
            "duplicate port",
            dest("80 tcp 203.0.113.5\n80 tcp 203.0.113.6\n203.0.113.7"),
            "EGRESS_DESTINATION",
            vec!["80 tcp 203.0.113.6"],
        ),
        (
            "port 0",
            dest("0 tcp 203.0.113.5\n203.0.113.7"),
            "EGRESS_DESTINATION",
            vec!["0 tcp 203.0.113.5"],
        ),
        (
            "port 65536",
            dest("65536 tcp 203.0.113.5\n203.0.113.7"),
            "EGRESS_DESTINATION",
            vec!["65536 tcp 203.0.113.5"],
        ),
        (
            "bogus mode",
            with_var(good.clone(), "EGRESS_ROUTER_MODE", Some("bogus")),
            "EGRESS_ROUTER_MODE",
            vec!["bogus"],
        ),
    ];
    let mut failures = Vec::new();
    for (case, env, var, values) in cases {
        let out = t.router(&[], &env);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let named = err.lines().any(|l| {
            l.trim_start().starts_with("error:")
                && l.contains(var)
                && values.iter().any(|v| l.contains(v))
        });
        if out.status.success() || !named {
            failures.push(format!(
                "{case}: want non-zero exit and a line `error: ...` naming {var} and quoting \
                 one of {values:?}\n{}",
                output_text(&out)
            ));
        }
        let after = t.snapshot("router");
        if after != before {
            failures.push(format!(
                "{case}: namespace changed\n{}",
                before.diff(&after)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Holds an exclusive flock on /run/xtables.lock until dropped.
struct XtablesLock(File);

impl XtablesLock {
    fn take() -> XtablesLock {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/xtables.lock")
            .expect("open /run/xtables.lock");
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return XtablesLock(f);
            }
            assert!(
                Instant::now() < end,
                "could not take /run/xtables.lock within 10 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for XtablesLock {
    fn drop(&mut self) {
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

#[test]
fn a_held_xtables_lock_fails_init_within_its_wait_and_changes_nothing() {
    let _x = xtables_exclusive();
    let t = Topology::new();
    let before = t.snapshot("router");
    let env = with_var(
        good_env("init"),
        "EGRESS_ROUTER_IPTABLES_BACKEND",
        Some("legacy"),
    );
    let lock = XtablesLock::take();
    let started = Instant::now();
    let out = t.router(&[], &env);
    let took = started.elapsed();
    drop(lock);
    assert!(
        !out.status.success(),
        "init must fail when the xtables lock stays taken ({took:?})\n{}",
        output_text(&out)
    );
    assert!(
        took < Duration::from_secs(10),
        "init waited {took:?} for the lock (at most 5 s)"
    );
    // the guard is the first step: nothing else was changed before it failed
    assert_same(
        &before.without_empty_tables(),
        &t.snapshot("router").without_empty_tables(),
        "init failed on the lock",
    );

    // the failure was the lock: with the lock free the same run succeeds
    let out = t.router(&[], &env);
    assert!(
        out.status.success(),
        "init with legacy backend and a free lock failed:\n{}",
        output_text(&out)
    );
    let rules = nat_rules(&t, "iptables-legacy-save");
    for want in PLANNED_RULES {
        assert!(
            rules.iter().any(|r| r == want),
            "legacy backend: rule {want:?} missing:\n{rules:#?}"
        );
    }
}

/// A directory of stand-ins for `iptables-legacy-restore` and `iptables-legacy` that
/// run the real tools but report every rule missing to a check (`-C`): a setup whose
/// changes all went in, but whose end check fails. Removed on drop.
struct ChecksFail(std::path::PathBuf);

impl ChecksFail {
    fn new(prefix: &str) -> ChecksFail {
        let dir = std::env::temp_dir().join(format!("{prefix}-checks-fail"));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, body: &str| {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
            std::fs::set_permissions(&path, mode).unwrap();
        };
        write(
            "iptables-legacy-restore",
            "input=$(cat)\n\
             printf '%s\\n' \"$input\" | grep -q '^-C ' && exit 1\n\
             printf '%s\\n' \"$input\" | exec /usr/sbin/iptables-legacy-restore \"$@\"\n",
        );
        write(
            "iptables-legacy",
            "for a in \"$@\"; do [ \"$a\" = -C ] && exit 1; done\n\
             exec /usr/sbin/iptables-legacy \"$@\"\n",
        );
        ChecksFail(dir)
    }

    /// `PATH` with the stand-ins first.
    fn path(&self) -> String {
        format!("{}:{PATH}", self.0.display())
    }
}

impl Drop for ChecksFail {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_setup_whose_end_check_fails_is_rolled_back_whole() {
    let _x = xtables_exclusive();
    let t = Topology::new();
    let before = t.snapshot("router");
    let tools = ChecksFail::new(&t.prefix);
    let mut env = with_var(
        good_env("init"),
        "EGRESS_ROUTER_IPTABLES_BACKEND",
        Some("legacy"),
    );
    env = with_var(env, "PATH", Some(&tools.path()));
    env = with_var(env, "EGRESS_ROUTER_DEBUG", Some("1"));
    let out = t.router(&[], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", output_text(&out));
    for needle in [
        "setup applied but not in place",
        "filter rule missing",
        "changes rolled back",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    // the changes that were rolled back were real
    for applied in [
        "add address 198.51.100.99/32",
        "add route default via 198.51.100.1",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("applying") && l.contains(applied)),
            "{applied:?} was not applied:\n{stderr}"
        );
    }
    assert_same(
        &before.without_empty_tables(),
        &t.snapshot("router").without_empty_tables(),
        "init rolled back after its end check",
    );
}

/// macvlan0 as IPAM on the interface (Multus) leaves it: an address in the gateway's
/// subnet and the link up, so the gateway is already reached through macvlan0.
fn configure_ipam(t: &Topology) {
    t.sh(
        "router",
        &["ip", "addr", "add", "198.51.100.50/24", "dev", "macvlan0"],
    );
    t.sh("router", &["ip", "link", "set", "macvlan0", "up"]);
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn init_completes_a_macvlan0_configured_by_ipam() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _srv = t.tcp_server(80);
    configure_ipam(&t);
    t.router_ok(&[], &good_env("init"));
    assert_eq!(
        sorted(macvlan_inets(&t)),
        vec!["198.51.100.50/24", "198.51.100.99/32"],
        "EGRESS_SOURCE added beside the IPAM address"
    );
    assert_default_via_gateway(&t);
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.5:80",
        "client -> 192.0.2.70:80 with an IPAM address on macvlan0",
    );
    t.router_ok(&["check"], &good_env("init"));
}

#[test]
fn proxy_mode_connections_leave_from_egress_source_beside_an_ipam_address() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _srv = t.tcp_server(80);
    configure_ipam(&t);
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    assert_default_via_gateway(&t);
    // what the HTTP and DNS proxies do: connect without binding a source address
    let got = t.with_ns("router", || tcp_exchange("203.0.113.5:80".parse().unwrap()));
    expect_reply(
        &t,
        got,
        "198.51.100.99 203.0.113.5:80",
        "router namespace -> 203.0.113.5:80 in http-proxy mode",
    );
}

#[test]
fn init_gives_an_existing_default_route_the_preferred_source() {
    let _x = xtables_shared();
    let t = Topology::new();
    t.router_ok(&[], &good_env("init"));
    // a pod set up before the default route carried `src EGRESS_SOURCE`
    t.sh(
        "router",
        &[
            "ip", "route", "replace", "default", "via", GATEWAY, "dev", "macvlan0",
        ],
    );
    let out = t.router(&["check"], &good_env("init"));
    assert_error_exit(
        Some(out.status),
        &String::from_utf8_lossy(&out.stderr),
        1,
        &["default route", "src 198.51.100.99"],
        "check with a default route lacking the preferred source",
    );
    t.router_ok(&[], &good_env("init"));
    assert_default_via_gateway(&t);
    t.router_ok(&["check"], &good_env("init"));
}

#[test]
fn init_without_an_eth0_default_route_fails_and_changes_nothing() {
    let _x = xtables_shared();
    let t = Topology::new();
    t.sh("router", &["ip", "route", "del", "default"]);
    let before = t.snapshot("router");
    let out = t.router(&[], &good_env("init"));
    assert_error_exit(
        Some(out.status),
        &String::from_utf8_lossy(&out.stderr),
        1,
        &["eth0 has no default route", "reply table 4552"],
        "init without an eth0 default route",
    );
    assert_same(
        &before,
        &t.snapshot("router"),
        "init without a default route",
    );
}

/// (what breaks, command that breaks it, command that restores it, name in the error)
type Breakage<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a str);

const BREAKAGES: [Breakage; 3] = [
    (
        "ip rule deleted",
        &[
            "ip",
            "rule",
            "del",
            "fwmark",
            "0x400000/0x400000",
            "lookup",
            "4552",
        ],
        RESTORE_REPLY_RULE,
        "ip rule `fwmark 0x400000/0x400000 lookup 4552` is missing",
    ),
    (
        "reply table flushed",
        &["ip", "route", "flush", "table", "4552"],
        RESTORE_REPLY_ROUTE,
        "reply table 4552 has no route via eth0",
    ),
    (
        "rp_filter strict",
        &["sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=1"],
        &["sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=2"],
        "rp_filter of eth0 is strict",
    ),
];

#[test]
fn check_names_every_missing_piece_and_passes_once_restored() {
    let _x = xtables_shared();
    let t = Topology::new();
    let env = good_env("init");
    t.router_ok(&[], &env);
    t.router_ok(&["check"], &env);
    for (what, break_it, restore, name) in BREAKAGES {
        t.sh("router", break_it);
        let out = t.router(&["check"], &env);
        assert_error_exit(
            Some(out.status),
            &String::from_utf8_lossy(&out.stderr),
            1,
            &[name],
            &format!("check after {what}"),
        );
        t.sh("router", restore);
        t.router_ok(&["check"], &env);
    }
    for (_, break_it, _, _) in BREAKAGES {
        t.sh("router", break_it);
    }
    let out = t.router(&["check"], &env);
    let names: Vec<&str> = BREAKAGES.iter().map(|b| b.3).collect();
    assert_error_exit(
        Some(out.status),
        &String::from_utf8_lossy(&out.stderr),
        1,
        &names,
        "check after every breakage at once",
    );
    // redirect verifies the same way, at start
    let mut r = t.spawn_router(&["redirect"], &env);
    let st = r.wait_timeout(Duration::from_secs(10));
    assert_error_exit(st, &r.stderr(), 1, &names, "redirect with a broken setup");
}

/// How many times each jump into our mangle chains is in place.
fn jump_counts(t: &Topology) -> (usize, usize) {
    let mangle = t.sh("router", &["iptables-nft-save", "-t", "mangle"]);
    let count = |want: &str| mangle.lines().filter(|l| l.trim_end() == want).count();
    (
        count("-A PREROUTING -j EGRESS-ROUTER-PREROUTING"),
        count("-A OUTPUT -j EGRESS-ROUTER-OUTPUT"),
    )
}

#[test]
fn concurrent_inits_run_one_at_a_time_and_leave_one_copy_of_everything() {
    let _x = xtables_shared();
    let t = Topology::new();
    let _srv = t.tcp_server(80);
    let mut runs: Vec<ChildGuard> = (0..3)
        .map(|_| t.spawn_router(&[], &good_env("init")))
        .collect();
    for (i, r) in runs.iter_mut().enumerate() {
        let st = r.wait_timeout(Duration::from_secs(20));
        assert!(
            st.is_some_and(|s| s.success()),
            "concurrent init {i}: {st:?}\n{}",
            r.stderr()
        );
    }
    assert_eq!(jump_counts(&t), (1, 1), "jumps into our mangle chains");
    assert_planned_rules_once(&t);
    assert_eq!(macvlan_inets(&t), vec!["198.51.100.99/32"]);
    assert_default_via_gateway(&t);
    t.router_ok(&["check"], &good_env("init"));
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.5:80",
        "traffic after concurrent inits",
    );
}

#[test]
fn init_removes_duplicate_jumps_left_by_an_earlier_run() {
    let _x = xtables_shared();
    let t = Topology::new();
    for (chain, ours) in [
        ("PREROUTING", "EGRESS-ROUTER-PREROUTING"),
        ("OUTPUT", "EGRESS-ROUTER-OUTPUT"),
    ] {
        t.sh("router", &["iptables-nft", "-t", "mangle", "-N", ours]);
        for _ in 0..2 {
            t.sh(
                "router",
                &["iptables-nft", "-t", "mangle", "-A", chain, "-j", ours],
            );
        }
    }
    assert_eq!(jump_counts(&t), (2, 2), "duplicates set up");
    t.router_ok(&[], &good_env("init"));
    assert_eq!(jump_counts(&t), (1, 1), "jumps after init");
    t.router_ok(&[], &good_env("init"));
    assert_eq!(jump_counts(&t), (1, 1), "jumps after a second init");
}

#[test]
fn init_waits_for_the_setup_lock_of_its_namespace_then_fails_clearly() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let _x = xtables_shared();
    let t = Topology::new();
    let before = t.snapshot("router");
    // another setup in progress in the router namespace holds the lock
    let holder = t.with_ns("router", || {
        let name = SocketAddr::from_abstract_name(b"egress-router-setup").unwrap();
        UnixDatagram::bind_addr(&name).expect("bind @egress-router-setup in the router namespace")
    });
    let started = Instant::now();
    let out = t.router(&[], &good_env("init"));
    let took = started.elapsed();
    assert_error_exit(
        Some(out.status),
        &String::from_utf8_lossy(&out.stderr),
        1,
        &["another setup", "@egress-router-setup"],
        "init while the setup lock is held",
    );
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(15),
        "init gave up after {took:?} (want about 10 s)"
    );
    assert_same(
        &before,
        &t.snapshot("router"),
        "init that never got the lock",
    );
    drop(holder);
    t.router_ok(&[], &good_env("init"));
}
