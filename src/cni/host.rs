//! The node's side of an attachment, decided from what the node has (pure): which
//! interface the new one hangs off (the master), which gateway it routes through,
//! and the names it goes by while it is there.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::code;
use crate::error::{Error, Result};

/// One IPv4 address of a node interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    /// The interface's name.
    pub interface: String,
    /// The address and its prefix.
    pub net: Ipv4Net,
}

/// A default route of the node's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDefault {
    /// The interface it leaves by.
    pub interface: String,
    /// Its gateway, if it has one.
    pub gateway: Option<Ipv4Addr>,
}

/// The master: `explicit` when given; else the one interface whose subnet holds the
/// source (or the gateway); else the interface of the default route. The error names
/// what was considered.
pub fn choose_master(
    explicit: Option<&str>,
    source: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
    addresses: &[HostAddress],
    defaults: &[HostDefault],
) -> Result<String> {
    if let Some(name) = explicit {
        return match addresses.iter().any(|a| a.interface == name)
            || defaults.iter().any(|d| d.interface == name)
        {
            true => Ok(name.to_string()),
            false => Err(Error::cni(
                code::INVALID_NETWORK_CONFIG,
                format!(
                    "interfaceArgs.master: node interface {name:?} has no IPv4 address and no default route here"
                ),
            )),
        };
    }
    for wanted in std::iter::once(source).chain(gateway) {
        let mut holding: Vec<&str> = addresses
            .iter()
            .filter(|a| a.net.trunc().contains(&wanted))
            .map(|a| a.interface.as_str())
            .collect();
        holding.dedup();
        match holding.as_slice() {
            [one] => return Ok(one.to_string()),
            [] => {}
            many => {
                return Err(Error::cni(
                    code::INVALID_NETWORK_CONFIG,
                    format!(
                        "interfaceArgs.master: several node interfaces hold {wanted}'s subnet ({}); name one",
                        many.join(", ")
                    ),
                ));
            }
        }
    }
    match defaults {
        [only] => Ok(only.interface.clone()),
        _ => Err(Error::cni(
            code::INVALID_NETWORK_CONFIG,
            format!(
                "interfaceArgs.master: no node interface holds {source}'s subnet (considered: {}) and the default route does not name one (found: {})",
                describe_addresses(addresses),
                describe_defaults(defaults)
            ),
        )),
    }
}

/// The gateway: `explicit` when given; else the gateway of the node's default route
/// through `master`, when it lies in the source's subnet.
pub fn choose_gateway(
    explicit: Option<Ipv4Addr>,
    master: &str,
    source_net: Ipv4Net,
    defaults: &[HostDefault],
) -> Result<Ipv4Addr> {
    if let Some(gateway) = explicit {
        return Ok(gateway);
    }
    defaults
        .iter()
        .filter(|d| d.interface == master)
        .filter_map(|d| d.gateway)
        .find(|g| source_net.trunc().contains(g))
        .ok_or_else(|| {
            Error::cni(
                code::INVALID_NETWORK_CONFIG,
                format!(
                    "gateway: not given, and the node has no default route via {master} in {source_net} to take it from (found: {})",
                    describe_defaults(defaults)
                ),
            )
        })
}

/// The interface's name while it is created on the node, before it moves into the
/// pod: unique per container, so that ADDs of different pods never collide.
pub fn temporary_name(container_id: &str) -> String {
    let hash = container_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("egr{:012x}", hash & 0xffff_ffff_ffff)
}

/// The alias that marks an interface as made by this plugin for `container_id`, so DEL
/// removes only what its ADD made.
pub fn owner_alias(container_id: &str) -> String {
    format!("egress-router {container_id}")
}

fn describe_addresses(addresses: &[HostAddress]) -> String {
    if addresses.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = addresses
        .iter()
        .map(|a| format!("{} {}", a.interface, a.net))
        .collect();
    shown.join(", ")
}

fn describe_defaults(defaults: &[HostDefault]) -> String {
    if defaults.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = defaults
        .iter()
        .map(|d| match d.gateway {
            Some(g) => format!("via {g} dev {}", d.interface),
            None => format!("dev {}", d.interface),
        })
        .collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(interface: &str, net: &str) -> HostAddress {
        HostAddress {
            interface: interface.into(),
            net: net.parse().unwrap(),
        }
    }

    fn default(interface: &str, gateway: &str) -> HostDefault {
        HostDefault {
            interface: interface.into(),
            gateway: Some(gateway.parse().unwrap()),
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn the_master_is_explicit_or_holds_the_subnet_or_carries_the_default() {
        let addresses = [
            addr("uplink0", "198.51.100.2/24"),
            addr("uplink1", "203.0.113.2/24"),
            addr("pod0", "192.0.2.65/26"),
        ];
        let defaults = [default("uplink1", "203.0.113.1")];
        let choose = |explicit, source: &str, gateway: Option<&str>| {
            choose_master(explicit, ip(source), gateway.map(ip), &addresses, &defaults)
        };
        assert_eq!(choose(None, "198.51.100.99", None).unwrap(), "uplink0");
        assert_eq!(
            choose(None, "192.0.2.200", Some("198.51.100.1")).unwrap(),
            "uplink0"
        );
        assert_eq!(choose(None, "192.0.2.200", None).unwrap(), "uplink1");
        assert_eq!(choose(Some("pod0"), "198.51.100.99", None).unwrap(), "pod0");
        let err = choose(Some("nope0"), "198.51.100.99", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"nope0\""), "{err}");
        let none = choose_master(None, ip("192.0.2.200"), None, &addresses, &[])
            .unwrap_err()
            .to_string();
        assert!(
            none.contains("uplink0 198.51.100.2/24") && none.contains("found: none"),
            "{none}"
        );
        let twice = [addr("a0", "198.51.100.2/24"), addr("b0", "198.51.100.3/24")];
        let err = choose_master(None, ip("198.51.100.99"), None, &twice, &defaults)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a0, b0"), "{err}");
    }

    #[test]
    fn the_gateway_is_explicit_or_the_masters_default_in_the_subnet() {
        let net: Ipv4Net = "198.51.100.99/24".parse().unwrap();
        let defaults = [
            default("uplink0", "198.51.100.1"),
            default("uplink1", "203.0.113.1"),
        ];
        assert_eq!(
            choose_gateway(None, "uplink0", net, &defaults).unwrap(),
            ip("198.51.100.1")
        );
        assert_eq!(
            choose_gateway(Some(ip("198.51.100.254")), "uplink0", net, &defaults).unwrap(),
            ip("198.51.100.254")
        );
        let err = choose_gateway(None, "uplink1", net, &defaults)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("gateway: ") && err.contains("via 203.0.113.1 dev uplink1"),
            "{err}"
        );
    }

    #[test]
    fn temporary_names_are_short_and_differ_per_container() {
        let a = temporary_name("0123456789abcdef0123456789abcdef");
        let b = temporary_name("0123456789abcdef0123456789abcdee");
        assert!(a.len() <= 15 && b.len() <= 15);
        assert_ne!(a, b);
        assert_eq!(a, temporary_name("0123456789abcdef0123456789abcdef"));
    }
}
