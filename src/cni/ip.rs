//! The `ip` object of the configuration, or one of `podIP` (pod name -> the same
//! object): the interface's addresses (the first of each family is its source), the
//! gateways (one a family), and the redirect list; and the choice of the one that
//! applies to a pod.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::cni::code;
use crate::cni::json::{Fields, invalid};
use crate::config::family::Family;
use crate::config::redirect::{Destination, first_without_source, parse_cni_destinations};
use crate::config::router::{SourceAddress, edge_of, parse_gateway, parse_source_address};
use crate::error::{Error, Result};
use crate::setup::firewall::{NatInterfaces, Rule, nat_rules_on};

/// The addresses, gateways and redirect list of the plugin's interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The first address of each family, in the order given: the address SNAT of that
    /// family rewrites to.
    pub sources: Vec<SourceAddress>,
    /// The other `addresses`, each with its field (ADD refuses them: one address a
    /// family per attachment).
    pub additional: Vec<(String, SourceAddress)>,
    /// `gateway`: one address, or one a family separated by a comma; a family
    /// without one finds it on the master's network.
    pub gateways: Vec<IpAddr>,
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
        let mut sources: Vec<SourceAddress> = Vec::new();
        let mut additional: Vec<(String, SourceAddress)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let field = format!("{addresses_field}[{i}]");
            let address = plain_prefix(text)
                .and_then(|()| parse_source_address(text))
                .map_err(|reason| invalid(&field, reason))?;
            if sources
                .iter()
                .chain(additional.iter().map(|(_, a)| a))
                .any(|a| a.address == address.address)
            {
                return Err(invalid(
                    &field,
                    format!("{text:?} repeats an earlier address"),
                ));
            }
            match sources.iter().any(|s| s.family() == address.family()) {
                true => additional.push((field, address)),
                false => sources.push(address),
            }
        }
        let gateways = match fields.string("gateway")? {
            Some(text) => parse_gateways(&fields.path("gateway"), text, &sources, &additional)?,
            None => Vec::new(),
        };
        let entries = fields.strings("destinations")?.unwrap_or_default();
        let destinations = parse_cni_destinations(&entries)
            .map_err(|e| Error::cni(code::INVALID_NETWORK_CONFIG, format!("{path}.{e}")))?;
        let has_source = |family| sources.iter().any(|s| s.family() == family);
        let entries = entries.iter().map(String::as_str);
        if let Some((entry, family)) = first_without_source(entries, &destinations, has_source) {
            return Err(invalid(
                &fields.path("destinations"),
                format!("entry {entry:?} is {family}, but addresses has no {family} address"),
            ));
        }
        Ok(IpConfig {
            sources,
            additional,
            gateways,
            destinations,
        })
    }

    /// Every address, each family's source first.
    pub fn addresses(&self) -> impl Iterator<Item = &SourceAddress> {
        self.sources
            .iter()
            .chain(self.additional.iter().map(|(_, a)| a))
    }

    /// The configured gateway of `family`.
    pub fn gateway(&self, family: Family) -> Option<IpAddr> {
        self.gateways
            .iter()
            .copied()
            .find(|g| Family::of(*g) == family)
    }

    /// The plugin's NAT rules of the family of `source`: DNAT of its `destinations`
    /// for traffic arriving on the pod's other interfaces, then SNAT to `source` of
    /// what leaves by `ifname`.
    pub fn nat_rules(&self, ifname: &str, source: &SourceAddress) -> Vec<Rule> {
        nat_rules_on(
            &NatInterfaces::plugin(ifname),
            source.address,
            &self.destinations,
        )
    }
}

/// A `/prefix` of `text` in plain digits (`/024`, `/+24` are refused, as the plugin
/// always did).
fn plain_prefix(text: &str) -> std::result::Result<(), String> {
    match text.split_once('/') {
        Some((address, prefix))
            if prefix.parse::<u8>().map(|n| n.to_string()).as_deref() != Ok(prefix) =>
        {
            let family = match address.contains(':') {
                true => Family::V6,
                false => Family::V4,
            };
            let max = family.max_prefix();
            Err(format!(
                "{text:?} has a prefix length that is not from 1 to {max}"
            ))
        }
        _ => Ok(()),
    }
}

/// `gateway` (at `field`): one address a family, each of a family `sources` has, not
/// one of the addresses nor an edge of their subnets.
fn parse_gateways(
    field: &str,
    text: &str,
    sources: &[SourceAddress],
    additional: &[(String, SourceAddress)],
) -> Result<Vec<IpAddr>> {
    let mut gateways: Vec<IpAddr> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let gateway = parse_gateway(entry, None).map_err(|reason| invalid(field, reason))?;
        let family = Family::of(gateway);
        if gateways.iter().any(|g| Family::of(*g) == family) {
            return Err(invalid(
                field,
                format!("{text:?} has two {family} gateways: one a family"),
            ));
        }
        if !sources.iter().any(|s| s.family() == family) {
            return Err(invalid(
                field,
                format!("{entry:?} is an {family} gateway, but addresses has no {family} address"),
            ));
        }
        let all = || sources.iter().chain(additional.iter().map(|(_, a)| a));
        if all().any(|a| a.address == gateway) {
            return Err(invalid(field, format!("{entry:?} is one of the addresses")));
        }
        if let Some((edge, on)) = all().find_map(|a| edge_of(gateway, a).map(|edge| (edge, a))) {
            return Err(invalid(
                field,
                format!("{entry:?} is the {edge} address of the subnet of {on}"),
            ));
        }
        gateways.push(gateway);
    }
    Ok(gateways)
}

mod pods;

pub use pods::{Addressing, PodIpEntry, PodPattern};

#[cfg(test)]
mod tests;
