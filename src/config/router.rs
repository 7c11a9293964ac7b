//! Router configuration (SPEC section 2), read from a [`Vars`] source.
//!
//! envy maps the variables onto a raw struct of optional strings; validation
//! then turns each into a typed value, or an error naming the variable and
//! quoting the value.

use serde::Deserialize;

use crate::config::family::Family;
use crate::config::ha::HaConfig;
use crate::config::lines;
use crate::config::metrics_address::MetricsAddress;
use crate::config::redirect::{Destination, first_without_source, parse_destinations};
use crate::config::vars::Vars;
use crate::error::{Error, Result};

/// The name of the router's egress interface.
pub const MACVLAN: &str = "macvlan0";

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

/// Validated router configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// `EGRESS_SOURCE` and `EGRESS_GATEWAY`: one pair a family, IPv4 first.
    pub egress: Vec<EgressPair>,
    /// `EGRESS_ROUTER_MODE`.
    pub mode: RouterMode,
    /// `EGRESS_DESTINATION` (empty in the proxy modes when unset).
    pub destinations: Vec<Destination>,
    /// `EGRESS_ROUTER_IPTABLES_BACKEND`.
    pub backend: BackendChoice,
    /// `EGRESS_METRICS_ADDRESS`: the endpoint of `legacy` and `redirect`.
    pub metrics: MetricsAddress,
    /// `EGRESS_ROUTER_ALLOW_UNRESOLVED`: init succeeds while a name of
    /// `EGRESS_DESTINATION` has no usable address (its traffic refused until it has).
    pub allow_unresolved: bool,
    /// `EGRESS_HA_*`: high availability (VRRP), when `EGRESS_HA_VRID` is set.
    pub ha: Option<HaConfig>,
}

#[derive(Deserialize)]
struct RawRouterEnv {
    egress_source: Option<String>,
    egress_gateway: Option<String>,
    egress_destination: Option<String>,
    egress_router_mode: Option<String>,
    egress_router_iptables_backend: Option<String>,
    egress_router_allow_unresolved: Option<String>,
}

impl RouterConfig {
    /// The TCP port of the operations endpoint that the fallback entry of `family` must
    /// leave alone: set by `EGRESS_METRICS_ADDRESS` (on every address, or on one of
    /// `family`'s other than loopback) when `EGRESS_DESTINATION` has a fallback of that
    /// family; `None` otherwise (unset keeps the rules as they always were).
    pub fn metrics_exemption(&self, family: Family) -> Option<u16> {
        let MetricsAddress::Set { ip, port } = self.metrics else {
            return None;
        };
        let reachable = ip.is_none_or(|ip| Family::of(ip) == family && !ip.is_loopback());
        let fallback = self
            .destinations
            .iter()
            .any(|d| d.is_fallback() && d.redirects(family));
        (reachable && fallback).then_some(port)
    }

    /// The families the router has a source of (IPv4 first).
    pub fn families(&self) -> Vec<Family> {
        self.egress.iter().map(EgressPair::family).collect()
    }

    /// The source addresses with their prefixes, comma-separated, IPv4 first.
    pub fn sources(&self) -> String {
        let shown: Vec<String> = self.egress.iter().map(|p| p.source.to_string()).collect();
        shown.join(",")
    }

    /// Reads and validates the router variables; `mode` overrides `EGRESS_ROUTER_MODE`.
    pub fn from_vars(vars: &Vars, mode: Option<RouterMode>) -> Result<Self> {
        let raw: RawRouterEnv = envy::from_iter(vars.iter().filter(|(_, v)| !v.trim().is_empty()))
            .map_err(|e| Error::Usage(format!("reading the environment: {e}")))?;
        let mode = match (mode, raw.egress_router_mode.as_deref()) {
            (Some(mode), _) => mode,
            (None, Some(text)) => RouterMode::parse(text)?,
            (None, None) => RouterMode::Legacy,
        };
        let egress = parse_pairs(
            required("EGRESS_SOURCE", raw.egress_source.as_deref())?,
            raw.egress_gateway.as_deref().map(str::trim),
            MACVLAN,
        )?;
        let destinations = match raw.egress_destination.as_deref() {
            Some(text) => {
                let destinations = parse_destinations(text)?;
                check_families(text, &destinations, &egress)?;
                destinations
            }
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
        let allow_unresolved = match raw.egress_router_allow_unresolved.as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(Error::config(
                    "EGRESS_ROUTER_ALLOW_UNRESOLVED",
                    format!("{other:?} is not true or false"),
                ));
            }
        };
        Ok(RouterConfig {
            egress,
            mode,
            destinations,
            backend,
            metrics: MetricsAddress::from_vars(vars)?,
            allow_unresolved,
            ha: HaConfig::from_vars(vars)?,
        })
    }
}

fn required<'a>(var: &'static str, value: Option<&'a str>) -> Result<&'a str> {
    value.map(str::trim).ok_or_else(|| not_set(var))
}

fn not_set(var: &'static str) -> Error {
    Error::config(var, "is required but not set")
}

/// Every destination (parsed from the list `text`, one an entry) has an egress address
/// of its family; an error quotes the line as written.
fn check_families(text: &str, destinations: &[Destination], egress: &[EgressPair]) -> Result<()> {
    let has_source = |family| egress.iter().any(|pair| pair.family() == family);
    match first_without_source(lines::entries(text), destinations, has_source) {
        Some((line, family)) => Err(Error::config(
            "EGRESS_DESTINATION",
            format!(
                "line {line:?}: an {family} destination, but EGRESS_SOURCE has no {family} address"
            ),
        )),
        None => Ok(()),
    }
}

mod egress;

use egress::parse_pairs;
pub use egress::{EgressPair, SourceAddress, edge_of, parse_gateway, parse_source_address};

#[cfg(test)]
mod tests;
