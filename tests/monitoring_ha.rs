//! High availability's alerts and dashboard row against a real Prometheus (Debian's
//! `prometheus` package), as root. On the HA LAN (tests/common/ha) two redirect pods
//! share `EGRESS_SOURCE` with VRID 51, each with its operations endpoint; Prometheus
//! runs in the client's namespace (on its loopback only), scrapes both every second
//! with the labels a ServiceMonitor gives (`namespace`, `pod`) and evaluates
//! `examples/kubernetes/monitoring/rules.yaml` as shipped every second, so an alert
//! whose expression turns true is pending within seconds whatever its `for:`.
//!
//! A master alone has no backup (pending). The healthy pair: every HA metric the rules
//! and the dashboard use is scraped, every rule reading one evaluates on scraped names,
//! every HA dashboard query answers with data, and no alert is active for seconds,
//! `EgressRouterNotReady` included, while the backup answers `/readyz` 503 `standby`.
//! Then broken, each turning its alert on for its group or pod: VRRP dropped between
//! the pods (two masters), partitions healed and dropped again (the backup flaps), and
//! the master SIGKILLed while a router Prometheus does not scrape claims the VRID (no
//! master; the backup still no NotReady). These tests FAIL (never skip) without root or
//! without Prometheus.

mod common;

use common::ha::{HA_SOURCE, HaLan, VRID, endpoint, server, start};
use common::monitoring::{
    alerts, as_prometheus_query, dashboard_queries, is_ha_metric, rules_file, used_metric_names,
    uses_ha_metrics,
};
use common::prometheus::{Prometheus, Target, summary};
use common::promql::metric_names;
use common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "egress";
/// The pods Prometheus scrapes: router `i` of the LAN is `PODS[i]`.
const PODS: [&str; 2] = ["egress-ha-0", "egress-ha-1"];
/// The labels of the pair's group, as the group alerts carry them.
const GROUP: [(&str, &str); 3] = [("namespace", NAMESPACE), ("vrid", VRID), ("family", "ipv4")];

/// Every metric name of high availability the rules and the dashboard use is scraped
/// (waiting up to 20 s), every alerting rule that reads one evaluates without error on
/// scraped names only, and every dashboard query that reads one answers with data.
fn assert_ha_names_scraped_and_answer(prometheus: &Prometheus) {
    let mut used = used_metric_names();
    used.retain(|name| is_ha_metric(name));
    assert!(used.len() >= 5, "the HA metrics used: {used:?}");
    eventually(
        Duration::from_secs(20),
        "every HA metric used, scraped",
        || {
            let scraped = prometheus.names();
            let missing: BTreeSet<&String> = used.difference(&scraped).collect();
            match missing.is_empty() {
                true => Ok(()),
                false => Err(format!("not scraped: {missing:?}")),
            }
        },
    );
    let rules = prometheus.alerting_rules();
    assert_eq!(rules.len(), alerts().len(), "{rules:?}");
    let scraped = prometheus.names();
    let reading_ha: Vec<_> = rules.iter().filter(|r| uses_ha_metrics(&r.1)).collect();
    assert!(
        reading_ha.len() >= 6,
        "the HA alerts and NotReady: {rules:?}"
    );
    for (name, query, health, error) in reading_ha {
        assert_eq!(health, "ok", "{name}: {error}");
        let unknown: Vec<String> = metric_names(query).difference(&scraped).cloned().collect();
        assert!(unknown.is_empty(), "{name} uses {unknown:?}, never scraped");
    }
    let queries: Vec<String> = dashboard_queries()
        .iter()
        .map(|q| as_prometheus_query(q))
        .filter(|q| uses_ha_metrics(q))
        .collect();
    assert!(queries.len() >= 5, "the HA row's queries: {queries:?}");
    for query in queries {
        eventually(
            Duration::from_secs(10),
            &format!("data for {query}"),
            || match prometheus.query(&query) {
                Ok(series) if !series.is_empty() => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }
}

/// Asserts for `window` (looking every 250 ms) that no alert named in `names` is active
/// (every alert when `names` is empty).
fn assert_quiet(prometheus: &Prometheus, names: &[&str], window: Duration) {
    let end = Instant::now() + window;
    while Instant::now() < end {
        let active: Vec<_> = prometheus
            .alerts()
            .into_iter()
            .filter(|a| names.is_empty() || names.contains(&a.name.as_str()))
            .collect();
        assert!(active.is_empty(), "active: {}", summary(&active));
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits (at most 20 s) until no alert named `name` is active.
fn alert_turns_off(prometheus: &Prometheus, name: &str) {
    eventually(
        Duration::from_secs(20),
        &format!("{name} off"),
        || match prometheus.active(name).as_slice() {
            [] => Ok(()),
            active => Err(summary(active)),
        },
    );
}

/// Drops VRRP between the pods until router 1 holds the source too (two masters),
/// then lets it through until router 0 alone holds it again (router 1 preempted by
/// its higher priority).
fn partition_and_heal(lan: &HaLan) {
    lan.drop_vrrp(false);
    eventually(
        Duration::from_secs(3),
        "r1 master while cut off",
        || match lan.holders(HA_SOURCE).as_slice() {
            [0, 1] => Ok(()),
            other => Err(format!("holders {other:?}")),
        },
    );
    lan.heal();
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
}

#[test]
fn a_real_prometheus_sees_the_ha_pair_and_alerts_on_no_master_two_masters_and_flapping() {
    let _x = xtables_shared();
    let lan = HaLan::new(3, false);
    let _server = server(&lan, 80);
    let targets: Vec<Target> = PODS
        .iter()
        .enumerate()
        .map(|(i, pod)| Target {
            address: format!("{}:9090", lan.router_ip(i)),
            namespace: NAMESPACE,
            pod,
        })
        .collect();
    let mut r0 = start(&lan, 0, "200", &[]);
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    let prometheus = Prometheus::start_on_lan(&lan, "client", &targets, &rules_file());

    // a master alone: no backup to take over (pending: for 15m)
    let alert = prometheus.alert_with_labels_turns_on("EgressRouterHaNoBackup", &GROUP, || {});
    assert_eq!(alert.state, "pending", "{alert:?}");
    assert_eq!(alert.label("severity"), "warning");

    // the healthy pair
    let mut r1 = start(&lan, 1, "100", &[]);
    eventually(Duration::from_secs(15), "both targets up", || {
        let targets = prometheus.targets();
        match targets.len() == 2 && targets.iter().all(|(_, h, _)| h == "up") {
            true => Ok(()),
            false => Err(format!("{targets:?}")),
        }
    });
    assert_eq!(lan.holders(HA_SOURCE), [0], "r0 master, r1 backup");
    assert_eq!(endpoint(&lan, 1, "/readyz").0, 503, "a backup is standby");
    assert_ha_names_scraped_and_answer(&prometheus);
    alert_turns_off(&prometheus, "EgressRouterHaNoBackup");
    let backup_unready = r#"egress_router_ready{pod="egress-ha-1"} == 0"#;
    eventually(
        Duration::from_secs(10),
        "the backup scraped unready",
        || match prometheus.query(backup_unready) {
            Ok(series) if series.len() == 1 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    assert_quiet(&prometheus, &[], Duration::from_secs(5));

    // VRRP dropped between them: both masters
    lan.drop_vrrp(false);
    let alert = prometheus.alert_with_labels_turns_on("EgressRouterHaTwoMasters", &GROUP, || {});
    assert_eq!(alert.label("severity"), "critical");
    let said = alert.annotations["summary"].as_str().unwrap_or("");
    assert!(
        said.contains("2 egress routers of VRID 51 (ipv4) in egress"),
        "{said}"
    );
    assert_eq!(lan.holders(HA_SOURCE), [0, 1]);
    assert_quiet(
        &prometheus,
        &["EgressRouterHaNoMaster", "EgressRouterNotReady"],
        Duration::from_secs(2),
    );
    lan.heal();
    lan.wait_holder(0, HA_SOURCE, Duration::from_secs(3));
    alert_turns_off(&prometheus, "EgressRouterHaTwoMasters");

    // two more partitions: r1 has taken over and yielded three times (6 changes)
    partition_and_heal(&lan);
    partition_and_heal(&lan);
    let alert = prometheus.alert_turns_on("EgressRouterHaFlapping", PODS[1], &[], || {});
    assert_eq!(alert.state, "firing", "no for: {alert:?}");
    assert!(
        prometheus
            .active("EgressRouterHaFlapping")
            .iter()
            .all(|a| a.label("pod") == PODS[1]),
        "r0 stayed master"
    );

    // the master SIGKILLed while a router Prometheus does not scrape (priority 150,
    // preempting) claims VRID 51: r1 stays (or is put back to) backup, nobody scraped
    // is master
    let mut r2 = start(&lan, 2, "150", &[("EGRESS_HA_PREEMPT", "true")]);
    r0.signal(libc::SIGKILL);
    eventually(Duration::from_secs(5), "r2 master, r1 backup", || {
        match (lan.holds(2, HA_SOURCE), lan.holds(1, HA_SOURCE)) {
            (true, false) => Ok(()),
            other => Err(format!("r2, r1 hold: {other:?}")),
        }
    });
    let alert = prometheus.alert_with_labels_turns_on("EgressRouterHaNoMaster", &GROUP, || {});
    assert_eq!(alert.label("severity"), "critical");
    assert_eq!(endpoint(&lan, 1, "/readyz").0, 503, "r1 is standby");
    assert_quiet(
        &prometheus,
        &["EgressRouterNotReady", "EgressRouterHaTwoMasters"],
        Duration::from_secs(3),
    );
    assert!(
        !prometheus.log().contains("level=error"),
        "prometheus logged errors:\n{}",
        prometheus.log()
    );
    let _ = r0.wait_timeout(Duration::from_secs(2));
    r1.stop();
    r2.stop();
}
