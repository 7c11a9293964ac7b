//! The alert rules and the dashboard against a real Prometheus (Debian's `prometheus`
//! package), as root. In one topology's router namespace run a redirect pod, an HTTP
//! proxy following a list file, an HTTP proxy in report mode and a DNS proxy (a name
//! and an address target), each with its operations endpoint; Prometheus runs in the
//! node namespace (listening on its loopback only), scrapes the four endpoints every
//! second and evaluates `examples/kubernetes/monitoring/rules.yaml` as shipped every
//! second, so an alert whose expression turns true is pending within seconds whatever
//! its `for:`. While real traffic flows: every metric name the rules and the dashboard
//! use is in what Prometheus scraped, every rule evaluates without error, every
//! dashboard query answers with data, and only the alerts the traffic asks for (an SNI
//! cut, a report-mode denial) are active. Then broken, one thing at a time, each turns
//! its alert on for the pod it concerns: a DNS proxy target with no backend, a list file
//! that does not parse (pending, before their `for:`), the default route deleted
//! (firing at once). High availability's metrics, the rules and the queries that read
//! them come from an HA pair in tests/monitoring_ha.rs. These tests FAIL (never skip)
//! without root or without Prometheus.

mod common;

use common::dns::Dns;
use common::http::{client, connect_tunnel, echo, echo_then_report};
use common::lists::ListDir;
use common::monitoring::{
    as_prometheus_query, dashboard_queries, is_cni_metric, is_ha_metric, rules_file,
    used_metric_names, uses_ha_metrics,
};
use common::prometheus::{ActiveAlert, Prometheus, Target, summary};
use common::promql::metric_names;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

const NAMESPACE: &str = "egress";
const ECHO_PORT: u16 = 7000;
/// The DNS proxy's address target's server, dropped to leave the target without backend.
const OTHER_PORT: u16 = 7100;
/// The TLS alert record a tunnel starts with to be cut (`tls`: no readable ClientHello).
const ALERT_RECORD: [u8; 7] = [21, 3, 1, 0, 2, 1, 90];

/// The pods: (pod label, endpoint port).
const PODS: [(&str, u16); 4] = [
    ("redirect", 9090),
    ("http-proxy", 9091),
    ("dns-proxy", 9092),
    ("http-report", 9093),
];

/// The router namespace's four roles (the redirect first) and the HTTP proxy's list.
struct Pods {
    roles: Vec<ChildGuard>,
    list: ListDir,
}

/// What the alert needs after the setup is broken: a scrape that runs the readiness
/// check (reused for up to 5 s), then a rule evaluation.
const ALERT_WITHIN: Duration = Duration::from_secs(12);

impl Pods {
    /// Waits, when the redirect container's next check of the setup (every
    /// `CHECK_INTERVAL`, 30 s, from its start) is nearer than [`ALERT_WITHIN`], until it
    /// passed: a redirect that finds the setup gone exits.
    fn away_from_the_redirects_check(&self) {
        let interval = Duration::from_secs(30).as_secs_f64();
        let since = self.roles[0].started.elapsed().as_secs_f64() % interval;
        let left = Duration::from_secs_f64(interval - since);
        if left < ALERT_WITHIN {
            std::thread::sleep(left + Duration::from_secs(2));
        }
    }
}

/// The redirect pod's environment; its init run sets up the namespace for every role.
fn redirect_env() -> Vec<(String, String)> {
    envs(&[
        ("EGRESS_SOURCE", SOURCE),
        ("EGRESS_GATEWAY", GATEWAY),
        ("EGRESS_DESTINATION", "80 tcp 203.0.113.5"),
        ("EGRESS_ROUTER_MODE", "init"),
        ("EGRESS_METRICS_ADDRESS", ":9090"),
    ])
}

/// Starts the four roles in the router namespace (set up by the redirect's init run).
fn start_pods(t: &Topology) -> Pods {
    let metrics = |port: u16| format!(":{port}");
    let redirect = redirect_env();
    let list = ListDir::new(&t.prefix);
    list.write("rules", "!203.0.113.6\n*\n");
    let rules = list.path("rules");
    let mut roles = vec![t.spawn_router(&["redirect"], &redirect)];
    roles.push(t.spawn_router(
        &[],
        &envs(&[
            (
                "EGRESS_HTTP_PROXY_DESTINATION_FILE",
                rules.to_str().unwrap(),
            ),
            ("EGRESS_METRICS_ADDRESS", &metrics(9091)),
        ]),
    ));
    let forwarders = format!("7001 backend.example.org {ECHO_PORT}\n7002 203.0.113.6 {OTHER_PORT}");
    roles.push(t.spawn_router(
        &[],
        &envs(&[
            ("EGRESS_DNS_PROXY_DESTINATION", &forwarders),
            ("EGRESS_METRICS_ADDRESS", &metrics(9092)),
        ]),
    ));
    roles.push(t.spawn_router(
        &[],
        &envs(&[
            ("EGRESS_HTTP_PROXY_DESTINATION", "203.0.113.5"),
            ("EGRESS_HTTP_PROXY_MODE", "report"),
            ("EGRESS_HTTP_PROXY_PORT", "8081"),
            ("EGRESS_METRICS_ADDRESS", &metrics(9093)),
        ]),
    ));
    for (role, needle) in roles.iter_mut().zip([
        "setup verified",
        "http proxy listening",
        "dns proxy listening",
        "http proxy listening",
    ]) {
        role.wait_ready(needle, needle, 1, Duration::from_secs(10));
    }
    Pods { roles, list }
}

/// Traffic through every role: redirected connections, tunnels (one allowed and
/// echoed, one refused by the server, one denied, one cut by its first bytes), a
/// request report mode lets through, forwards to both DNS proxy targets; then the DNS
/// proxy's name stops resolving (its last addresses stay).
fn traffic(t: &Topology, dns: &Dns) {
    for _ in 0..3 {
        let got = t.tcp_from_client(&format!("{ROUTER_IP}:80"));
        expect_reply(t, got, &format!("{SOURCE} 203.0.113.5:80"), "redirect");
    }
    let proxy = format!("{ROUTER_IP}:8080");
    let (resp, mut tunnel) = connect_tunnel(t, &proxy, &format!("203.0.113.5:{ECHO_PORT}"));
    assert_eq!(resp.status(), 200, "{resp:?}");
    echo(&mut tunnel, "hello").unwrap();
    drop(tunnel);
    for (target, status) in [("203.0.113.5:81", 502), ("203.0.113.6:7000", 403)] {
        let (resp, _) = connect_tunnel(t, &proxy, target);
        assert_eq!(resp.status(), status, "CONNECT {target}: {resp:?}");
    }
    let (resp, mut cut) = connect_tunnel(t, &proxy, &format!("203.0.113.5:{ECHO_PORT}"));
    assert_eq!(resp.status(), 200, "{resp:?}");
    cut.write_all(&ALERT_RECORD).unwrap();
    assert!(cut.read_to_end().unwrap_or_default().is_empty(), "cut");
    let report = format!("{ROUTER_IP}:8081");
    let (resp, _) = connect_tunnel(t, &report, &format!("203.0.113.6:{OTHER_PORT}"));
    assert_eq!(resp.status(), 200, "report mode lets it through: {resp:?}");
    let mut forward = client(t, &format!("{ROUTER_IP}:7001")).unwrap();
    echo(&mut forward, "ping").unwrap();
    drop(forward);
    let other = t.tcp_from_client(&format!("{ROUTER_IP}:7002"));
    assert!(other.is_ok_and(|l| l.starts_with(SOURCE)), "7002 forwarded");
    dns.set_hosts(t, &[]);
}

/// Every metric name the rules and the dashboard use is in what `prometheus` scraped
/// (waiting up to 20 s for the traffic's series), every alerting rule as loaded
/// evaluates without error on scraped names only, and every dashboard query answers
/// with data (a counter needs two samples in the window for its rate: a few seconds);
/// high availability's names and queries aside (no pod here has `EGRESS_HA_VRID`), and
/// the CNI plugin's (node_exporter exposes them from its `metrics_file`).
fn assert_everything_used_is_scraped_and_answers(prometheus: &Prometheus) {
    let mut used = used_metric_names();
    used.retain(|name| !is_ha_metric(name) && !is_cni_metric(name));
    eventually(
        Duration::from_secs(20),
        "every metric used, scraped",
        || {
            let scraped = prometheus.names();
            let missing: BTreeSet<&String> = used.difference(&scraped).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("not scraped: {missing:?}"))
            }
        },
    );

    // the rules as Prometheus loaded them: all evaluate, on scraped names only
    let rules = prometheus.alerting_rules();
    assert_eq!(rules.len(), common::monitoring::alerts().len(), "{rules:?}");
    let scraped = prometheus.names();
    for (name, query, health, error) in &rules {
        assert_eq!(health, "ok", "{name}: {error}");
        let unknown: Vec<String> = metric_names(query)
            .difference(&scraped)
            .filter(|name| !is_ha_metric(name) && !is_cni_metric(name))
            .cloned()
            .collect();
        assert!(unknown.is_empty(), "{name} uses {unknown:?}, never scraped");
    }
    let queries = dashboard_queries().into_iter();
    for query in queries.filter(|q| !uses_ha_metrics(&as_prometheus_query(q))) {
        eventually(
            Duration::from_secs(10),
            &format!("data for {query}"),
            || match prometheus.query(&as_prometheus_query(&query)) {
                Ok(series) if !series.is_empty() => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }
}

#[test]
fn a_real_prometheus_scrapes_every_metric_used_and_alerts_on_what_breaks() {
    let _x = xtables_shared();
    let t = Topology::new();
    let echo_server = Server::tcp_at(&t, "server", "203.0.113.5", ECHO_PORT, echo_then_report);
    let other_server = Server::tcp_at(&t, "server", "203.0.113.6", OTHER_PORT, answer_line);
    let _web = t.tcp_server(80);
    t.router_ok(&[], &redirect_env());
    let dns = Dns::start_with_hosts(&t, &[("backend.example.org", "203.0.113.5")]);
    let pods = start_pods(&t);
    let targets: Vec<Target> = PODS
        .iter()
        .map(|(pod, port)| Target {
            address: format!("{ROUTER_IP}:{port}"),
            namespace: NAMESPACE,
            pod,
        })
        .collect();
    let prometheus = Prometheus::start(&t, "node", &targets, &rules_file());
    eventually(Duration::from_secs(15), "every target up", || {
        let targets = prometheus.targets();
        let all_up = targets.len() == PODS.len() && targets.iter().all(|(_, h, _)| h == "up");
        if all_up {
            Ok(())
        } else {
            Err(format!("{targets:?}"))
        }
    });

    traffic(&t, &dns);
    assert!(
        echo_server.accepted() >= 3,
        "tunnels and forwards reached the server"
    );
    assert_everything_used_is_scraped_and_answers(&prometheus);

    // healthy: only what the traffic asked for
    let traffic_alerts = [
        ("EgressRouterTlsSniCuts", "http-proxy", ("reason", "tls")),
        (
            "EgressRouterReportModeWouldDeny",
            "http-report",
            ("reason", "default"),
        ),
    ];
    for (name, pod, label) in traffic_alerts {
        let alert = prometheus.alert_turns_on(name, pod, &[label], || {});
        assert_eq!(alert.state, "firing", "no for: {alert:?}");
    }
    let expected: BTreeSet<&str> = traffic_alerts.iter().map(|a| a.0).collect();
    let others: Vec<ActiveAlert> = prometheus
        .alerts()
        .into_iter()
        .filter(|a| !expected.contains(a.name.as_str()))
        .collect();
    assert!(
        others.is_empty(),
        "healthy routers, yet: {}",
        summary(&others)
    );

    // a DNS proxy target without a backend: its port's alert, and the pod unready
    drop(other_server);
    let poke = || drop(t.tcp_from_client(&format!("{ROUTER_IP}:7002")));
    let target = [("listener", "7002"), ("target", "203.0.113.6")];
    let alert =
        prometheus.alert_turns_on("EgressRouterDnsTargetNoBackend", "dns-proxy", &target, poke);
    let said = alert.annotations["summary"].as_str().unwrap_or("");
    assert!(
        said.contains("egress/dns-proxy") && said.contains("203.0.113.6"),
        "{said}"
    );
    assert!(
        prometheus
            .active("EgressRouterDnsTargetNoBackend")
            .iter()
            .all(|a| a.label("listener") == "7002"),
        "the name target still has its backend"
    );
    assert_eq!(alert.state, "pending", "for: 1m: {alert:?}");
    let alert = prometheus.alert_turns_on("EgressRouterNotReady", "dns-proxy", &[], poke);
    assert_eq!(alert.state, "pending", "for: 2m: {alert:?}");

    // a list file that does not parse: not applied, the refusal reported
    pods.list.write("rules", "10.0.0.0/33\n");
    let alert =
        prometheus.alert_turns_on("EgressRouterListFileNotApplied", "http-proxy", &[], || {});
    assert_eq!(alert.state, "pending", "for: 5m: {alert:?}");
    prometheus.alert_turns_on(
        "EgressRouterListReloadRefused",
        "http-proxy",
        &[("result", "invalid")],
        || {},
    );

    // the default route deleted: the setup is gone in every pod (firing at once: a
    // redirect container exits at its next check, which must not come first)
    pods.away_from_the_redirects_check();
    t.sh("router", &["ip", "route", "del", "default"]);
    for (pod, _) in PODS {
        let alert = prometheus.alert_turns_on("EgressRouterSetupGone", pod, &[], || {});
        assert_eq!(alert.label("severity"), "critical");
        assert_eq!(alert.state, "firing", "no for: {alert:?}");
    }
    assert!(
        !prometheus.log().contains("level=error"),
        "prometheus logged errors:\n{}",
        prometheus.log()
    );
}
