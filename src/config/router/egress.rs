//! `EGRESS_SOURCE` and `EGRESS_GATEWAY` (SPEC sections 2 and 10): a comma-separated
//! list of at most one address per family each, paired by family. The readers of one
//! address return the reason alone, so the CNI plugin's fields share them.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::config::address::{ipv4_in_ipv6, is_unicast};
use crate::config::family::Family;
use crate::error::{Error, Result};

/// An address the router owns on its egress interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceAddress {
    /// The address itself.
    pub address: IpAddr,
    /// Prefix length put on the interface (the whole address when none was given).
    pub prefix_len: u8,
}

impl SourceAddress {
    /// Its family.
    pub fn family(&self) -> Family {
        Family::of(self.address)
    }

    /// The subnet its prefix names (`198.51.100.0/24` of `198.51.100.99/24`).
    pub fn network(&self) -> ipnet::IpNet {
        ipnet::IpNet::new(self.address, self.prefix_len)
            .map(|net| net.trunc())
            .unwrap_or_else(|_| ipnet::IpNet::from(self.address))
    }
}

impl fmt::Display for SourceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// One family's egress: the source address and the next hop, of the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressPair {
    /// The address connections leave from.
    pub source: SourceAddress,
    /// The next hop on the egress interface (an IPv6 one may be link-local).
    pub gateway: IpAddr,
}

impl EgressPair {
    /// Its family.
    pub fn family(&self) -> Family {
        self.source.family()
    }
}

/// The pairs of `sources` (`EGRESS_SOURCE`) and `gateways` (`EGRESS_GATEWAY`, required:
/// its absence is reported after the sources' errors), IPv4 first; link-local
/// gateways are on `interface`.
pub fn parse_pairs(
    sources: &str,
    gateways: Option<&str>,
    interface: &str,
) -> Result<Vec<EgressPair>> {
    const SOURCE: &str = "EGRESS_SOURCE";
    const GATEWAY: &str = "EGRESS_GATEWAY";
    let sources = by_family(SOURCE, sources, parse_source_address, SourceAddress::family)?;
    let gateways = gateways.ok_or_else(|| Error::config(GATEWAY, "is required but not set"))?;
    let gateways = by_family(
        GATEWAY,
        gateways,
        |text| parse_gateway(text, Some(interface)),
        |gateway| Family::of(*gateway),
    )?;
    let mut pairs = Vec::new();
    for family in [Family::V4, Family::V6] {
        let source = sources.iter().find(|(f, _, _)| *f == family);
        let gateway = gateways.iter().find(|(f, _, _)| *f == family);
        match (source, gateway) {
            (Some((_, _, source)), Some((_, text, gateway))) => {
                if *gateway == source.address {
                    return Err(Error::config(
                        GATEWAY,
                        format!("{text:?} is the same address as EGRESS_SOURCE"),
                    ));
                }
                // (IPv4 gateways were never checked so; they stay as accepted before.)
                if let (Family::V6, Some(edge)) = (family, edge_of(*gateway, source)) {
                    return Err(Error::config(
                        GATEWAY,
                        format!("{text:?} is the {edge} address of the subnet of {source}"),
                    ));
                }
                pairs.push(EgressPair {
                    source: *source,
                    gateway: *gateway,
                });
            }
            (Some((_, text, _)), None) => {
                return Err(Error::config(
                    GATEWAY,
                    format!("has no {family} gateway for EGRESS_SOURCE {text:?}"),
                ));
            }
            (None, Some((_, text, _))) => {
                return Err(Error::config(
                    GATEWAY,
                    format!(
                        "{text:?} is an {family} gateway, but EGRESS_SOURCE has no {family} address"
                    ),
                ));
            }
            (None, None) => {}
        }
    }
    Ok(pairs)
}

/// The entries of a comma-separated list, each read by `parse`, at most one a family.
fn by_family<'a, T: Copy>(
    var: &'static str,
    list: &'a str,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
    family_of: impl Fn(&T) -> Family,
) -> Result<Vec<(Family, &'a str, T)>> {
    let mut found: Vec<(Family, &str, T)> = Vec::new();
    for text in list.split(',').map(str::trim) {
        if text.is_empty() {
            return Err(Error::config(
                var,
                format!("{list:?} has an empty entry in its comma-separated list"),
            ));
        }
        let value = parse(text).map_err(|reason| Error::config(var, reason))?;
        let family = family_of(&value);
        if let Some((_, earlier, _)) = found.iter().find(|(f, _, _)| *f == family) {
            return Err(Error::config(
                var,
                format!(
                    "{earlier:?} and {text:?} are both {family}: give at most one address per family"
                ),
            ));
        }
        found.push((family, text, value));
    }
    Ok(found)
}

/// A source address: unicast IPv4 or global/unique-local IPv6, with an optional
/// `/prefix` (none: the address alone, /32 or /128), not the network, broadcast or
/// subnet-router address of its subnet.
pub fn parse_source_address(text: &str) -> std::result::Result<SourceAddress, String> {
    let (address_text, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address = match address_text.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) if is_unicast(v4) => IpAddr::V4(v4),
        Ok(IpAddr::V6(v6)) => IpAddr::V6(host_ipv6(text, v6)?),
        _ => {
            return Err(format!(
                "{text:?} is not a unicast IPv4 or IPv6 address with optional /prefix"
            ));
        }
    };
    let family = Family::of(address);
    let max = family.max_prefix();
    // Any spelling `u8` reads (`/024`, `/+24`), as EGRESS_SOURCE always took.
    let prefix_len = match prefix.map(str::parse::<u8>) {
        None => max,
        Some(Ok(len)) if (1..=max).contains(&len) => len,
        Some(_) => {
            return Err(format!(
                "{text:?} has a prefix length that is not from 1 to {max}"
            ));
        }
    };
    let source = SourceAddress {
        address,
        prefix_len,
    };
    match edge_of(address, &source) {
        Some(edge) => Err(format!(
            "{text:?} is the {edge} address of its subnet, not a host address"
        )),
        None => Ok(source),
    }
}

/// An IPv6 address a host can own on the outside network (of `text`, for errors).
fn host_ipv6(text: &str, v6: Ipv6Addr) -> std::result::Result<Ipv6Addr, String> {
    if let Some(v4) = ipv4_in_ipv6(v6) {
        Err(format!(
            "{text:?} is an IPv4 address written as IPv6: write {v4}"
        ))
    } else if v6.is_unicast_link_local() {
        Err(format!(
            "{text:?} is link-local: every interface has its own; give a global or unique local address"
        ))
    } else if v6.is_unspecified() || v6.is_loopback() || v6.is_multicast() {
        Err(format!("{text:?} is not a unicast IPv6 address"))
    } else {
        Ok(v6)
    }
}

/// `"network"`, `"broadcast"` or `"subnet-router anycast"` when `address` is that
/// edge of the subnet of `on` (subnets with room for two hosts or more).
pub fn edge_of(address: IpAddr, on: &SourceAddress) -> Option<&'static str> {
    match (address, on.address) {
        (IpAddr::V4(address), IpAddr::V4(own)) if on.prefix_len <= 30 => {
            let subnet = ipnet::Ipv4Net::new(own, on.prefix_len).ok()?;
            if address == subnet.network() {
                Some("network")
            } else if address == subnet.broadcast() {
                Some("broadcast")
            } else {
                None
            }
        }
        (IpAddr::V6(address), IpAddr::V6(own)) if on.prefix_len <= 126 => {
            let subnet = ipnet::Ipv6Net::new(own, on.prefix_len).ok()?;
            (address == subnet.network()).then_some("subnet-router anycast")
        }
        _ => None,
    }
}

/// A gateway: unicast IPv4, or IPv6 (link-local included: `fe80::1`, or
/// `fe80::1%INTERFACE` when it names `interface`, the egress interface, when that is
/// known by name).
pub fn parse_gateway(text: &str, interface: Option<&str>) -> std::result::Result<IpAddr, String> {
    let (address_text, zone) = match text.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (text, None),
    };
    match address_text.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) if zone.is_none() && is_unicast(v4) => Ok(IpAddr::V4(v4)),
        Ok(IpAddr::V6(v6)) => {
            let link_local = v6.is_unicast_link_local();
            match zone {
                Some(_) if !link_local => {
                    Err(format!("{text:?}: only a link-local address takes a %zone"))
                }
                Some(zone) if Some(zone) != interface => Err(match interface {
                    Some(interface) => {
                        format!("{text:?} names interface {zone:?}: the gateway is on {interface}")
                    }
                    None => format!(
                        "{text:?}: leave out the %zone, the gateway is on the plugin's interface"
                    ),
                }),
                _ if link_local => Ok(IpAddr::V6(v6)),
                _ => host_ipv6(text, v6).map(IpAddr::V6),
            }
        }
        _ => Err(format!("{text:?} is not a unicast IPv4 or IPv6 address")),
    }
}
