//! Router configuration (SPEC section 2), read from a [`Vars`] source.
//!
//! envy maps the variables onto a raw struct of optional strings; validation
//! then turns each into a typed value, or an error naming the variable and
//! quoting the value.

use std::fmt;
use std::net::Ipv4Addr;

use serde::Deserialize;

use crate::config::address::is_unicast;
use crate::config::metrics_address::MetricsAddress;
use crate::config::redirect::{Destination, parse_destinations};
use crate::config::vars::Vars;
use crate::error::{Error, Result};

/// What the router does after validating its configuration (`EGRESS_ROUTER_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterMode {
    /// Network and NAT, then exit (init container of redirect mode).
    Init,
    /// Network and NAT, then stay up until SIGTERM (single privileged container).
    Legacy,
    /// Network only, then exit (init container of the HTTP proxy).
    HttpProxy,
    /// Network only, then exit (init container of the DNS proxy).
    DnsProxy,
    /// Touch nothing; print the NAT rules.
    UnitTest,
}

impl RouterMode {
    fn parse(text: &str) -> Result<Self> {
        match text.trim() {
            "init" => Ok(RouterMode::Init),
            "legacy" => Ok(RouterMode::Legacy),
            "http-proxy" => Ok(RouterMode::HttpProxy),
            "dns-proxy" => Ok(RouterMode::DnsProxy),
            "unit-test" => Ok(RouterMode::UnitTest),
            other => Err(Error::config(
                "EGRESS_ROUTER_MODE",
                format!("{other:?} is not one of init, legacy, http-proxy, dns-proxy, unit-test"),
            )),
        }
    }

    /// Whether this mode installs the redirect NAT rules (and so needs `EGRESS_DESTINATION`).
    pub fn uses_nat(self) -> bool {
        matches!(
            self,
            RouterMode::Init | RouterMode::Legacy | RouterMode::UnitTest
        )
    }
}

/// Which iptables implementation applies the rules (`EGRESS_ROUTER_IPTABLES_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// Detect from what the namespace already uses.
    Auto,
    /// iptables-nft.
    Nft,
    /// iptables-legacy.
    Legacy,
}

/// The address the router owns on `macvlan0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceAddress {
    /// The address itself.
    pub address: Ipv4Addr,
    /// Prefix length put on the interface (32 when none was given).
    pub prefix_len: u8,
}

impl fmt::Display for SourceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Validated router configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// `EGRESS_SOURCE`.
    pub source: SourceAddress,
    /// `EGRESS_GATEWAY`.
    pub gateway: Ipv4Addr,
    /// `EGRESS_ROUTER_MODE`.
    pub mode: RouterMode,
    /// `EGRESS_DESTINATION` (empty in the proxy modes when unset).
    pub destinations: Vec<Destination>,
    /// `EGRESS_ROUTER_IPTABLES_BACKEND`.
    pub backend: BackendChoice,
    /// `EGRESS_METRICS_ADDRESS`: the endpoint of `legacy` and `redirect`.
    pub metrics: MetricsAddress,
}

#[derive(Deserialize)]
struct RawRouterEnv {
    egress_source: Option<String>,
    egress_gateway: Option<String>,
    egress_destination: Option<String>,
    egress_router_mode: Option<String>,
    egress_router_iptables_backend: Option<String>,
}

impl RouterConfig {
    /// Reads and validates the router variables; `mode` overrides `EGRESS_ROUTER_MODE`.
    pub fn from_vars(vars: &Vars, mode: Option<RouterMode>) -> Result<Self> {
        let raw: RawRouterEnv = envy::from_iter(vars.iter().filter(|(_, v)| !v.trim().is_empty()))
            .map_err(|e| Error::Usage(format!("reading the environment: {e}")))?;
        let mode = match (mode, raw.egress_router_mode.as_deref()) {
            (Some(mode), _) => mode,
            (None, Some(text)) => RouterMode::parse(text)?,
            (None, None) => RouterMode::Legacy,
        };
        let source = parse_source(required("EGRESS_SOURCE", raw.egress_source.as_deref())?)?;
        let gateway_text = required("EGRESS_GATEWAY", raw.egress_gateway.as_deref())?;
        let gateway = parse_host_address("EGRESS_GATEWAY", gateway_text)?;
        if gateway == source.address {
            return Err(Error::config(
                "EGRESS_GATEWAY",
                format!("{gateway_text:?} is the same address as EGRESS_SOURCE"),
            ));
        }
        let destinations = match raw.egress_destination.as_deref() {
            Some(text) => parse_destinations(text)?,
            None if mode.uses_nat() => return Err(not_set("EGRESS_DESTINATION")),
            None => Vec::new(),
        };
        let backend = match raw.egress_router_iptables_backend.as_deref().map(str::trim) {
            None | Some("auto") => BackendChoice::Auto,
            Some("nft") => BackendChoice::Nft,
            Some("legacy") => BackendChoice::Legacy,
            Some(other) => {
                return Err(Error::config(
                    "EGRESS_ROUTER_IPTABLES_BACKEND",
                    format!("{other:?} is not one of auto, nft, legacy"),
                ));
            }
        };
        Ok(RouterConfig {
            source,
            gateway,
            mode,
            destinations,
            backend,
            metrics: MetricsAddress::from_vars(vars)?,
        })
    }
}

fn required<'a>(var: &'static str, value: Option<&'a str>) -> Result<&'a str> {
    value.map(str::trim).ok_or_else(|| not_set(var))
}

fn not_set(var: &'static str) -> Error {
    Error::config(var, "is required but not set")
}

fn parse_source(text: &str) -> Result<SourceAddress> {
    const VAR: &str = "EGRESS_SOURCE";
    let (addr_text, prefix_len) = match text.split_once('/') {
        Some((addr, prefix)) => match prefix.parse::<u8>() {
            Ok(p @ 1..=32) => (addr, p),
            _ => {
                return Err(Error::config(
                    VAR,
                    format!("{text:?} has a prefix length that is not from 1 to 32"),
                ));
            }
        },
        None => (text, 32),
    };
    let address = parse_host_address(VAR, addr_text).map_err(|_| {
        Error::config(
            VAR,
            format!("{text:?} is not a unicast IPv4 address with optional /prefix"),
        )
    })?;
    if prefix_len <= 30 {
        let subnet = ipnet::Ipv4Net::new(address, prefix_len).expect("prefix checked above");
        let edge = if address == subnet.network() {
            Some("network")
        } else if address == subnet.broadcast() {
            Some("broadcast")
        } else {
            None
        };
        if let Some(edge) = edge {
            return Err(Error::config(
                VAR,
                format!("{text:?} is the {edge} address of its subnet, not a host address"),
            ));
        }
    }
    Ok(SourceAddress {
        address,
        prefix_len,
    })
}

fn parse_host_address(var: &'static str, text: &str) -> Result<Ipv4Addr> {
    match text.parse::<Ipv4Addr>() {
        Ok(address) if is_unicast(address) => Ok(address),
        _ => Err(Error::config(
            var,
            format!("{text:?} is not a unicast IPv4 address"),
        )),
    }
}

#[cfg(test)]
mod tests;
