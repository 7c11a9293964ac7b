//! The monitoring examples without a server (no root, no network): the rule file passes
//! `promtool check rules` and its unit tests (`promtool test rules`, which alerts fire
//! on which series and which must not), the PrometheusRule is what `generate.sh`
//! makes of it, every alert has a severity and a runbook section in
//! docs/monitoring.md, and every query of the dashboard parses and uses only metrics
//! the router exports (the table of docs/operations.md). `promtool` comes with Debian's
//! `prometheus` package (tests/run.sh installs it); without it these tests fail.

mod common;

use common::monitoring::{
    alerts, as_prometheus_query, dashboard, dashboard_queries, documented_metric_names,
    monitoring_dir, promtool, read, rules_file, used_metric_names,
};
use common::output_text;
use common::promql::metric_names;
use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn promtool_accepts_the_rule_file() {
    let path = rules_file();
    let out = promtool(&[
        "check",
        "rules",
        "--lint=all",
        "--lint-fatal",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let found = format!("SUCCESS: {} rules found", alerts().len());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&found),
        "{found}: {}",
        output_text(&out)
    );
}

#[test]
fn the_unit_tests_of_the_rules_pass_and_cover_every_alert() {
    let tests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/monitoring/rules_test.yaml"
    );
    let out = promtool(&["test", "rules", tests]);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = read("tests/monitoring/rules_test.yaml");
    for alert in alerts() {
        let fires = text
            .split(&format!("alertname: {}\n", alert.name))
            .skip(1)
            .any(|rest| rest.trim_start().starts_with("exp_alerts:\n"));
        assert!(
            fires,
            "{}: no unit test where it fires in rules_test.yaml",
            alert.name
        );
    }
}

#[test]
fn a_broken_expectation_fails_the_unit_tests() {
    // The unit tests are not vacuous: a fired alert expected where none fires fails.
    let dir = std::env::temp_dir().join(format!("egress-rules-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tests = read("tests/monitoring/rules_test.yaml")
        .replace(
            "../../examples/kubernetes/monitoring/rules.yaml",
            rules_file().to_str().unwrap(),
        )
        .replacen(
            "  - eval_time: 1m\n    alertname: EgressRouterSetupGone\n    exp_alerts: []",
            "  - eval_time: 1m\n    alertname: EgressRouterSetupGone\n    exp_alerts:\n    - exp_labels: {severity: critical, namespace: egress, pod: redirect-a}",
            1,
        );
    let path = dir.join("rules_test.yaml");
    std::fs::write(&path, tests).unwrap();
    let out = promtool(&["test", "rules", path.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("alertname: EgressRouterSetupGone, time: 1m"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn the_prometheusrule_is_generated_from_the_rule_file() {
    let script = monitoring_dir().join("generate.sh");
    let out = Command::new("bash")
        .args([script.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let committed = read("examples/kubernetes/monitoring/prometheusrule.yaml");
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "prometheusrule.yaml is not what generate.sh makes of rules.yaml: run \
         `bash examples/kubernetes/monitoring/generate.sh`"
    );
    // the groups are the rule file's, indented under spec
    let groups_at = read("examples/kubernetes/monitoring/rules.yaml")
        .find("\ngroups:\n")
        .expect("rules.yaml has groups");
    let rules = read("examples/kubernetes/monitoring/rules.yaml");
    let indented: String = rules[groups_at + 1..]
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".into()
            } else {
                format!("  {l}\n")
            }
        })
        .collect();
    assert!(
        committed.ends_with(&format!("spec:\n{indented}")),
        "spec holds the groups"
    );
    assert!(committed.contains("kind: PrometheusRule\n"));
}

#[test]
fn every_alert_has_a_severity_a_summary_and_a_runbook_section() {
    let docs = read("docs/monitoring.md");
    let headings: BTreeSet<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .collect();
    for alert in alerts() {
        let name = &alert.name;
        let severity = alert
            .block
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity: "))
            .unwrap_or_else(|| panic!("{name}: no severity"));
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity}"
        );
        for annotation in ["summary: ", "description: "] {
            assert!(alert.block.contains(annotation), "{name}: no {annotation}");
        }
        let runbook = format!("runbook_url: docs/monitoring.md#{}", name.to_lowercase());
        assert!(alert.block.contains(&runbook), "{name}: no {runbook}");
        assert!(
            headings.contains(name.as_str()),
            "{name}: no `### {name}` section in docs/monitoring.md"
        );
    }
}

#[test]
fn the_rules_and_the_dashboard_use_only_exported_metrics() {
    let documented = documented_metric_names();
    let used = used_metric_names();
    let unknown: Vec<&String> = used.difference(&documented).collect();
    assert!(
        unknown.is_empty(),
        "metrics not in docs/operations.md's table: {unknown:?}"
    );
    for name in [
        "egress_router_connections_total",
        "egress_router_nat_packets_total",
        "egress_router_backend_up",
        "egress_router_list_reloads_total",
        "egress_router_upstream_connect_seconds_bucket",
        "egress_router_connections_max",
    ] {
        assert!(used.contains(name), "{name} unused: {used:?}");
    }
}

#[test]
fn every_dashboard_query_parses() {
    // promtool parses each query as the expression of a recording rule
    let dir = std::env::temp_dir().join(format!("egress-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = String::from("groups:\n- name: dashboard\n  rules:\n");
    let queries = dashboard_queries();
    for (i, query) in queries.iter().enumerate() {
        let expr = serde_json::to_string(&as_prometheus_query(query)).unwrap();
        file.push_str(&format!(
            "  - record: dashboard_query_{i}\n    expr: {expr}\n"
        ));
    }
    let path = dir.join("dashboard-queries.yaml");
    std::fs::write(&path, file).unwrap();
    let out = promtool(&["check", "rules", path.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", output_text(&out));
    let found = format!("SUCCESS: {} rules found", queries.len());
    assert!(output_text(&out).contains(&found), "{}", output_text(&out));
}

#[test]
fn every_dashboard_panel_reads_the_chosen_data_source_and_pods() {
    let dashboard = dashboard();
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        let Some(targets) = panel["targets"].as_array() else {
            continue;
        };
        panels += 1;
        let title = panel["title"].as_str().unwrap_or("?");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let selectors = expr.matches("egress_router_").count();
            let scoped = expr
                .matches(r#"namespace=~"$namespace", pod=~"$pod""#)
                .count();
            assert_eq!(selectors, scoped, "{title}: every selector scoped: {expr}");
        }
    }
    assert!(panels >= 15, "{panels} panels");
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = |e: &str| -> Vec<String> { metric_names(e).into_iter().collect() };
    assert_eq!(
        names(
            r#"sum by (role, le) (rate(a_bucket{x="sum(b)"}[5m])) / on (pod) group_left (version) c"#
        ),
        ["a_bucket", "c"]
    );
    assert_eq!(
        names("max without (address) (up) == 0 unless ignoring(x) b offset 5m and bool"),
        ["b", "up"]
    );
    assert_eq!(
        names("time() - d > 300 or histogram_quantile(0.99, e) * 1e3 > .5"),
        ["d", "e"]
    );
    assert_eq!(names("count(topk by (x) (3, f[1m:10s]))"), ["f"]);
    assert_eq!(names("sum by(x)(g)"), ["g"]);
}
