//! High availability with the HTTP proxy and its `egress-router ha` sidecar, and what a
//! backup sends on the egress LAN (SPEC section 12; root).

mod common;

use common::ha::{HA_SOURCE, HaLan, VRID, endpoint_at, leaves_from_source, server, start};
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

/// The sidecar's and the proxy's shared environment on router `i` (priority `priority`).
fn pod_env(priority: &str) -> Vec<(String, String)> {
    envs(&[
        ("EGRESS_SOURCE", HA_SOURCE),
        ("EGRESS_GATEWAY", "198.51.100.1"),
        ("EGRESS_HA_VRID", VRID),
        ("EGRESS_HA_PRIORITY", priority),
    ])
}

/// Init (http-proxy mode), the sidecar and the proxy on router `i`.
fn proxy_pod(lan: &HaLan, i: usize, priority: &str) -> (ChildGuard, ChildGuard) {
    let env = pod_env(priority);
    let init = lan.binary(i, &["router", "--mode", "http-proxy"], &env);
    assert!(init.status.success(), "init r{i}:\n{}", output_text(&init));
    let mut sidecar = lan.spawn_binary(i, &["ha"], &env);
    sidecar.wait_ready("sidecar", "setup verified", 1, Duration::from_secs(10));
    let mut proxy_env = env.clone();
    proxy_env.extend(envs(&[("EGRESS_HTTP_PROXY_DESTINATION", "203.0.113.0/24")]));
    let mut proxy = lan.spawn_binary(i, &["http-proxy"], &proxy_env);
    proxy.wait_ready("proxy", "listening", 1, Duration::from_secs(10));
    (sidecar, proxy)
}

/// `CONNECT 203.0.113.5:80` through router `i`'s proxy from the client: the status
/// and what the server said in the tunnel.
fn tunnel(lan: &HaLan, i: usize) -> (u16, String) {
    let addr: std::net::SocketAddr = format!("{}:8080", lan.router_ip(i)).parse().unwrap();
    let client = lan.ns("client");
    std::thread::spawn(move || {
        enter_netns(&client);
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"CONNECT 203.0.113.5:80 HTTP/1.1\r\nHost: 203.0.113.5:80\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let inside = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.trim().to_string());
        (status, inside.unwrap_or_default())
    })
    .join()
    .unwrap()
}

#[test]
fn a_proxy_on_a_backup_is_on_standby_and_refuses_then_serves_once_its_sidecar_takes_over() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let _server = server(&lan, 80);
    let (sidecar0, _proxy0) = proxy_pod(&lan, 0, "200");
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    let (_sidecar1, mut proxy1) = proxy_pod(&lan, 1, "100");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lan.holders(HA_SOURCE), [0]);

    let (status, inside) = tunnel(&lan, 0);
    assert_eq!(status, 200, "{inside}");
    assert!(inside.starts_with(&format!("{HA_SOURCE} ")), "{inside}");
    assert_eq!(
        endpoint_at(&lan, 0, 9090, "/readyz").0,
        200,
        "the master's proxy"
    );
    assert_eq!(
        endpoint_at(&lan, 0, 9091, "/readyz").0,
        200,
        "the master's sidecar"
    );
    for port in [9090, 9091] {
        let (status, body) = endpoint_at(&lan, 1, port, "/readyz");
        assert_eq!(
            (status, body.trim()),
            (503, "not ready:\nstandby"),
            "backup, port {port}"
        );
    }
    let (status, _) = tunnel(&lan, 1);
    assert_eq!(
        status, 502,
        "a backup's proxy refuses rather than dial from another address"
    );

    sidecar0.signal(libc::SIGKILL);
    eventually(Duration::from_secs(2), "r1's sidecar takes over", || {
        lan.holds(1, HA_SOURCE)
            .then_some(())
            .ok_or("not yet".into())
    });
    let (status, inside) = eventually(
        Duration::from_secs(3),
        "r1's proxy tunnels",
        || match tunnel(&lan, 1) {
            (200, inside) => Ok((200, inside)),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(
        status == 200 && inside.starts_with(&format!("{HA_SOURCE} ")),
        "{inside}"
    );
    eventually(
        Duration::from_secs(8),
        "r1's proxy ready",
        || match endpoint_at(&lan, 1, 9090, "/readyz") {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    proxy1.stop();
}

#[test]
fn a_backup_sends_nothing_from_its_own_address_on_the_egress_lan() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let _server = server(&lan, 80);
    // Adverts every 500 ms: a backup starved of CPU for a few hundred milliseconds (a
    // busy test machine) must not take over, which would be right, but not this test.
    let slow = [("EGRESS_HA_ADVERT_INTERVAL", "500ms")];
    let r0 = start(&lan, 0, "200", &slow);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(5));
    let capture = lan.spawn(
        "lan",
        &[
            "timeout",
            "30",
            "tcpdump",
            "-l",
            "-n",
            "-i",
            "br0",
            "ip host 198.51.100.12 or ip host 198.51.100.99",
        ],
        &[],
    );
    capture
        .wait_line(|l| l.contains("listening on"), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("tcpdump not listening:\n{}", capture.stderr()));
    let mut r1 = start(&lan, 1, "100", &slow);
    for _ in 0..5 {
        assert!(lan.through(1, 80, Duration::from_millis(200)).is_err());
    }
    // The guard dropped them: a backup forwards nothing by the cluster side either.
    let counted = lan.sh(
        "r1",
        &["iptables", "-L", "EGRESS-ROUTER-FORWARD", "-v", "-n", "-x"],
    );
    let dropped: u64 = counted
        .lines()
        .find(|l| l.contains("!macvlan0"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no standby rule:\n{counted}"));
    assert!(dropped >= 5, "{counted}");
    leaves_from_source(&lan, 0);
    std::thread::sleep(Duration::from_millis(500));
    let seen = capture.stdout();
    assert!(
        seen.contains("198.51.100.99."),
        "the capture sees the master's traffic:\n{seen}"
    );
    let from_backup: Vec<&str> = seen
        .lines()
        .filter(|l| l.contains(" 198.51.100.12"))
        .collect();
    assert!(
        from_backup.is_empty(),
        "the backup sent:\n{}",
        from_backup.join("\n")
    );
    // As master it sends VRRP from its own address, and traffic from the source only.
    r0.signal(libc::SIGTERM);
    lan.wait_holder(1, HA_SOURCE, Duration::from_secs(2));
    leaves_from_source(&lan, 1);
    std::thread::sleep(Duration::from_millis(300));
    let seen = capture.stdout();
    let own: Vec<&str> = seen
        .lines()
        .filter(|l| l.contains("IP 198.51.100.12 >"))
        .collect();
    assert!(!own.is_empty(), "r1 advertises:\n{seen}");
    assert!(own.iter().all(|l| l.contains("VRRP")), "{}", own.join("\n"));
    r1.stop();
}
