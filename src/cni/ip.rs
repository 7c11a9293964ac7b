//! The `ip` object of the configuration, or one of `podIP` (pod name -> the same
//! object): the interface's addresses (the first is the source), the gateway, and
//! the redirect list; and the choice of the one that applies to a pod.

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use crate::cni::code;
use crate::cni::json::{Fields, invalid, quote};
use crate::config::address::is_unicast;
use crate::config::redirect::{Destination, parse_cni_destinations};
use crate::config::router::SourceAddress;
use crate::error::{Error, Result};
use crate::setup::firewall::{NatInterfaces, Rule, nat_rules_on};

/// The addresses, gateway and redirect list of the plugin's interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The first of `addresses`: the address SNAT rewrites to.
    pub source: SourceAddress,
    /// The other `addresses`, also put on the interface.
    pub additional: Vec<SourceAddress>,
    /// `gateway`; when absent the setup finds it on the master's network.
    pub gateway: Option<Ipv4Addr>,
    /// `destinations` (empty: no redirect, only SNAT).
    pub destinations: Vec<Destination>,
}

impl IpConfig {
    /// Reads and validates the object `map` found at `path` (`ip`, `podIP["x"]`).
    pub fn parse(map: &Map<String, Value>, path: &str) -> Result<Self> {
        let fields = Fields::new(map, path);
        let addresses_field = fields.path("addresses");
        let texts = fields.strings("addresses")?.unwrap_or_default();
        if texts.is_empty() {
            return Err(invalid(
                &addresses_field,
                "needs at least one address (the source)",
            ));
        }
        let mut addresses: Vec<SourceAddress> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let field = format!("{addresses_field}[{i}]");
            let address = parse_address(&field, text)?;
            if addresses.iter().any(|a| a.address == address.address) {
                return Err(invalid(
                    &field,
                    format!("{text:?} repeats an earlier address"),
                ));
            }
            addresses.push(address);
        }
        let gateway = match fields.string("gateway")? {
            Some(text) => {
                let field = fields.path("gateway");
                let gateway = parse_host(&field, text)?;
                if addresses.iter().any(|a| a.address == gateway) {
                    return Err(invalid(&field, format!("{text:?} is one of the addresses")));
                }
                if let Some((edge, on)) = addresses
                    .iter()
                    .find_map(|a| edge_of(gateway, a).map(|edge| (edge, a)))
                {
                    return Err(invalid(
                        &field,
                        format!("{text:?} is the {edge} address of the subnet of {on}"),
                    ));
                }
                Some(gateway)
            }
            None => None,
        };
        let destinations = match fields.strings("destinations")? {
            Some(entries) => parse_cni_destinations(&entries)
                .map_err(|e| Error::cni(code::INVALID_NETWORK_CONFIG, format!("{path}.{e}")))?,
            None => Vec::new(),
        };
        let source = addresses.remove(0);
        Ok(IpConfig {
            source,
            additional: addresses,
            gateway,
            destinations,
        })
    }

    /// Every address, the source first.
    pub fn addresses(&self) -> impl Iterator<Item = &SourceAddress> {
        std::iter::once(&self.source).chain(&self.additional)
    }

    /// The plugin's NAT rules: DNAT of `destinations` for traffic arriving on the
    /// pod's other interfaces, then SNAT to the source of what leaves by `ifname`.
    pub fn nat_rules(&self, ifname: &str) -> Vec<Rule> {
        nat_rules_on(
            &NatInterfaces::plugin(ifname),
            self.source.address,
            &self.destinations,
        )
    }
}

/// An address of `addresses`: unicast IPv4, optional `/prefix` (1 to 32, default
/// 32), not an edge of its subnet (see [`edge_of`]).
fn parse_address(field: &str, text: &str) -> Result<SourceAddress> {
    let (address_text, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address = parse_host(field, address_text).map_err(|_| {
        invalid(
            field,
            format!("{text:?} is not a unicast IPv4 address with optional /prefix"),
        )
    })?;
    let prefix_len = match prefix.map(|p| (p, p.parse::<u8>())) {
        None => 32,
        Some((p, Ok(len @ 1..=32))) if len.to_string() == p => len,
        Some(_) => {
            return Err(invalid(
                field,
                format!("{text:?} has a prefix length that is not from 1 to 32"),
            ));
        }
    };
    let parsed = SourceAddress {
        address,
        prefix_len,
    };
    if let Some(edge) = edge_of(address, &parsed) {
        return Err(invalid(
            field,
            format!("{text:?} is the {edge} address of its subnet, not a host address"),
        ));
    }
    Ok(parsed)
}

/// `"network"` or `"broadcast"` when `address` is that edge of the subnet of `on`
/// (subnets of /30 or wider; /31 and /32 have no such edges).
fn edge_of(address: Ipv4Addr, on: &SourceAddress) -> Option<&'static str> {
    let subnet = ipnet::Ipv4Net::new(on.address, on.prefix_len).ok()?;
    if on.prefix_len > 30 {
        None
    } else if address == subnet.network() {
        Some("network")
    } else if address == subnet.broadcast() {
        Some("broadcast")
    } else {
        None
    }
}

fn parse_host(field: &str, text: &str) -> Result<Ipv4Addr> {
    match text.parse::<Ipv4Addr>() {
        Ok(address) if is_unicast(address) => Ok(address),
        _ => Err(invalid(
            field,
            format!("{text:?} is not a unicast IPv4 address"),
        )),
    }
}

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

#[cfg(test)]
mod tests;
