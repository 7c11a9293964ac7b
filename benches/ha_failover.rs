//! The high-availability benchmark (run by `benches/ha-failover.sh`; ignored by
//! `cargo test`): two router pods on one LAN, VRRP at 100 ms adverts, equal priorities;
//! egress-router's own VRRP and keepalived side by side in the same topology, each run
//! on the same machine. Measured, each `RUNS` times (default 10), medians printed:
//!
//! - SIGKILL of the master (every process of it) to the first new TCP connection
//!   through the new master (the client retries every 5 ms through the backup's
//!   `eth0`, whose redirect reaches the server only once it holds the source), and to
//!   the source on the new master's `macvlan0` (`ip monitor`: "direct", the protocol's
//!   own takeover without the connection);
//! - the master's link down (its bridge port), and SIGTERM of the master (priority 0),
//!   to the same two;
//! - a partition of VRRP healed to one master (the loser's source gone).

#[path = "../tests/common/mod.rs"]
mod common;

use common::ha::{HA_SOURCE, HaLan, env, keepalived, server};
use common::*;
use std::time::{Duration, Instant};

/// Which VRRP speaker runs in the router pods.
#[derive(Clone, Copy, PartialEq)]
enum Speaker {
    EgressRouter,
    Keepalived,
}

/// One pod's VRRP process.
struct Pod {
    speaker: Speaker,
    child: Option<ChildGuard>,
    dying: Option<ChildGuard>,
}

fn runs() -> usize {
    std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| (1..=100).contains(r))
        .unwrap_or(10)
}

fn scratch() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ha-bench-{}", std::process::id()))
}

impl Speaker {
    fn name(self) -> &'static str {
        match self {
            Speaker::EgressRouter => "egress-router",
            Speaker::Keepalived => "keepalived",
        }
    }
}

impl Pod {
    fn start(lan: &HaLan, i: usize, speaker: Speaker) -> Pod {
        Pod::restart(lan, i, speaker, None)
    }

    /// Starts the pod's speaker once `dying` (the one stopped before) has exited.
    fn restart(lan: &HaLan, i: usize, speaker: Speaker, dying: Option<ChildGuard>) -> Pod {
        if let Some(mut old) = dying {
            old.wait_timeout(Duration::from_secs(10));
        }
        let child = match speaker {
            Speaker::EgressRouter => {
                let mut c = lan.spawn_binary(i, &["redirect"], &env("100", &[]));
                c.wait_ready("redirect", "setup verified", 1, Duration::from_secs(10));
                c
            }
            Speaker::Keepalived => {
                // keepalived starts as backup but keeps what a killed run left.
                let ns = format!("r{i}");
                let _ = lan.run(
                    &ns,
                    &[
                        "ip",
                        "addr",
                        "del",
                        &format!("{HA_SOURCE}/32"),
                        "dev",
                        "macvlan0",
                    ],
                    &[],
                );
                for net in ["0.0.0.0/1", "128.0.0.0/1"] {
                    let _ = lan.run(&ns, &["ip", "route", "del", net], &[]);
                }
                // Files of its own each start: a killed run's pid files name zombies.
                static STARTS: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut c = keepalived(lan, i, 100, "", &scratch().join(n.to_string()));
                c.wait_ready(
                    "keepalived",
                    "Entering BACKUP STATE",
                    1,
                    Duration::from_secs(10),
                );
                c
            }
        };
        Pod {
            speaker,
            child: Some(child),
            dying: None,
        }
    }

    /// Ends every process of the pod's VRRP speaker with `signal`.
    fn kill(&mut self, lan: &HaLan, i: usize, signal: i32) {
        match self.speaker {
            Speaker::EgressRouter => {
                if let Some(c) = &self.child {
                    c.signal(signal);
                }
            }
            Speaker::Keepalived if signal == libc::SIGKILL => {
                let pids = lan.sh("lan", &["ip", "netns", "pids", &lan.ns(&format!("r{i}"))]);
                for pid in pids
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            Speaker::Keepalived => {
                if let Some(c) = &self.child {
                    c.signal(signal);
                }
            }
        }
        // Reaped only at the next start: the measurement must not wait for the exit.
        self.dying = self.child.take();
    }
}

/// The only holder of the source, once the same one has held it alone for 1 s (at
/// most 10 s): a measurement starts from a settled pair.
fn master(lan: &HaLan) -> usize {
    let end = Instant::now() + Duration::from_secs(10);
    let mut stable: Option<(usize, Instant)> = None;
    loop {
        let now = Instant::now();
        stable = match (lan.holders(HA_SOURCE).as_slice(), stable) {
            ([one], Some((same, since))) if *one == same => Some((same, since)),
            ([one], _) => Some((*one, now)),
            _ => None,
        };
        if let Some((one, since)) = stable
            && now - since >= Duration::from_secs(1)
        {
            return one;
        }
        assert!(now < end, "no settled master: {:?}", lan.holders(HA_SOURCE));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Retries a connection through router `i` every 5 ms from `since`: when the first
/// one reached the server from the source.
fn first_connection(lan: &HaLan, i: usize, since: Instant) -> Duration {
    loop {
        if let Ok(line) = lan.through(i, 80, Duration::from_millis(20))
            && line.starts_with(&format!("{HA_SOURCE} "))
        {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "no connection through r{i}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `ip monitor address` in router `i`, listening.
fn monitor(lan: &HaLan, i: usize) -> ChildGuard {
    let m = lan.spawn(
        &format!("r{i}"),
        &["timeout", "20", "ip", "-o", "monitor", "address"],
        &[],
    );
    std::thread::sleep(Duration::from_millis(50));
    m
}

/// When `monitor` showed the source `added` (or deleted) after `since`, from `since`.
fn seen(monitor: &ChildGuard, added: bool, since: Instant) -> Duration {
    let wanted = format!("{HA_SOURCE}/32");
    let end = since + Duration::from_secs(10);
    loop {
        let found = monitor.lines().into_iter().find(|(at, _, l)| {
            *at >= since && l.contains(&wanted) && l.starts_with("Deleted") != added
        });
        if let Some((at, _, _)) = found {
            return at - since;
        }
        assert!(
            Instant::now() < end,
            "the address change:\n{}",
            monitor.stdout()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Medians of each measurement for `speaker`, in the order of `NAMES`.
fn measure(speaker: Speaker) -> Vec<Vec<Duration>> {
    let lan = HaLan::new(2, false);
    let _server = server(&lan, 80);
    for i in 0..2 {
        let init = lan.binary(
            i,
            &[],
            &with_var(env("100", &[]), "EGRESS_ROUTER_MODE", Some("init")),
        );
        assert!(init.status.success(), "{}", output_text(&init));
    }
    let mut pods = vec![Pod::start(&lan, 0, speaker)];
    master(&lan);
    pods.push(Pod::start(&lan, 1, speaker));
    let mut found = vec![Vec::new(); NAMES.len()];
    for _ in 0..runs() {
        for (scenario, slot) in [(0, 0), (1, 2), (2, 4)] {
            let m = master(&lan);
            let b = 1 - m;
            let watch = monitor(&lan, b);
            std::thread::sleep(Duration::from_millis(300));
            let start = Instant::now();
            match scenario {
                0 => pods[m].kill(&lan, m, libc::SIGKILL),
                1 => lan.link(m, false),
                _ => pods[m].kill(&lan, m, libc::SIGTERM),
            }
            found[slot].push(first_connection(&lan, b, start));
            found[slot + 1].push(seen(&watch, true, start));
            eprintln!(
                "{}: r{m} -> r{b}: {} {:?}, {:?}",
                speaker.name(),
                NAMES[slot],
                found[slot].last().unwrap(),
                found[slot + 1].last().unwrap()
            );
            match scenario {
                1 => {
                    lan.link(m, true);
                    master(&lan);
                }
                _ => {
                    let dying = pods[m].dying.take();
                    pods[m] = Pod::restart(&lan, m, speaker, dying);
                }
            }
        }
        let m = master(&lan);
        lan.drop_vrrp(false);
        eventually(Duration::from_secs(3), "two masters", || {
            match lan.holders(HA_SOURCE).len() {
                2 => Ok(()),
                n => Err(format!("{n}")),
            }
        });
        let _ = m;
        // Equal priorities: the higher address (r1) stays master, r0 gives up.
        let watch = monitor(&lan, 0);
        std::thread::sleep(Duration::from_millis(300));
        let healed = Instant::now();
        lan.heal();
        found[6].push(seen(&watch, false, healed));
    }
    for (i, pod) in pods.iter_mut().enumerate() {
        pod.kill(&lan, i, libc::SIGTERM);
        if let Some(mut c) = pod.dying.take() {
            c.wait_timeout(Duration::from_secs(10));
        }
    }
    found
}

const NAMES: [&str; 7] = [
    "SIGKILL of the master -> first TCP connection",
    "SIGKILL of the master -> source on the backup (direct)",
    "master's link down -> first TCP connection",
    "master's link down -> source on the backup (direct)",
    "SIGTERM of the master -> first TCP connection",
    "SIGTERM of the master -> source on the backup (direct)",
    "partition healed -> one master (the loser's source gone)",
];

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[test]
#[ignore = "a benchmark: benches/ha-failover.sh runs it"]
fn ha_failover_against_keepalived() {
    let _x = xtables_exclusive();
    let mut ours = measure(Speaker::EgressRouter);
    let mut theirs = measure(Speaker::Keepalived);
    let _ = std::fs::remove_dir_all(scratch());
    println!(
        "\nHA failover, 100 ms adverts, equal priorities (100), medians of {} runs",
        runs()
    );
    println!(
        "{:<56} {:>14} {:>12} {:>7}",
        "measurement", "egress-router", "keepalived", "ratio"
    );
    for (i, name) in NAMES.iter().enumerate() {
        let (a, b) = (median(&mut ours[i]), median(&mut theirs[i]));
        let ratio = a.as_secs_f64() / b.as_secs_f64().max(1e-6);
        println!("{name:<56} {:>14} {:>12} {ratio:>6.2}x", ms(a), ms(b));
    }
    println!("(min-max egress-router / keepalived)");
    for (i, name) in NAMES.iter().enumerate() {
        let range = |v: &[Duration]| format!("{}-{}", ms(v[0]), ms(v[v.len() - 1]));
        println!("{name:<56} {} / {}", range(&ours[i]), range(&theirs[i]));
    }
}
