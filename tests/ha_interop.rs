//! High availability with others (SPEC section 12): keepalived as the peer both ways,
//! unicast peers on a network that drops multicast, and IPv6 (root).

mod common;

use common::ha::{HA_SOURCE, HaLan, env, keepalived, leaves_from_source, server, start};
use common::*;
use std::time::{Duration, Instant};

/// A directory of this test's own for keepalived's files.
fn scratch(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()))
}

#[test]
fn keepalived_and_egress_router_elect_one_master_and_hand_over_both_ways() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let _server = server(&lan, 80);
    let dir = scratch("keepalived");
    let mut r0 = start(&lan, 0, "100", &[]);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    // r1: egress-router's init (guard, NAT, reply routing), keepalived for VRRP.
    let init = lan.binary(1, &[], &with_var(env("50", &[]), "EGRESS_ROUTER_MODE", Some("init")));
    assert!(init.status.success(), "{}", output_text(&init));
    let mut peer = keepalived(&lan, 1, 50, "", &dir);
    peer.wait_ready("keepalived", "Entering BACKUP STATE", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lan.holders(HA_SOURCE), [0], "keepalived follows egress-router's advertisements");

    r0.signal(libc::SIGTERM);
    let stopped = Instant::now();
    let took = lan.wait_holder(1, HA_SOURCE, Duration::from_secs(2));
    eprintln!("keepalived took over {:?} after egress-router's priority 0", stopped.elapsed());
    assert!(took < Duration::from_millis(300), "priority 0 hands over at once: {took:?}");
    leaves_from_source(&lan, 1);
    assert_eq!(r0.wait_timeout(Duration::from_secs(5)).and_then(|s| s.code()), Some(0));

    let mut r0 = lan.spawn_binary(0, &["redirect"], &env("100", &[]));
    r0.wait_ready("redirect r0 again", "setup verified", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lan.holders(HA_SOURCE), [1], "egress-router follows keepalived's advertisements");
    assert!(r0.stderr().contains("initialize -> backup (startup)"), "{}", r0.stderr());

    peer.signal(libc::SIGTERM);
    let stopped = Instant::now();
    let took = lan.wait_holder(0, HA_SOURCE, Duration::from_secs(2));
    eprintln!("egress-router took over {:?} after keepalived's priority 0", stopped.elapsed());
    assert!(took < Duration::from_millis(300), "{took:?}");
    assert!(r0.stderr().contains("backup -> master (handover)"), "{}", r0.stderr());
    leaves_from_source(&lan, 0);
    r0.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn keepalived_and_egress_router_break_a_tie_by_address_after_a_partition() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let dir = scratch("keepalived-tie");
    // keepalived on r0 (198.51.100.11), egress-router on r1 (198.51.100.12): equal
    // priorities, the higher address wins once both are masters.
    let init = lan.binary(0, &[], &with_var(env("100", &[]), "EGRESS_ROUTER_MODE", Some("init")));
    assert!(init.status.success(), "{}", output_text(&init));
    let mut peer = keepalived(&lan, 0, 100, "", &dir);
    peer.wait_ready("keepalived", "Entering MASTER STATE", 1, Duration::from_secs(10));
    let mut r1 = start(&lan, 1, "100", &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lan.holders(HA_SOURCE), [0]);
    lan.drop_vrrp(false);
    eventually(Duration::from_secs(2), "two masters", || match lan.holders(HA_SOURCE).len() {
        2 => Ok(()),
        n => Err(format!("{n}")),
    });
    lan.heal();
    let took = lan.wait_holder(1, HA_SOURCE, Duration::from_secs(2));
    eprintln!("keepalived yielded to the higher address {took:?} after the partition healed");
    peer.stop();
    r1.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unicast_peers_work_where_multicast_is_dropped() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let _server = server(&lan, 80);
    lan.drop_vrrp(true);
    // One list for every pod, its own address included (skipped).
    let peers = [("EGRESS_HA_PEERS", "198.51.100.11,198.51.100.12")];
    let r0 = start(&lan, 0, "200", &peers);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    let mut r1 = start(&lan, 1, "100", &peers);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lan.holders(HA_SOURCE), [0], "r1 hears r0 by unicast");
    let guard = lan.sh("r1", &["iptables", "-S", "EGRESS-ROUTER-INPUT"]);
    assert!(guard.contains("-s 198.51.100.11/32") && !guard.contains("224.0.0.18"), "{guard}");
    r0.signal(libc::SIGKILL);
    eventually(Duration::from_secs(2), "r1 takes over", || {
        lan.holds(1, HA_SOURCE).then_some(()).ok_or("not yet".into())
    });
    leaves_from_source(&lan, 1);
    r1.stop();
}
