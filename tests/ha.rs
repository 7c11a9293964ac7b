//! High availability (SPEC section 12), for real: router pods on one L2 segment with
//! the gateway run VRRP; one holds `EGRESS_SOURCE`, the others take it over when it is
//! killed, stopped or cut off, and hand it back as the RFC says (root).

mod common;

use common::ha::{HA_SOURCE, HaLan, endpoint, env, leaves_from_source, server, start};
use common::*;
use std::time::{Duration, Instant};

#[test]
fn a_killed_master_is_replaced_and_restarts_as_backup_without_the_source() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let _server = server(&lan, 80);
    let r0 = start(&lan, 0, "200", &[]);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    let mut r1 = start(&lan, 1, "100", &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lan.holders(HA_SOURCE),
        [0],
        "the higher priority stays master"
    );
    leaves_from_source(&lan, 0);
    assert!(
        lan.through(1, 80, Duration::from_millis(300)).is_err(),
        "a backup forwards nothing"
    );
    let (status, body) = endpoint(&lan, 1, "/readyz");
    assert_eq!(
        (status, body.trim()),
        (503, "not ready:\nstandby"),
        "backup"
    );
    assert_eq!(endpoint(&lan, 0, "/readyz").0, 200, "master");
    let metrics = endpoint(&lan, 0, "/metrics").1;
    for line in [
        "egress_router_ha_state{vrid=\"51\",family=\"ipv4\",state=\"master\"} 1",
        "egress_router_ha_transitions_total{to=\"master\",reason=\"master-down\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    assert!(
        metrics.contains("egress_router_ha_advertisements_sent_total{family=\"ipv4\"}"),
        "{metrics}"
    );

    r0.signal(libc::SIGKILL);
    let killed = Instant::now();
    eventually(Duration::from_secs(2), "r1 takes the source over", || {
        lan.holds(1, HA_SOURCE)
            .then_some(())
            .ok_or("not yet".to_string())
    });
    eprintln!(
        "r1 took the source over {:?} after SIGKILL",
        killed.elapsed()
    );
    leaves_from_source(&lan, 1);
    assert!(
        lan.holds(0, HA_SOURCE),
        "a killed process leaves its source behind"
    );

    // The killed master's container restarts: it removes the leftover and is a backup.
    let mut r0 = lan.spawn_binary(0, &["redirect"], &env("200", &[]));
    r0.wait_ready(
        "redirect r0 again",
        "setup verified",
        1,
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lan.holders(HA_SOURCE),
        [1],
        "no preemption: r1 stays master"
    );
    let default = lan.sh("r0", &["ip", "route", "show", "default"]);
    assert!(
        default.contains("dev eth0") && !default.contains("macvlan0"),
        "{default}"
    );
    r0.stop();
    r1.stop();
}

#[test]
fn sigterm_on_the_master_hands_over_at_once_and_removes_the_source_and_routes() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let _server = server(&lan, 80);
    let mut r0 = start(&lan, 0, "200", &[]);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    let mut r1 = start(&lan, 1, "100", &[]);
    std::thread::sleep(Duration::from_millis(300));
    // The probe judges a master's setup whole and a backup's without the source.
    for i in 0..2 {
        let check = lan.binary(i, &["check"], &env(if i == 0 { "200" } else { "100" }, &[]));
        assert!(
            check.status.success(),
            "check r{i}:\n{}",
            output_text(&check)
        );
    }
    r0.signal(libc::SIGTERM);
    let stopped = Instant::now();
    let took = lan.wait_holder(1, HA_SOURCE, Duration::from_secs(1));
    eprintln!("handover after SIGTERM: {:?}", stopped.elapsed());
    // Priority 0 makes the backup wait only its skew time (60 ms at priority 100),
    // far less than its master down interval (361 ms).
    assert!(took < Duration::from_millis(300), "handover took {took:?}");
    let status = r0.wait_timeout(Duration::from_secs(5));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", r0.stderr());
    assert!(!lan.holds(0, HA_SOURCE));
    let default = lan.sh("r0", &["ip", "route", "show", "default"]);
    assert_eq!(
        default.trim(),
        "default via 192.0.2.65 dev eth0",
        "the pod's default is back"
    );
    let log = r0.stderr();
    assert!(
        log.contains("master -> initialize (shutdown)"),
        "one line a transition, with its reason:\n{log}"
    );
    r1.wait_line(
        |l| l.contains("backup -> master (handover)"),
        Duration::from_secs(2),
    )
    .unwrap_or_else(|| panic!("no handover line:\n{}", r1.stderr()));
    leaves_from_source(&lan, 1);
    r1.stop();
}

#[test]
fn a_master_whose_link_goes_down_is_replaced_and_two_masters_become_one_when_it_returns() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let _server = server(&lan, 80);
    let mut r0 = start(&lan, 0, "200", &[]);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    let mut r1 = start(&lan, 1, "100", &[]);
    std::thread::sleep(Duration::from_millis(300));
    lan.link(0, false);
    let cut = Instant::now();
    eventually(Duration::from_secs(2), "r1 takes over", || {
        lan.holds(1, HA_SOURCE)
            .then_some(())
            .ok_or("not yet".into())
    });
    eprintln!("takeover after link down: {:?}", cut.elapsed());
    leaves_from_source(&lan, 1);
    lan.link(0, true);
    // r0 (priority 200) never stopped being master: r1 hears it and yields.
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(2));
    leaves_from_source(&lan, 0);
    r0.stop();
    r1.stop();
}

#[test]
fn after_a_partition_heals_two_masters_become_one_the_higher_address() {
    let _x = xtables_shared();
    let lan = HaLan::new(2, false);
    let mut r0 = start(&lan, 0, "100", &[]);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    let mut r1 = start(&lan, 1, "100", &[]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lan.holders(HA_SOURCE),
        [0],
        "no preemption on a tie while one is master"
    );
    lan.drop_vrrp(false);
    eventually(
        Duration::from_secs(2),
        "both masters while partitioned",
        || match lan.holders(HA_SOURCE).len() {
            2 => Ok(()),
            n => Err(format!("{n} holders")),
        },
    );
    lan.heal();
    let healed = Instant::now();
    // Equal priorities: the higher primary address (r1's 198.51.100.12) stays master.
    let took = lan.wait_holder(1, HA_SOURCE, Duration::from_secs(1));
    eprintln!("two masters for {took:?} after the partition healed");
    assert!(took < Duration::from_millis(600), "{took:?}");
    let _ = healed;
    r0.wait_line(
        |l| l.contains("master -> backup (preempted)"),
        Duration::from_secs(2),
    )
    .unwrap_or_else(|| panic!("no preempted line:\n{}", r0.stderr()));
    r0.stop();
    r1.stop();
}

#[test]
fn three_routers_the_next_priority_takes_over() {
    let _x = xtables_shared();
    let lan = HaLan::new(3, false);
    let _server = server(&lan, 80);
    let r0 = start(&lan, 0, "200", &[]);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    let mut r1 = start(&lan, 1, "150", &[]);
    let mut r2 = start(&lan, 2, "100", &[]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lan.holders(HA_SOURCE), [0]);
    r0.signal(libc::SIGKILL);
    eventually(Duration::from_secs(2), "r1 takes over", || {
        lan.holds(1, HA_SOURCE)
            .then_some(())
            .ok_or("not yet".into())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!lan.holds(2, HA_SOURCE), "the lower priority stays backup");
    leaves_from_source(&lan, 1);
    assert!(lan.through(2, 80, Duration::from_millis(300)).is_err());
    r1.stop();
    r2.stop();
}

#[test]
fn without_an_address_of_its_own_on_macvlan0_init_fails_naming_it_and_changes_nothing() {
    let _x = xtables_shared();
    let lan = HaLan::new(1, false);
    lan.sh("r0", &["ip", "addr", "flush", "dev", "macvlan0"]);
    let before = lan.sh("r0", &["iptables-save"]);
    let out = lan.binary(
        0,
        &[],
        &with_var(env("100", &[]), "EGRESS_ROUTER_MODE", Some("init")),
    );
    assert_error_exit(
        Some(out.status),
        &String::from_utf8_lossy(&out.stderr),
        2,
        &["EGRESS_HA_VRID: macvlan0 has no IPv4 address of the pod's own"],
        "init without an own address",
    );
    assert_eq!(lan.sh("r0", &["iptables-save"]), before, "nothing changed");
    let bad = lan.binary(
        0,
        &[],
        &with_var(env("255", &[]), "EGRESS_ROUTER_MODE", Some("init")),
    );
    assert_error_exit(
        Some(bad.status),
        &String::from_utf8_lossy(&bad.stderr),
        2,
        &["EGRESS_HA_PRIORITY: \"255\" is not a whole number from 1 to 254"],
        "a bad priority",
    );
}
