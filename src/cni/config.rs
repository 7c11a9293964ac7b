//! The network configuration on stdin (SPEC section 7, the OpenShift
//! egress-router-cni format), validated into a [`NetConf`].
//!
//! Unknown keys are accepted and ignored; `ipConfig` is refused as unsupported.
//! Every error is one line naming the JSON field and quoting the value.

use serde_json::{Map, Value};

use crate::cni::ip::{Addressing, IpConfig};
use crate::cni::json::{Fields, invalid, parse_object, quote};

use crate::cni::version::CniVersion;
use crate::error::Result;

/// A validated network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    /// `cniVersion`: the format of every answer.
    pub cni_version: CniVersion,
    /// `name` of the network.
    pub name: String,
    /// `type`: the plugin's name as the runtime found it.
    pub plugin_type: String,
    /// `ip` or `podIP`.
    pub addressing: Addressing,
    /// `interfaceType` and `interfaceArgs`.
    pub interface: InterfaceSpec,
    /// `log_file` as given: where to log besides stderr, once [`LogFile::parse`] takes
    /// it (the command checks it: DEL goes on without a log file it may not write).
    ///
    /// [`LogFile::parse`]: crate::cni::log_file::LogFile::parse
    pub log_file: Option<String>,
    /// `log_level`.
    pub log_level: Option<LogLevel>,
    /// `prevResult`, as given (CHECK and DEL).
    pub prev_result: Option<Value>,
}

/// The interface to create and its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceKind {
    /// `macvlan` (the default), with its mode.
    Macvlan(MacvlanMode),
    /// `ipvlan`, with its mode.
    Ipvlan(IpvlanMode),
}

impl InterfaceKind {
    /// The `interfaceType` (and kernel link type) it is.
    pub fn type_name(self) -> &'static str {
        match self {
            InterfaceKind::Macvlan(_) => "macvlan",
            InterfaceKind::Ipvlan(_) => "ipvlan",
        }
    }
}

/// `interfaceArgs.mode` of a macvlan interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// `bridge` (the default).
    Bridge,
    /// `private`.
    Private,
    /// `vepa`.
    Vepa,
    /// `passthru`.
    Passthru,
}

/// `interfaceArgs.mode` of an ipvlan interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    /// `l2` (the default).
    L2,
    /// `l3`.
    L3,
    /// `l3s`.
    L3s,
}

/// `interfaceType` and `interfaceArgs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// The kind of interface and its mode.
    pub kind: InterfaceKind,
    /// `master`: the host interface; when absent the setup picks it.
    pub master: Option<String>,
    /// `mtu` (68 to 65535); when absent the master's.
    pub mtu: Option<u16>,
}

/// `log_level`, as the Go plugin names its levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `panic`: nothing but failures that stop the plugin.
    Panic,
    /// `error`.
    Error,
    /// `verbose`.
    Verbose,
    /// `debug`.
    Debug,
}

impl NetConf {
    /// Parses and validates the configuration bytes read from stdin.
    pub fn parse(stdin: &[u8]) -> Result<Self> {
        let map = parse_object(stdin)?;
        let conf = Fields::new(&map, "");
        let cni_version = CniVersion::requested(conf.required_string("cniVersion")?)?;
        let name = conf.required_string("name")?;
        if !is_cni_name(name) {
            return Err(invalid(
                "name",
                format!(
                    "{name:?} must start with a letter or digit and hold only letters, digits, `_`, `.` and `-`"
                ),
            ));
        }
        let plugin_type = conf.required_string("type")?.to_owned();
        let addressing = Addressing::parse(&conf)?;
        let interface = InterfaceSpec::parse(&conf)?;
        let log_file = conf.string("log_file")?;
        let log_level = conf.string("log_level")?.map(LogLevel::parse).transpose()?;
        Ok(NetConf {
            cni_version,
            name: name.to_owned(),
            plugin_type,
            addressing,
            interface,
            log_file: log_file.map(str::to_owned),
            log_level,
            prev_result: conf.get("prevResult").cloned(),
        })
    }

    /// The addresses for the pod named `pod` (`K8S_POD_NAME`), see [`Addressing::select`].
    pub fn ip_config(&self, pod: Option<&str>) -> Result<&IpConfig> {
        self.addressing.select(pod)
    }
}

impl InterfaceSpec {
    fn parse(conf: &Fields<'_>) -> Result<Self> {
        let none = Map::new();
        let args = Fields::new(
            conf.object("interfaceArgs")?.unwrap_or(&none),
            "interfaceArgs",
        );
        let mode_text = args.string("mode")?;
        let mode = mode_text.map(str::to_ascii_lowercase);
        let bad_mode = |kind: &str, modes: &str| {
            let text = mode_text.unwrap_or_default();
            invalid(
                "interfaceArgs.mode",
                format!("{text:?} is not {kind} mode: {modes}"),
            )
        };
        let kind = match conf.string("interfaceType")?.unwrap_or("macvlan") {
            "macvlan" => InterfaceKind::Macvlan(match mode.as_deref() {
                None | Some("bridge") => MacvlanMode::Bridge,
                Some("private") => MacvlanMode::Private,
                Some("vepa") => MacvlanMode::Vepa,
                Some("passthru") => MacvlanMode::Passthru,
                Some(_) => return Err(bad_mode("a macvlan", "bridge, private, vepa or passthru")),
            }),
            "ipvlan" => InterfaceKind::Ipvlan(match mode.as_deref() {
                None | Some("l2") => IpvlanMode::L2,
                Some("l3") => IpvlanMode::L3,
                Some("l3s") => IpvlanMode::L3s,
                Some(_) => return Err(bad_mode("an ipvlan", "l2, l3 or l3s")),
            }),
            other => {
                return Err(invalid(
                    "interfaceType",
                    format!("{other:?} is not supported: macvlan or ipvlan"),
                ));
            }
        };
        let master = args.string("master")?;
        if let Some(name) = master.filter(|name| !is_interface_name(name)) {
            return Err(invalid(
                "interfaceArgs.master",
                format!("{name:?} is not an interface name"),
            ));
        }
        Ok(InterfaceSpec {
            kind,
            master: master.map(str::to_owned),
            mtu: args.get("mtu").map(parse_mtu).transpose()?,
        })
    }
}

/// `interfaceArgs.mtu`: a number, or a string of digits as the Go plugin took it.
fn parse_mtu(value: &Value) -> Result<u16> {
    let number = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(text)
            if text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0') =>
        {
            text.parse().ok()
        }
        _ => None,
    };
    number
        .filter(|n| (68..=65535).contains(n))
        .map(|n| n as u16)
        .ok_or_else(|| {
            invalid(
                "interfaceArgs.mtu",
                format!("{} is not a whole number from 68 to 65535", quote(value)),
            )
        })
}

impl LogLevel {
    fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "panic" => Ok(LogLevel::Panic),
            "error" => Ok(LogLevel::Error),
            "verbose" => Ok(LogLevel::Verbose),
            "debug" => Ok(LogLevel::Debug),
            _ => Err(invalid(
                "log_level",
                format!("{text:?} is not one of panic, error, verbose, debug"),
            )),
        }
    }
}

/// Whether `name` can name a Linux network interface: 1 to 15 bytes, not `.` or
/// `..`, without `/`, `:` or whitespace.
pub fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// Whether `text` is a valid container ID or network name in the CNI spec's sense:
/// a letter or digit, then letters, digits, `_`, `.` and `-`.
pub fn is_cni_name(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

#[cfg(test)]
mod tests;
