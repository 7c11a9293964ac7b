//! The invocation: the `CNI_*` variables, read from a [`Vars`] source, and the
//! configuration bytes on stdin, validated into a [`Request`].
//!
//! What is required depends on the command: ADD and CHECK need the container, its
//! interface name and network namespace; DEL tolerates a missing namespace (it may
//! be gone already); VERSION needs nothing; STATUS and GC need only the
//! configuration. A missing or invalid variable is code 4.

use std::fmt;
use std::path::PathBuf;

use crate::cni::code;
use crate::cni::config::{NetConf, is_cni_name, is_interface_name};
use crate::cni::version::peek_version;
use crate::config::vars::Vars;
use crate::error::{Error, Result};

/// A CNI operation (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `ADD`: attach the container.
    Add,
    /// `DEL`: detach it.
    Del,
    /// `CHECK`: verify the attachment.
    Check,
    /// `VERSION`: list the supported versions.
    Version,
    /// `STATUS`: whether the plugin can serve ADD.
    Status,
    /// `GC`: remove leftovers of attachments that no longer exist.
    Gc,
}

impl Command {
    /// Every command, as `CNI_COMMAND` names them.
    pub const ALL: [Command; 6] = [
        Command::Add,
        Command::Del,
        Command::Check,
        Command::Version,
        Command::Status,
        Command::Gc,
    ];

    /// The name `CNI_COMMAND` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Status => "STATUS",
            Command::Gc => "GC",
        }
    }

    /// Reads `CNI_COMMAND`.
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        let text = vars
            .get("CNI_COMMAND")
            .ok_or_else(|| not_set("CNI_COMMAND"))?;
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| {
                env_error(
                    "CNI_COMMAND",
                    format!("{text:?} is not one of ADD, DEL, CHECK, VERSION, STATUS, GC"),
                )
            })
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pod, from `CNI_ARGS` (`K8S_POD_NAME`, `K8S_POD_NAMESPACE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pod {
    /// `K8S_POD_NAME`.
    pub name: Option<String>,
    /// `K8S_POD_NAMESPACE`.
    pub namespace: Option<String>,
}

/// The container an ADD, CHECK or DEL is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// `CNI_CONTAINERID`.
    pub id: String,
    /// `CNI_IFNAME`: the plugin's interface in the container.
    pub ifname: String,
    /// The pod, when the runtime named it.
    pub pod: Pod,
}

/// What is asked, with what each command needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// ADD, into the namespace at `netns`.
    Add {
        /// The container.
        container: Container,
        /// `CNI_NETNS`.
        netns: PathBuf,
        /// The configuration.
        config: NetConf,
    },
    /// CHECK, in the namespace at `netns`.
    Check {
        /// The container.
        container: Container,
        /// `CNI_NETNS`.
        netns: PathBuf,
        /// The configuration, with `prevResult`.
        config: NetConf,
    },
    /// DEL; `netns` is `None` when the runtime gave none (it may be gone).
    Del {
        /// The container.
        container: Container,
        /// `CNI_NETNS`, if given.
        netns: Option<PathBuf>,
        /// The configuration.
        config: NetConf,
    },
    /// VERSION, asking for `requested` (the `cniVersion` on stdin, if any).
    Version {
        /// The requested version as written.
        requested: Option<String>,
    },
    /// STATUS.
    Status {
        /// The configuration.
        config: NetConf,
    },
    /// GC.
    Gc {
        /// The configuration.
        config: NetConf,
    },
}

/// A validated invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The command and what it needs.
    pub action: Action,
    /// `CNI_PATH`: where the runtime keeps plugins (this plugin delegates to none).
    pub cni_path: Vec<PathBuf>,
}

impl Request {
    /// Reads the invocation from `vars` and the configuration bytes `stdin`.
    pub fn parse(vars: &Vars, stdin: &[u8]) -> Result<Self> {
        vars.check_utf8()?;
        let command = Command::from_vars(vars)?;
        let container = || container(vars);
        let netns = || netns(vars);
        let action = match command {
            Command::Version => Action::Version {
                requested: peek_version(stdin),
            },
            Command::Add => Action::Add {
                container: container()?,
                netns: netns()?.ok_or_else(|| not_set("CNI_NETNS"))?,
                config: NetConf::parse(stdin)?,
            },
            Command::Check => Action::Check {
                container: container()?,
                netns: netns()?.ok_or_else(|| not_set("CNI_NETNS"))?,
                config: NetConf::parse(stdin)?,
            },
            Command::Del => Action::Del {
                container: container()?,
                netns: netns()?,
                config: NetConf::parse(stdin)?,
            },
            Command::Status => Action::Status {
                config: NetConf::parse(stdin)?,
            },
            Command::Gc => Action::Gc {
                config: NetConf::parse(stdin)?,
            },
        };
        let cni_path = vars
            .get("CNI_PATH")
            .map(|paths| {
                paths
                    .split(':')
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Request { action, cni_path })
    }
}

fn container(vars: &Vars) -> Result<Container> {
    let id = vars
        .get("CNI_CONTAINERID")
        .ok_or_else(|| not_set("CNI_CONTAINERID"))?;
    if !is_cni_name(id) {
        return Err(env_error(
            "CNI_CONTAINERID",
            format!(
                "{id:?} must start with a letter or digit and hold only letters, digits, `_`, `.` and `-`"
            ),
        ));
    }
    let ifname = vars
        .get("CNI_IFNAME")
        .ok_or_else(|| not_set("CNI_IFNAME"))?;
    if !is_interface_name(ifname) {
        return Err(env_error(
            "CNI_IFNAME",
            format!("{ifname:?} is not an interface name (1 to 15 bytes, no `/`, `:` or spaces)"),
        ));
    }
    Ok(Container {
        id: id.to_owned(),
        ifname: ifname.to_owned(),
        pod: pod(vars.get("CNI_ARGS").unwrap_or(""))?,
    })
}

fn netns(vars: &Vars) -> Result<Option<PathBuf>> {
    match vars.get("CNI_NETNS") {
        None => Ok(None),
        Some(path) if path.starts_with('/') => Ok(Some(PathBuf::from(path))),
        Some(path) => Err(env_error(
            "CNI_NETNS",
            format!("{path:?} is not an absolute path"),
        )),
    }
}

/// Reads `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`; keys other than the pod's
/// are ignored, as are empty pairs.
fn pod(args: &str) -> Result<Pod> {
    let mut pod = Pod::default();
    let mut seen = Vec::new();
    for pair in args.split(';').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(env_error(
                "CNI_ARGS",
                format!("{pair:?} is not a KEY=VALUE pair"),
            ));
        };
        let slot = match key {
            "K8S_POD_NAME" => &mut pod.name,
            "K8S_POD_NAMESPACE" => &mut pod.namespace,
            _ => continue,
        };
        if seen.contains(&key) {
            return Err(env_error(
                "CNI_ARGS",
                format!("{key} appears more than once in {args:?}"),
            ));
        }
        seen.push(key);
        *slot = Some(value.to_owned()).filter(|v| !v.is_empty());
    }
    Ok(pod)
}

fn env_error(var: &str, message: String) -> Error {
    Error::cni(code::INVALID_ENVIRONMENT, format!("{var}: {message}"))
}

fn not_set(var: &str) -> Error {
    env_error(var, "is required but not set".into())
}

#[cfg(test)]
mod tests;
