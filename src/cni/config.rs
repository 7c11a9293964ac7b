//! The network configuration on stdin (SPEC section 7, the OpenShift
//! egress-router-cni format), validated into a [`NetConf`].
//!
//! Unknown keys are accepted and ignored; `ipConfig` is refused as unsupported.
//! Every error is one line naming the JSON field and quoting the value.

use serde_json::Value;

use crate::cni::ip::{Addressing, IpConfig};

mod interface;

use crate::cni::json::{Fields, invalid, parse_object};
pub use interface::{
    AwsArgs, ElasticIp, InterfaceKind, InterfaceSpec, IpvlanMode, MacvlanMode, is_aws_id,
};

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
    /// `metrics_file` as given: where to count commands for node_exporter, once
    /// [`MetricsFile::parse`] takes it (checked like `log_file`).
    ///
    /// [`MetricsFile::parse`]: crate::cni::metrics_file::MetricsFile::parse
    pub metrics_file: Option<String>,
    /// `prevResult`, as given (CHECK and DEL).
    pub prev_result: Option<Value>,
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
        let metrics_file = conf.string("metrics_file")?;
        Ok(NetConf {
            cni_version,
            name: name.to_owned(),
            plugin_type,
            addressing,
            interface,
            log_file: log_file.map(str::to_owned),
            log_level,
            metrics_file: metrics_file.map(str::to_owned),
            prev_result: conf.get("prevResult").cloned(),
        })
    }

    /// The addresses for the pod named `pod` (`K8S_POD_NAME`), see [`Addressing::select`].
    pub fn ip_config(&self, pod: Option<&str>) -> Result<&IpConfig> {
        self.addressing.select(pod)
    }
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
