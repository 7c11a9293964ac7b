//! High availability with others (SPEC section 12): keepalived as the peer both ways,
//! unicast peers on a network that drops multicast, and IPv6 (root).

mod common;

use common::ha::{
    HA_SOURCE, HA_SOURCE6, HaLan, endpoint, env, keepalived, leaves_from_source, server, start,
};
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
    let init = lan.binary(
        1,
        &[],
        &with_var(env("50", &[]), "EGRESS_ROUTER_MODE", Some("init")),
    );
    assert!(init.status.success(), "{}", output_text(&init));
    let mut peer = keepalived(&lan, 1, 50, "", &dir);
    peer.wait_ready(
        "keepalived",
        "Entering BACKUP STATE",
        1,
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        lan.holders(HA_SOURCE),
        [0],
        "keepalived follows egress-router's advertisements"
    );

    r0.signal(libc::SIGTERM);
    let stopped = Instant::now();
    let took = lan.wait_holder(1, HA_SOURCE, Duration::from_secs(2));
    eprintln!(
        "keepalived took over {:?} after egress-router's priority 0",
        stopped.elapsed()
    );
    assert!(
        took < Duration::from_millis(300),
        "priority 0 hands over at once: {took:?}"
    );
    leaves_from_source(&lan, 1);
    assert_eq!(
        r0.wait_timeout(Duration::from_secs(5))
            .and_then(|s| s.code()),
        Some(0)
    );

    let mut r0 = lan.spawn_binary(0, &["redirect"], &env("100", &[]));
    r0.wait_ready(
        "redirect r0 again",
        "setup verified",
        1,
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        lan.holders(HA_SOURCE),
        [1],
        "egress-router follows keepalived's advertisements"
    );
    r0.wait_line(
        |l| l.contains("initialize -> backup (startup)"),
        Duration::from_secs(2),
    )
    .unwrap_or_else(|| panic!("no startup line:\n{}", r0.stderr()));

    peer.signal(libc::SIGTERM);
    let stopped = Instant::now();
    let took = lan.wait_holder(0, HA_SOURCE, Duration::from_secs(2));
    eprintln!(
        "egress-router took over {:?} after keepalived's priority 0",
        stopped.elapsed()
    );
    assert!(took < Duration::from_millis(300), "{took:?}");
    r0.wait_line(
        |l| l.contains("backup -> master (handover)"),
        Duration::from_secs(2),
    )
    .unwrap_or_else(|| panic!("no handover line:\n{}", r0.stderr()));
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
    let init = lan.binary(
        0,
        &[],
        &with_var(env("100", &[]), "EGRESS_ROUTER_MODE", Some("init")),
    );
    assert!(init.status.success(), "{}", output_text(&init));
    let mut peer = keepalived(&lan, 0, 100, "", &dir);
    peer.wait_ready(
        "keepalived",
        "Entering MASTER STATE",
        1,
        Duration::from_secs(10),
    );
    let mut r1 = start(&lan, 1, "100", &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lan.holders(HA_SOURCE), [0]);
    lan.drop_vrrp(false);
    eventually(Duration::from_secs(2), "two masters", || {
        match lan.holders(HA_SOURCE).len() {
            2 => Ok(()),
            n => Err(format!("{n}")),
        }
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
    assert!(
        guard.contains("-s 198.51.100.11/32") && !guard.contains("224.0.0.18"),
        "{guard}"
    );
    r0.signal(libc::SIGKILL);
    eventually(Duration::from_secs(2), "r1 takes over", || {
        lan.holds(1, HA_SOURCE)
            .then_some(())
            .ok_or("not yet".into())
    });
    leaves_from_source(&lan, 1);
    r1.stop();
}

/// One TCP exchange from router `i`'s own namespace to `addr` (the server's line).
fn from_router(lan: &HaLan, i: usize, addr: &str) -> Result<String, String> {
    let ns = lan.ns(&format!("r{i}"));
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    std::thread::spawn(move || {
        enter_netns(&ns);
        tcp_exchange(addr)
    })
    .join()
    .unwrap()
}

#[test]
fn a_dual_stack_router_runs_one_instance_a_family_and_both_fail_over() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, true);
    let _server = server(&lan, 80);
    let dual = [
        ("EGRESS_SOURCE", "198.51.100.99,2001:db8:1::99/64"),
        ("EGRESS_GATEWAY", "198.51.100.1,2001:db8:1::1"),
    ];
    let r0 = start(&lan, 0, "200", &dual);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(5));
    lan.wait_holder(0, HA_SOURCE6, Duration::from_secs(5));
    let mut r1 = start(&lan, 1, "100", &dual);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        lan.holders(HA_SOURCE6),
        [0],
        "r1 hears r0's IPv6 advertisements"
    );
    let line = eventually(Duration::from_secs(3), "IPv6 from r0", || {
        from_router(&lan, 0, "[2001:db8:2::5]:80")
    });
    assert!(line.starts_with("2001:db8:1::99 "), "{line}");
    let guard = lan.sh("r1", &["ip6tables", "-S", "EGRESS-ROUTER-INPUT"]);
    assert!(guard.contains("-d ff02::12/128"), "{guard}");
    r0.signal(libc::SIGKILL);
    eventually(Duration::from_secs(2), "r1 takes both over", || {
        (lan.holds(1, HA_SOURCE) && lan.holds(1, HA_SOURCE6))
            .then_some(())
            .ok_or("not yet".into())
    });
    let line = eventually(Duration::from_secs(3), "IPv6 from r1", || {
        from_router(&lan, 1, "[2001:db8:2::5]:80")
    });
    assert!(line.starts_with("2001:db8:1::99 "), "{line}");
    leaves_from_source(&lan, 1);
    for family in ["IPv4", "IPv6"] {
        let line = format!("VRRP {family} virtual router 51: backup -> master");
        r1.wait_line(|l| l.contains(&line), Duration::from_secs(2))
            .unwrap_or_else(|| panic!("no {line}:\n{}", r1.stderr()));
    }
    r1.stop();
}

#[test]
fn after_a_partition_heals_one_dual_stack_router_holds_both_families() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, true);
    let _server = server(&lan, 80);
    // Equal priorities, and addresses that break the tie each way: r1 has the higher
    // IPv4 address, r0 the higher link-local address. Each family alone would elect
    // another router; IPv4's election decides for both.
    for (i, link_local) in [(0, "fe80::200/64"), (1, "fe80::100/64")] {
        let r = format!("r{i}");
        lan.sh(
            &r,
            &["sysctl", "-qw", "net.ipv6.conf.macvlan0.addr_gen_mode=1"],
        );
        lan.sh(
            &r,
            &[
                "ip", "-6", "addr", "flush", "dev", "macvlan0", "scope", "link",
            ],
        );
        lan.sh(
            &r,
            &["ip", "addr", "add", link_local, "dev", "macvlan0", "nodad"],
        );
    }
    let dual = [
        ("EGRESS_SOURCE", "198.51.100.99,2001:db8:1::99/64"),
        ("EGRESS_GATEWAY", "198.51.100.1,2001:db8:1::1"),
    ];
    let r0 = start(&lan, 0, "100", &dual);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(5));
    lan.wait_holder(0, HA_SOURCE6, Duration::from_secs(5));
    let r1 = start(&lan, 1, "100", &dual);
    // A partition of both families: each router becomes master of both.
    let script = "add table bridge partition\n\
                  add chain bridge partition forward { type filter hook forward priority 0; }\n\
                  add rule bridge partition forward meta l4proto 112 drop\n";
    let out = lan.run(
        "lan",
        &["sh", "-c", &format!("printf '{script}' | nft -f -")],
        &[],
    );
    assert!(out.status.success(), "nft:\n{}", output_text(&out));
    eventually(
        Duration::from_secs(3),
        "two masters of each family",
        || match (lan.holders(HA_SOURCE).len(), lan.holders(HA_SOURCE6).len()) {
            (2, 2) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    lan.heal();
    let holder = eventually(
        Duration::from_secs(5),
        "one router holding both",
        || match (
            lan.holders(HA_SOURCE).as_slice(),
            lan.holders(HA_SOURCE6).as_slice(),
        ) {
            ([a], [b]) if a == b => Ok(*a),
            other => Err(format!("IPv4 held by {:?}, IPv6 by {:?}", other.0, other.1)),
        },
    );
    assert_eq!(
        holder, 1,
        "the IPv4 election decided: r1 has the higher IPv4 address"
    );
    assert_eq!(endpoint(&lan, 1, "/readyz").0, 200, "the holder is ready");
    let line = "VRRP IPv6 virtual router 51: master -> backup (other-family)";
    r0.wait_line(|l| l.contains(line), Duration::from_secs(2))
        .unwrap_or_else(|| panic!("no {line:?}:\n{}", r0.stderr()));
    drop((r0, r1));
}
