//! High availability (SPEC section 12), for real: router pods on one L2 segment with
//! the gateway run VRRP; one holds `EGRESS_SOURCE`, the others take it over when it is
//! killed, stopped or cut off, and hand it back as the RFC says (root).

mod common;

use common::ha::{HA_SOURCE, HaLan, VRID, server};
use common::*;
use std::time::{Duration, Instant};

/// The redirect router's environment with high availability, priority `priority`.
fn env(priority: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("EGRESS_SOURCE", HA_SOURCE),
        ("EGRESS_GATEWAY", "198.51.100.1"),
        ("EGRESS_DESTINATION", "80 tcp 203.0.113.5"),
        ("EGRESS_HA_VRID", VRID),
        ("EGRESS_HA_PRIORITY", priority),
    ];
    pairs.extend_from_slice(extra);
    envs(&pairs)
}

/// Runs init on router `i` (it must succeed) and starts its `redirect` container.
fn start(lan: &HaLan, i: usize, priority: &str, extra: &[(&str, &str)]) -> ChildGuard {
    let env = env(priority, extra);
    let init = lan.binary(i, &[], &with_var(env.clone(), "EGRESS_ROUTER_MODE", Some("init")));
    assert!(init.status.success(), "init r{i}:\n{}", output_text(&init));
    assert!(!lan.holds(i, HA_SOURCE), "init with HA adds no source");
    let mut child = lan.spawn_binary(i, &["redirect"], &env);
    child.wait_ready(
        &format!("redirect r{i}"),
        "setup verified",
        1,
        Duration::from_secs(10),
    );
    child
}

/// `GET path` on router `i`'s operations endpoint, from the client: (status, body).
fn endpoint(lan: &HaLan, i: usize, path: &str) -> (u16, String) {
    let addr: std::net::SocketAddr = format!("{}:9090", lan.router_ip(i)).parse().unwrap();
    let client = lan.ns("client");
    let path = path.to_string();
    std::thread::spawn(move || {
        enter_netns(&client);
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    })
    .join()
    .unwrap()
}

/// The client's connection through router `i` reaches the server from the source.
fn leaves_from_source(lan: &HaLan, i: usize) {
    let line = eventually(Duration::from_secs(3), "a connection through the master", || {
        lan.through(i, 80, Duration::from_millis(500))
    });
    assert!(line.starts_with(&format!("{HA_SOURCE} ")), "r{i}: {line}");
}

#[test]
fn a_killed_master_is_replaced_and_restarts_as_backup_without_the_source() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let _server = server(&lan, 80);
    let r0 = start(&lan, 0, "200", &[]);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    let mut r1 = start(&lan, 1, "100", &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lan.holders(HA_SOURCE), [0], "the higher priority stays master");
    leaves_from_source(&lan, 0);
    assert!(
        lan.through(1, 80, Duration::from_millis(300)).is_err(),
        "a backup forwards nothing"
    );
    let (status, body) = endpoint(&lan, 1, "/readyz");
    assert_eq!((status, body.trim()), (503, "not ready:\nstandby"), "backup");
    assert_eq!(endpoint(&lan, 0, "/readyz").0, 200, "master");
    let metrics = endpoint(&lan, 0, "/metrics").1;
    for line in [
        "egress_router_ha_state{vrid=\"51\",family=\"ipv4\",state=\"master\"} 1",
        "egress_router_ha_transitions_total{to=\"master\",reason=\"master-down\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    assert!(metrics.contains("egress_router_ha_advertisements_sent_total{family=\"ipv4\"}"), "{metrics}");

    r0.signal(libc::SIGKILL);
    let killed = Instant::now();
    eventually(Duration::from_secs(2), "r1 takes the source over", || {
        lan.holds(1, HA_SOURCE).then_some(()).ok_or("not yet".to_string())
    });
    eprintln!("r1 took the source over {:?} after SIGKILL", killed.elapsed());
    leaves_from_source(&lan, 1);
    assert!(lan.holds(0, HA_SOURCE), "a killed process leaves its source behind");

    // The killed master's container restarts: it removes the leftover and is a backup.
    let mut r0 = lan.spawn_binary(0, &["redirect"], &env("200", &[]));
    r0.wait_ready("redirect r0 again", "setup verified", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lan.holders(HA_SOURCE), [1], "no preemption: r1 stays master");
    let default = lan.sh("r0", &["ip", "route", "show", "default"]);
    assert!(default.contains("dev eth0") && !default.contains("macvlan0"), "{default}");
    r0.stop();
    r1.stop();
}
