//! Applying firewall plans with the iptables tools of the image.
//!
//! Rules are applied with one `iptables-restore --noflush` per plan (atomic per
//! table); state is read with `iptables-save`; rule presence is checked with one
//! `iptables-restore` of `-C` commands, then the `iptables` crate (`iptables -C`) to
//! name the missing rules. The backend (nft or legacy) is chosen the way
//! kube-proxy's wrapper does: stick to whatever already holds rules in this
//! namespace, otherwise prefer nf_tables.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::config::family::Family;
use crate::config::router::BackendChoice;
use crate::error::{Error, Result};
use crate::sys::netns::Netns;

/// Seconds iptables-legacy waits for the xtables lock before failing.
const LOCK_WAIT_SECONDS: &str = "5";

/// One iptables implementation and the names of its tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// Short name for logs: `nft`, `legacy` or `unknown`.
    pub name: &'static str,
    iptables: &'static str,
    save: &'static str,
    restore: &'static str,
}

const NFT: Backend = Backend {
    name: "nft",
    iptables: "iptables-nft",
    save: "iptables-nft-save",
    restore: "iptables-nft-restore",
};
const LEGACY: Backend = Backend {
    name: "legacy",
    iptables: "iptables-legacy",
    save: "iptables-legacy-save",
    restore: "iptables-legacy-restore",
};
const PLAIN: Backend = Backend {
    name: "unknown",
    iptables: "iptables",
    save: "iptables-save",
    restore: "iptables-restore",
};

const NFT6: Backend = Backend {
    name: "nft",
    iptables: "ip6tables-nft",
    save: "ip6tables-nft-save",
    restore: "ip6tables-nft-restore",
};
const LEGACY6: Backend = Backend {
    name: "legacy",
    iptables: "ip6tables-legacy",
    save: "ip6tables-legacy-save",
    restore: "ip6tables-legacy-restore",
};
const PLAIN6: Backend = Backend {
    name: "unknown",
    iptables: "ip6tables",
    save: "ip6tables-save",
    restore: "ip6tables-restore",
};

impl Backend {
    /// The same implementation's tools for `family` (`ip6tables-*` for IPv6); fails
    /// when they are not installed.
    pub fn for_family(self, family: Family) -> Result<Backend> {
        let (v4, v6) = match self.name {
            "nft" => (NFT, NFT6),
            "legacy" => (LEGACY, LEGACY6),
            _ => (PLAIN, PLAIN6),
        };
        let chosen = match family {
            Family::V4 => v4,
            Family::V6 => v6,
        };
        if chosen != self && !installed(&chosen) {
            return Err(Error::State(format!(
                "the {family} rules need {} in PATH, which is not there",
                chosen.restore
            )));
        }
        Ok(chosen)
    }

    /// Chooses the backend; returns it with the reason, for the log.
    pub fn detect(ns: &Netns, choice: BackendChoice) -> Result<(Backend, String)> {
        let require = |b: Backend| {
            if installed(&b) {
                Ok((b, "chosen by EGRESS_ROUTER_IPTABLES_BACKEND".to_string()))
            } else {
                Err(Error::config(
                    "EGRESS_ROUTER_IPTABLES_BACKEND",
                    format!(
                        "{:?} needs {} in PATH, which is not there",
                        b.name, b.restore
                    ),
                ))
            }
        };
        match choice {
            BackendChoice::Nft => return require(NFT),
            BackendChoice::Legacy => return require(LEGACY),
            BackendChoice::Auto => {}
        }
        let legacy_tables = ns
            .run(|| std::fs::read_to_string("/proc/thread-self/net/ip_tables_names"))?
            .unwrap_or_default();
        if !legacy_tables.trim().is_empty() && installed(&LEGACY) {
            let saved = LEGACY.save_all(ns)?;
            if saved.lines().any(|l| l.starts_with("-A ")) {
                return Ok((
                    LEGACY,
                    "legacy tables with rules already in use in this namespace".into(),
                ));
            }
        }
        if installed(&NFT) {
            return Ok((
                NFT,
                "no legacy rules in this namespace; nf_tables preferred".into(),
            ));
        }
        if installed(&LEGACY) {
            return Ok((LEGACY, "iptables-nft is not installed".into()));
        }
        if installed(&PLAIN) {
            return Ok((PLAIN, "only the plain iptables tools are installed".into()));
        }
        Err(Error::State(
            "no iptables tools in PATH: need iptables-nft-restore or iptables-legacy-restore"
                .into(),
        ))
    }

    /// The `iptables-save` dump of every table of namespace `ns`.
    pub fn save_all(&self, ns: &Netns) -> Result<String> {
        let output = ns
            .run(|| Command::new(self.save).output())?
            .map_err(|e| Error::io(format!("running {}", self.save), e))?;
        if !output.status.success() {
            return Err(Error::Iptables {
                command: self.save.into(),
                message: diagnostic(&output.stderr, output.status),
            });
        }
        String::from_utf8(output.stdout).map_err(|_| Error::Iptables {
            command: self.save.into(),
            message: "output is not UTF-8".into(),
        })
    }

    /// The `iptables-save -c` dump of `table` of namespace `ns`: each rule with its
    /// `[packets:bytes]` counters.
    pub fn save_counted(&self, ns: &Netns, table: &str) -> Result<String> {
        let output = ns
            .run(|| Command::new(self.save).args(["-c", "-t", table]).output())?
            .map_err(|e| Error::io(format!("running {}", self.save), e))?;
        if !output.status.success() {
            return Err(Error::Iptables {
                command: format!("{} -c -t {table}", self.save),
                message: diagnostic(&output.stderr, output.status),
            });
        }
        String::from_utf8(output.stdout).map_err(|_| Error::Iptables {
            command: self.save.into(),
            message: "output is not UTF-8".into(),
        })
    }

    /// Applies `script` in namespace `ns`; with `noflush`, tables named in it keep rules
    /// it does not touch.
    pub fn restore(&self, ns: &Netns, script: &str, noflush: bool) -> Result<()> {
        let flags: &[&str] = if noflush { &["--noflush"] } else { &[] };
        self.restore_with(ns, script, flags)
    }

    /// Applies `script` in namespace `ns` with `--noflush --counters`: tables keep the
    /// rules it does not touch, and a rule written with `[packets:bytes]` gets them.
    pub fn restore_counted(&self, ns: &Netns, script: &str) -> Result<()> {
        self.restore_with(ns, script, &["--noflush", "--counters"])
    }

    fn restore_with(&self, ns: &Netns, script: &str, flags: &[&str]) -> Result<()> {
        let mut command = Command::new(self.restore);
        command.args(["--wait", LOCK_WAIT_SECONDS]).args(flags);
        let shown = format!("{} {}", self.restore, flags.join(" "));
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = ns
            .run(|| command.spawn())?
            .map_err(|e| Error::io(format!("running {}", self.restore), e))?;
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(script.as_bytes()))
            .unwrap_or(Ok(()));
        let output = child
            .wait_with_output()
            .map_err(|e| Error::io(format!("waiting for {}", self.restore), e))?;
        if !output.status.success() {
            return Err(Error::Iptables {
                command: shown.trim_end().into(),
                message: diagnostic(&output.stderr, output.status),
            });
        }
        written.map_err(|e| Error::io(format!("writing rules to {}", self.restore), e))
    }

    /// Whether the rule `spec` is in `chain` of `table` in namespace `ns` (`iptables -C`).
    pub fn exists(&self, ns: &Netns, table: &str, chain: &str, spec: &str) -> Result<bool> {
        let ipt = iptables::IPTables {
            cmd: self.iptables,
            has_check: true,
            has_wait: true,
            is_numeric: true,
        };
        ns.run(|| ipt.exists(table, chain, spec))?
            .map_err(|e| Error::Iptables {
                command: format!("{} -t {table} -C {chain} {spec}", self.iptables),
                message: e.to_string(),
            })
    }
}

fn installed(backend: &Backend) -> bool {
    on_path(backend.restore) && on_path(backend.save) && on_path(backend.iptables)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(program))))
        .unwrap_or(false)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn diagnostic(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        format!("failed with {status}")
    } else {
        format!("failed with {status}: {}", lines.join(" / "))
    }
}
