//! What the monitoring tests share: the files of `examples/kubernetes/monitoring/`, the
//! alerts of the rule file and their expressions, the dashboard's queries as Prometheus
//! can run them, the metric names `docs/operations.md` documents, and `promtool`.

use super::promql;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

/// `examples/kubernetes/monitoring/`.
pub fn monitoring_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes/monitoring")
}

/// The plain Prometheus rule file, the one source of the alerts.
pub fn rules_file() -> PathBuf {
    monitoring_dir().join("rules.yaml")
}

/// A file of the repository, as text.
pub fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One alert of the rule file: its name, expression and the lines of its block.
pub struct Alert {
    pub name: String,
    pub expr: String,
    pub block: String,
}

/// The alerts of `rules.yaml`, read from its layout: each `  - alert: NAME` opens a
/// block; `expr: |` is followed by the more-indented lines of the expression (the file
/// writes every expression so; anything else fails here).
pub fn alerts() -> Vec<Alert> {
    let text = read("examples/kubernetes/monitoring/rules.yaml");
    let mut alerts = Vec::new();
    for block in text.split("\n  - alert: ").skip(1) {
        let name = block.lines().next().unwrap().trim().to_string();
        let mut lines = block
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("expr:"));
        let head = lines.next().unwrap_or_else(|| panic!("{name}: no expr"));
        assert_eq!(
            head.trim(),
            "expr: |",
            "{name}: write the expression as a block"
        );
        let expr: Vec<&str> = lines
            .take_while(|l| l.starts_with("      "))
            .map(str::trim)
            .collect();
        assert!(!expr.is_empty(), "{name}: empty expression");
        alerts.push(Alert {
            name,
            expr: expr.join("\n"),
            block: block.to_string(),
        });
    }
    assert!(!alerts.is_empty(), "no alert in rules.yaml");
    alerts
}

/// The dashboard, parsed.
pub fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read("examples/kubernetes/monitoring/dashboard.json"))
        .expect("dashboard.json is JSON")
}

/// Grafana's variables in a query replaced by what Prometheus takes: `$__rate_interval`
/// (and the other intervals) by `1m`, a template variable (used only inside a label
/// matcher's regex) by `.*`.
pub fn as_prometheus_query(query: &str) -> String {
    let mut out = query.to_string();
    for interval in ["$__rate_interval", "$__interval", "$__range"] {
        out = out.replace(interval, "1m");
    }
    for variable in ["$namespace", "$pod"] {
        out = out.replace(variable, ".*");
    }
    assert!(!out.contains('$'), "a Grafana variable left in {query}");
    out
}

/// Every query of the dashboard: each panel's targets (as written), and the metric
/// selector of each `label_values(SELECTOR, LABEL)` variable query.
pub fn dashboard_queries() -> Vec<String> {
    let dashboard = dashboard();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target with an expr");
            queries.push(expr.to_string());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if variable["type"] == "query" {
            let query = variable["query"]["query"]
                .as_str()
                .expect("a variable query");
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .and_then(|q| q.rsplit_once(','))
                .map(|(selector, _label)| selector.trim())
                .unwrap_or_else(|| panic!("not label_values(SELECTOR, LABEL): {query}"));
            queries.push(inner.to_string());
        }
    }
    assert!(queries.len() > 10, "the dashboard has queries: {queries:?}");
    queries
}

/// The metric names the rules and the dashboard use.
pub fn used_metric_names() -> BTreeSet<String> {
    let rules = alerts().into_iter().map(|a| a.expr);
    let queries = dashboard_queries()
        .into_iter()
        .map(|q| as_prometheus_query(&q));
    rules
        .chain(queries)
        .flat_map(|e| promql::metric_names(&e))
        .collect()
}

/// Whether metric `name` is one of high availability's, which only a pod with
/// `EGRESS_HA_VRID` exports: tests/monitoring_ha.rs scrapes them, from an HA pair.
pub fn is_ha_metric(name: &str) -> bool {
    name.starts_with("egress_router_ha_")
}

/// Whether `name` is the CNI plugin's, which node_exporter's textfile collector
/// exposes (tests/cni_aws_failures.rs checks the file with `promtool check metrics`).
pub fn is_cni_metric(name: &str) -> bool {
    name.starts_with("egress_router_cni_")
}

/// Whether `expr` (a rule's expression, or a dashboard query as Prometheus takes it)
/// reads any metric of high availability's.
pub fn uses_ha_metrics(expr: &str) -> bool {
    promql::metric_names(expr).iter().any(|n| is_ha_metric(n))
}

/// The metric names of the table in docs/operations.md's Metrics section (each
/// `egress_router_...` in its first column), a histogram's with `_bucket`, `_sum` and
/// `_count`.
pub fn documented_metric_names() -> BTreeSet<String> {
    let text = read("docs/operations.md");
    let mut names = BTreeSet::new();
    for row in text.lines().filter(|l| l.starts_with("| `egress_router_")) {
        let columns: Vec<&str> = row.split('|').collect();
        let histogram = columns.get(2).is_some_and(|c| c.trim() == "histogram");
        for name in columns[1]
            .split('`')
            .filter(|w| w.starts_with("egress_router_"))
        {
            if histogram {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            } else {
                names.insert(name.to_string());
            }
        }
    }
    assert!(names.len() > 20, "the metrics table was found: {names:?}");
    names
}

/// `promtool ARGS...`, which must be installed (Debian's `prometheus` package).
pub fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e}: install Debian's prometheus package (tests/run.sh does)")
        })
}
