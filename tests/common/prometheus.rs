//! A real Prometheus server (Debian's `prometheus` package) for the monitoring tests:
//! started in a namespace of the topology (or of the HA LAN), listening there on
//! loopback only, scraping
//! the given targets every second and evaluating a rule file every second (so an alert
//! whose expression turns true is pending within about two seconds, whatever its
//! `for:`); its configuration and data live in a temporary directory removed on drop.
//! Asked through its HTTP API.

use super::ha::HaLan;
use super::{ChildGuard, Topology, enter_netns, eventually};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the server listens, inside its namespace.
pub const LISTEN: &str = "127.0.0.1:9099";
/// The scrape job's name (as a ServiceMonitor would name it after its Service).
pub const JOB: &str = "egress-router-metrics";

/// A scrape target: `address` (IP:PORT) and the `namespace` and `pod` labels a
/// ServiceMonitor would give it.
pub struct Target {
    pub address: String,
    pub namespace: &'static str,
    pub pod: &'static str,
}

/// A running server, stopped and its directory removed on drop.
pub struct Prometheus {
    server: ChildGuard,
    dir: PathBuf,
    ns: String,
}

/// One active alert: its name, state (`pending`, `firing`) and labels.
#[derive(Debug, Clone)]
pub struct ActiveAlert {
    pub name: String,
    pub state: String,
    pub labels: Value,
    pub annotations: Value,
}

impl ActiveAlert {
    /// The value of label `name` ("" when missing).
    pub fn label(&self, name: &str) -> &str {
        self.labels[name].as_str().unwrap_or("")
    }
}

impl Prometheus {
    /// Starts Prometheus in the namespace of `role`, scraping `targets` and evaluating
    /// `rules`; returns once it is ready to answer.
    pub fn start(t: &Topology, role: &str, targets: &[Target], rules: &Path) -> Prometheus {
        let spawn = |args: &[String]| t.spawn(role, args, &[]);
        Prometheus::launch(&t.prefix, t.ns(role), spawn, targets, rules)
    }

    /// [`Prometheus::start`] in the namespace of `role` of the HA LAN.
    pub fn start_on_lan(lan: &HaLan, role: &str, targets: &[Target], rules: &Path) -> Prometheus {
        let spawn = |args: &[String]| lan.spawn(role, args, &[]);
        Prometheus::launch(&lan.prefix, lan.ns(role), spawn, targets, rules)
    }

    /// Starts the server with `spawn` (the command line in the namespace `ns`), its
    /// directory named after `prefix`.
    fn launch(
        prefix: &str,
        ns: String,
        spawn: impl FnOnce(&[String]) -> ChildGuard,
        targets: &[Target],
        rules: &Path,
    ) -> Prometheus {
        let binary = "/usr/bin/prometheus";
        assert!(
            Path::new(binary).exists(),
            "{binary} missing: install Debian's prometheus package (tests/run.sh does)"
        );
        let dir = std::env::temp_dir().join(format!("egress-prometheus-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("prometheus.yml"), config(targets, rules)).unwrap();
        let args = [
            binary.to_string(),
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={LISTEN}"),
            "--storage.tsdb.retention.time=1h".into(),
        ];
        let mut server = spawn(&args);
        server.wait_ready(
            "prometheus",
            "Server is ready to receive web requests",
            1,
            Duration::from_secs(30),
        );
        Prometheus { server, dir, ns }
    }

    /// `GET path` on the API: the `data` of a successful answer, or what went wrong.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let (ns, asked) = (self.ns.clone(), path.to_string());
        let answer = std::thread::spawn(move || {
            enter_netns(&ns);
            http_get(&asked)
        })
        .join()
        .expect("the API request's thread")?;
        let value: Value = serde_json::from_str(&answer)
            .map_err(|e| format!("GET {path}: not JSON ({e}): {answer}"))?;
        match value["status"].as_str() {
            Some("success") => Ok(value["data"].clone()),
            _ => Err(format!("GET {path}: {value}")),
        }
    }

    /// The result of the instant query `expr` (its series), or Prometheus's error.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(expr)))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Every metric name Prometheus holds samples of.
    pub fn names(&self) -> BTreeSet<String> {
        let data = self.api("/api/v1/label/__name__/values").unwrap();
        let names = data.as_array().expect("a list of names");
        names
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    /// The alerting rules as loaded: (name, query, health, last error).
    pub fn alerting_rules(&self) -> Vec<(String, String, String, String)> {
        let data = self.api("/api/v1/rules?type=alert").unwrap();
        let groups = data["groups"].as_array().expect("rule groups");
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| {
                let error = text(&r["lastError"]);
                (
                    text(&r["name"]),
                    text(&r["query"]),
                    text(&r["health"]),
                    error,
                )
            })
            .collect()
    }

    /// The alerts pending or firing now.
    pub fn alerts(&self) -> Vec<ActiveAlert> {
        let data = self.api("/api/v1/alerts").unwrap();
        let alerts = data["alerts"].as_array().cloned().unwrap_or_default();
        alerts
            .into_iter()
            .map(|a| ActiveAlert {
                name: a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                state: a["state"].as_str().unwrap_or("").to_string(),
                labels: a["labels"].clone(),
                annotations: a["annotations"].clone(),
            })
            .collect()
    }

    /// The alerts named `name` pending or firing now.
    pub fn active(&self, name: &str) -> Vec<ActiveAlert> {
        let alerts = self.alerts().into_iter();
        alerts.filter(|a| a.name == name).collect()
    }

    /// Waits (at most 20 s, `poke` run before each look) until alert `name` is active
    /// for pod `pod` with the labels `labels`; returns it.
    pub fn alert_turns_on(
        &self,
        name: &str,
        pod: &str,
        labels: &[(&str, &str)],
        poke: impl FnMut(),
    ) -> ActiveAlert {
        let mut all = vec![("pod", pod)];
        all.extend_from_slice(labels);
        self.alert_with_labels_turns_on(name, &all, poke)
    }

    /// Waits (at most 20 s, `poke` run before each look) until alert `name` is active
    /// with the labels `labels`; returns it.
    pub fn alert_with_labels_turns_on(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        mut poke: impl FnMut(),
    ) -> ActiveAlert {
        let wanted = |a: &ActiveAlert| labels.iter().all(|(k, v)| a.label(k) == *v);
        eventually(
            Duration::from_secs(20),
            &format!("{name} with {labels:?}"),
            || {
                poke();
                let found = self.active(name).into_iter().find(wanted);
                found.ok_or_else(|| format!("active: {}", summary(&self.alerts())))
            },
        )
    }

    /// Each target's address and health (`up`, `down`, `unknown`) with its last error.
    pub fn targets(&self) -> Vec<(String, String, String)> {
        let data = self.api("/api/v1/targets?state=active").unwrap();
        let targets = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        targets
            .iter()
            .map(|t| {
                let address = text(&t["labels"]["instance"]);
                (address, text(&t["health"]), text(&t["lastError"]))
            })
            .collect()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.server.stderr()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.server.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `alerts`, one `NAME state pod` each (a group's `vrid` and `family` for an alert
/// without a pod), for failure messages.
pub fn summary(alerts: &[ActiveAlert]) -> String {
    let shown: Vec<String> = alerts
        .iter()
        .map(|a| match a.label("pod") {
            "" => format!(
                "{} {} vrid {} {}",
                a.name,
                a.state,
                a.label("vrid"),
                a.label("family")
            ),
            pod => format!("{} {} {pod}", a.name, a.state),
        })
        .collect();
    shown.join(", ")
}

/// The configuration: scrape and evaluate every second, the job with each target and
/// its labels, the rule file.
fn config(targets: &[Target], rules: &Path) -> String {
    let mut text = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n- {}\nscrape_configs:\n- job_name: {JOB}\n  static_configs:\n",
        rules.display()
    );
    for target in targets {
        text.push_str(&format!(
            "  - targets: ['{}']\n    labels: {{namespace: {}, pod: {}}}\n",
            target.address, target.namespace, target.pod
        ));
    }
    text
}

/// `GET path` from this thread's namespace to [`LISTEN`] over HTTP/1.0 (the answer
/// ends with the connection, never chunked): the body of a 200 or 4xx/5xx answer.
fn http_get(path: &str) -> Result<String, String> {
    let address = LISTEN.parse().unwrap();
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map_err(|e| format!("connect {LISTEN}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("GET {path}: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let (_, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: no header end in {answer:?}"))?;
    Ok(body.to_string())
}

/// `text` percent-encoded for a query string (everything but unreserved characters).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
