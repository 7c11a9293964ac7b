//! `podIP`: pod name patterns and the choice of the `ip` object that applies to a pod.

use super::IpConfig;
use crate::cni::code;
use crate::cni::json::{Fields, invalid, quote};
use crate::error::{Error, Result};

/// The path of a `podIP` entry: `podIP["name"]`.
fn pod_field(key: &str) -> String {
    format!("podIP[{key:?}]")
}

/// A key of `podIP`: a pod name, or a name prefix followed by `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodPattern {
    /// Exactly this pod.
    Exact(String),
    /// Every pod whose name starts with this (`"*"` alone: every pod).
    Prefix(String),
}

impl PodPattern {
    /// Reads a `podIP` key; `*` may only end it.
    pub fn parse(key: &str) -> Result<Self> {
        let field = pod_field(key);
        let (name, wildcard) = match key.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (key, false),
        };
        if key.is_empty() {
            return Err(invalid(&field, "a pod name must not be empty"));
        }
        if name.contains('*') {
            return Err(invalid(
                &field,
                format!("{key:?}: `*` may only end a pod name"),
            ));
        }
        Ok(match wildcard {
            true => PodPattern::Prefix(name.to_owned()),
            false => PodPattern::Exact(name.to_owned()),
        })
    }
}

/// One `podIP` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIpEntry {
    /// Which pods it is for.
    pub pattern: PodPattern,
    /// Their configuration.
    pub ip: IpConfig,
}

/// Where the addresses come from: `ip` for every pod, or `podIP` per pod name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// `ip`.
    Ip(IpConfig),
    /// `podIP`, in key order.
    PodIp(Vec<PodIpEntry>),
}

impl Addressing {
    /// Reads `ip` or `podIP` of the configuration (exactly one must be given;
    /// `ipConfig` is not supported).
    pub fn parse(conf: &Fields<'_>) -> Result<Self> {
        if conf.get("ipConfig").is_some() {
            return Err(Error::cni(
                code::UNSUPPORTED_FIELD,
                "ipConfig: is not supported; give the addresses in `ip` or `podIP`",
            ));
        }
        match (conf.object("ip")?, conf.object("podIP")?) {
            (Some(ip), None) => Ok(Addressing::Ip(IpConfig::parse(ip, "ip")?)),
            (None, Some(pods)) if pods.is_empty() => Err(invalid("podIP", "has no entries")),
            (None, Some(pods)) => pods
                .iter()
                .map(|(key, value)| {
                    let field = pod_field(key);
                    let object = value.as_object().ok_or_else(|| {
                        invalid(&field, format!("{} is not an object", quote(value)))
                    })?;
                    Ok(PodIpEntry {
                        pattern: PodPattern::parse(key)?,
                        ip: IpConfig::parse(object, &field)?,
                    })
                })
                .collect::<Result<_>>()
                .map(Addressing::PodIp),
            (Some(_), Some(_)) => Err(invalid(
                "ip",
                "give exactly one of `ip` and `podIP`, not both",
            )),
            (None, None) => Err(invalid("ip", "is required (or `podIP`)")),
        }
    }

    /// The configuration for the pod `pod` (`K8S_POD_NAME`): `ip`, or the `podIP`
    /// entry naming it exactly, else the one with the longest matching prefix.
    pub fn select(&self, pod: Option<&str>) -> Result<&IpConfig> {
        let entries = match self {
            Addressing::Ip(ip) => return Ok(ip),
            Addressing::PodIp(entries) => entries,
        };
        let pod = pod.ok_or_else(|| {
            Error::cni(
                code::INVALID_ENVIRONMENT,
                "CNI_ARGS: K8S_POD_NAME is not set, and podIP needs it to choose the addresses",
            )
        })?;
        let exact = entries
            .iter()
            .find(|e| matches!(&e.pattern, PodPattern::Exact(name) if name == pod));
        let longest_prefix = || {
            entries
                .iter()
                .filter_map(|e| match &e.pattern {
                    PodPattern::Prefix(prefix) if pod.starts_with(prefix.as_str()) => {
                        Some((prefix.len(), e))
                    }
                    _ => None,
                })
                .max_by_key(|(len, _)| *len)
                .map(|(_, e)| e)
        };
        exact
            .or_else(longest_prefix)
            .map(|e| &e.ip)
            .ok_or_else(|| invalid("podIP", format!("no entry matches pod {pod:?}")))
    }
}
