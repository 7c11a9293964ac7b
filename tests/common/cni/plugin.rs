//! One plugin run (`run_plugin`, its `Reply`) and one attachment (`Attachment`: a
//! container of a pod, its namespace and configuration) with the commands a runtime
//! sends for it: ADD, DEL, CHECK.

use super::container_id;
use crate::common::{PATH, Topology, bin, envs};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The longest a plugin run may take before the test gives up on it.
pub const PLUGIN_LIMIT: Duration = Duration::from_secs(30);

/// One plugin run: its exit, stdout, stderr and duration.
pub struct Reply {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} after {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.what, self.status, self.took, self.stdout, self.stderr
        )
    }
}

impl Reply {
    /// Requires exit 0.
    pub fn ok(self) -> Reply {
        assert!(self.status.success(), "must succeed: {self}");
        self
    }

    /// Requires exit 0 and nothing on stdout (DEL, CHECK).
    pub fn ok_silent(self) -> Reply {
        let reply = self.ok();
        assert!(
            reply.stdout.trim().is_empty(),
            "must print nothing on stdout: {reply}"
        );
        reply
    }

    /// Stdout as one JSON value (the result, an answer or an error object).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {self}"))
    }

    /// Requires a non-zero exit and a CNI error object with `code` on stdout whose
    /// `msg` contains every one of `needles`; returns the message.
    pub fn error(&self, code: u64, needles: &[&str]) -> String {
        assert!(!self.status.success(), "must fail: {self}");
        let object = self.json();
        assert_eq!(object["code"], json!(code), "error code: {self}");
        let msg = object["msg"]
            .as_str()
            .unwrap_or_else(|| panic!("error object without msg: {self}"));
        for needle in needles {
            assert!(msg.contains(needle), "msg must name {needle:?}: {self}");
        }
        assert!(
            object["details"].as_str().is_some_and(|d| !d.is_empty()),
            "error object without details: {self}"
        );
        assert!(
            object["cniVersion"].is_string(),
            "error object without cniVersion: {self}"
        );
        msg.to_string()
    }
}

/// Runs the plugin in namespace `node` as a runtime does: a clean environment with
/// `PATH` and `vars`, `config` on stdin. Gives up (and kills it) after `PLUGIN_LIMIT`.
pub fn run_plugin(node: &str, vars: &[(String, String)], config: &str, what: String) -> Reply {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", node, &bin()])
        .env_clear()
        .env("PATH", PATH)
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start the plugin: {e}"));
    let pid = child.id() as i32;
    // a plugin that fails before reading stdin closes the pipe: not a test failure
    let _ = child.stdin.take().unwrap().write_all(config.as_bytes());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PLUGIN_LIMIT) {
        Ok(Ok(out)) => Reply {
            what,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        },
        Ok(Err(e)) => panic!("{what}: waiting for the plugin: {e}"),
        Err(_) => {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            panic!("{what}: the plugin was still running after {PLUGIN_LIMIT:?}")
        }
    }
}

/// One attachment: a container of a pod, its network namespace and configuration.
#[derive(Clone)]
pub struct Attachment {
    pub node: String,
    pub netns: String,
    pub container: String,
    pub pod: String,
    pub config: String,
    /// Further variables of every call (the AWS SDK's, for `aws-elastic-ip`).
    pub env: Vec<(String, String)>,
}

impl Attachment {
    /// The `router` pod of `t` with `config`.
    pub fn router(t: &Topology, config: &str) -> Attachment {
        Attachment {
            node: t.ns("node"),
            netns: format!("/run/netns/{}", t.ns("router")),
            container: container_id(1),
            pod: "egress-router-cni-deployment-575465c75c-z2tcd".into(),
            config: config.into(),
            env: Vec::new(),
        }
    }

    /// The variables of `command`, as Multus sets them; `netns` `None` leaves
    /// `CNI_NETNS` unset.
    pub fn vars(&self, command: &str, netns: Option<&str>) -> Vec<(String, String)> {
        let args = format!(
            "IgnoreUnknown=true;K8S_POD_NAMESPACE=egress;K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID=5b4f2a34-0d3c-4b7e-9a0e-3f1d2c4b5a69",
            self.pod, self.container
        );
        let mut vars = envs(&[
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", &self.container),
            ("CNI_IFNAME", "net1"),
            ("CNI_ARGS", &args),
            ("CNI_PATH", "/opt/cni/bin:/usr/libexec/cni"),
        ]);
        if let Some(netns) = netns {
            vars.push(("CNI_NETNS".into(), netns.into()));
        }
        vars.extend(self.env.iter().cloned());
        vars
    }

    /// Runs `command` with `CNI_NETNS` `netns` and `config` on stdin.
    pub fn call_with(&self, command: &str, netns: Option<&str>, config: &str) -> Reply {
        let what = format!("{command} of pod {} ({})", self.pod, self.netns);
        run_plugin(&self.node, &self.vars(command, netns), config, what)
    }

    /// Runs `command` on the attachment's namespace and configuration.
    pub fn call(&self, command: &str) -> Reply {
        self.call_with(command, Some(&self.netns), &self.config)
    }

    /// ADD.
    pub fn add(&self) -> Reply {
        self.call("ADD")
    }

    /// DEL.
    pub fn del(&self) -> Reply {
        self.call("DEL")
    }

    /// CHECK with `prevResult` (as runtimes send it), or without.
    pub fn check(&self, prev: Option<&Value>) -> Reply {
        let mut config: Value = serde_json::from_str(&self.config).unwrap();
        if let Some(prev) = prev {
            config["prevResult"] = prev.clone();
        }
        self.call_with("CHECK", Some(&self.netns), &config.to_string())
    }

    /// The pod's namespace name.
    pub fn ns(&self) -> &str {
        self.netns.strip_prefix("/run/netns/").unwrap()
    }
}
