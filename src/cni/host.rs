//! The node's side of an attachment, decided from what the node has (pure): which
//! interface the new one hangs off (the master), which gateway it routes through,
//! and the names it goes by while it is there.

use std::net::IpAddr;

use ipnet::IpNet;

use super::code;
use crate::config::family::Family;
use crate::error::{Error, Result};

/// One address of a node interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    /// The interface's name.
    pub interface: String,
    /// The address and its prefix.
    pub net: IpNet,
}

/// A default route of the node's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDefault {
    /// The interface it leaves by.
    pub interface: String,
    /// Its gateway, if it has one.
    pub gateway: Option<IpAddr>,
}

/// The master: `explicit` when given; else the one interface whose subnet holds a
/// source (or a gateway), tried in order; else the interface of the default routes.
/// The error names what was considered.
pub fn choose_master(
    explicit: Option<&str>,
    wanted: &[IpAddr],
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
                    "interfaceArgs.master: node interface {name:?} has no address and no default route here"
                ),
            )),
        };
    }
    // Every interface has fe80::/64: a link-local address tells nothing.
    let telling = wanted
        .iter()
        .filter(|w| !matches!(w, IpAddr::V6(v6) if v6.is_unicast_link_local()));
    for wanted in telling {
        let mut holding: Vec<&str> = addresses
            .iter()
            .filter(|a| a.net.trunc().contains(wanted))
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
    let mut carrying: Vec<&str> = defaults.iter().map(|d| d.interface.as_str()).collect();
    carrying.sort_unstable();
    carrying.dedup();
    let shown: Vec<String> = wanted.iter().map(ToString::to_string).collect();
    match carrying.as_slice() {
        [only] => Ok(only.to_string()),
        _ => Err(Error::cni(
            code::INVALID_NETWORK_CONFIG,
            format!(
                "interfaceArgs.master: no node interface holds the subnet of {} (considered: {}) and the default routes do not name one (found: {})",
                shown.join(" or "),
                describe_addresses(addresses),
                describe_defaults(defaults)
            ),
        )),
    }
}

/// The gateway of the family of `source_net`: `explicit` when given; else the
/// gateway of the node's default route of that family through `master`, when it lies
/// in the source's subnet or is link-local (IPv6 routers announce themselves so).
pub fn choose_gateway(
    explicit: Option<IpAddr>,
    master: &str,
    source_net: IpNet,
    defaults: &[HostDefault],
) -> Result<IpAddr> {
    if let Some(gateway) = explicit {
        return Ok(gateway);
    }
    let link_local = |g: &IpAddr| matches!(g, IpAddr::V6(v6) if v6.is_unicast_link_local());
    defaults
        .iter()
        .filter(|d| d.interface == master)
        .filter_map(|d| d.gateway)
        .filter(|g| g.is_ipv4() == source_net.addr().is_ipv4())
        .find(|g| source_net.trunc().contains(g) || link_local(g))
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

/// Who made an interface, as its alias records it (`ip link show` shows it): the
/// container whose ADD made it, so that DEL removes only what that ADD made, and
/// whether that ADD kept the pod's own default routes for replies, so that CHECK knows
/// to expect them in the reply table even when every trace of them is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `CNI_CONTAINERID` of the ADD.
    pub container: String,
    /// Whether the pod had IPv4 default routes of its own, kept for replies.
    pub replies: bool,
    /// Whether the pod had IPv6 default routes of its own, kept for replies.
    pub replies6: bool,
}

const ALIAS_PREFIX: &str = "egress-router ";
const ALIAS_REPLIES: &str = " replies";
const ALIAS_REPLIES6: &str = " replies6";

impl Owner {
    /// The alias that records this owner.
    pub fn alias(&self) -> String {
        let replies = if self.replies { ALIAS_REPLIES } else { "" };
        let replies6 = if self.replies6 { ALIAS_REPLIES6 } else { "" };
        format!("{ALIAS_PREFIX}{}{replies}{replies6}", self.container)
    }

    /// Whether replies of `family` were kept.
    pub fn replies_of(&self, family: Family) -> bool {
        match family {
            Family::V4 => self.replies,
            Family::V6 => self.replies6,
        }
    }

    /// The owner an alias records; `None` for an alias this plugin did not write.
    pub fn parse(alias: &str) -> Option<Owner> {
        let rest = alias.strip_prefix(ALIAS_PREFIX)?;
        let (rest, replies6) = match rest.strip_suffix(ALIAS_REPLIES6) {
            Some(rest) => (rest, true),
            None => (rest, false),
        };
        let (container, replies) = match rest.strip_suffix(ALIAS_REPLIES) {
            Some(container) => (container, true),
            None => (rest, false),
        };
        (!container.is_empty() && !container.contains(' ')).then(|| Owner {
            container: container.to_owned(),
            replies,
            replies6,
        })
    }

    /// The owner recorded by `alias` when it is `container`'s.
    pub fn of(alias: Option<&str>, container: &str) -> Option<Owner> {
        alias
            .and_then(Owner::parse)
            .filter(|owner| owner.container == container)
    }
}

/// The error for an interface of type `kind` that the kernel refused to create on
/// `master`: a type the kernel lacks (`EOPNOTSUPP`, the module is not there) named as
/// such, any other refusal as it came.
pub fn creation_failure(kind: &str, master: &str, cause: Error) -> Error {
    const EOPNOTSUPP: i32 = 95;
    match cause.errno() {
        Some(EOPNOTSUPP) => Error::cni(
            code::PLUGIN_FAILURE,
            format!(
                "interfaceType {kind}: {kind} interfaces are not supported by this node's kernel (creating one on {master}: {cause}); use another interfaceType or load the {kind} module"
            ),
        ),
        _ => cause,
    }
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

    fn ip(s: &str) -> IpAddr {
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
            let wanted: Vec<IpAddr> = std::iter::once(ip(source)).chain(gateway.map(ip)).collect();
            choose_master(explicit, &wanted, &addresses, &defaults)
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
        let none = choose_master(None, &[ip("192.0.2.200")], &addresses, &[])
            .unwrap_err()
            .to_string();
        assert!(
            none.contains("uplink0 198.51.100.2/24") && none.contains("found: none"),
            "{none}"
        );
        let twice = [addr("a0", "198.51.100.2/24"), addr("b0", "198.51.100.3/24")];
        let err = choose_master(None, &[ip("198.51.100.99")], &twice, &defaults)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a0, b0"), "{err}");
    }

    #[test]
    fn the_gateway_is_explicit_or_the_masters_default_in_the_subnet() {
        let net: IpNet = "198.51.100.99/24".parse().unwrap();
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
    fn an_ipv6_gateway_is_found_by_family_and_may_be_link_local() {
        let net: IpNet = "2001:db8:1::99/64".parse().unwrap();
        let defaults = [
            default("uplink0", "198.51.100.1"),
            default("uplink0", "fe80::1"),
        ];
        assert_eq!(
            choose_gateway(None, "uplink0", net, &defaults).unwrap(),
            ip("fe80::1")
        );
        let v4: IpNet = "198.51.100.99/24".parse().unwrap();
        assert_eq!(
            choose_gateway(None, "uplink0", v4, &defaults).unwrap(),
            ip("198.51.100.1")
        );
        let elsewhere = [default("uplink0", "2001:db8:7::1")];
        assert!(choose_gateway(None, "uplink0", net, &elsewhere).is_err());
        // one interface carrying both families' defaults is the one default interface
        let addresses = [addr("uplink0", "2001:db8:1::2/64")];
        assert_eq!(
            choose_master(
                None,
                &[ip("2001:db8:5::99"), ip("fe80::1")],
                &addresses,
                &defaults
            )
            .unwrap(),
            "uplink0"
        );
    }

    #[test]
    fn a_type_the_kernel_lacks_is_named_and_other_refusals_pass_through() {
        let refused = |errno| {
            Error::io(
                "creating interface egr0",
                std::io::Error::from_raw_os_error(errno),
            )
        };
        let err = creation_failure("ipvlan", "uplink0", refused(95));
        assert!(matches!(err, Error::Cni { code: 100, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("interfaceType ipvlan: ipvlan interfaces are not supported by this node's kernel (creating one on uplink0: creating interface egr0: "),
            "{msg}"
        );
        assert!(msg.ends_with("load the ipvlan module"), "{msg}");
        let other = creation_failure("macvlan", "uplink0", refused(22));
        assert!(matches!(other, Error::Io { .. }), "{other:?}");
        let plain = creation_failure("macvlan", "uplink0", Error::State("x".into()));
        assert_eq!(plain.to_string(), "x");
    }

    #[test]
    fn the_alias_records_the_container_and_whether_replies_were_kept() {
        for (replies, replies6) in [(false, false), (true, false), (false, true), (true, true)] {
            let owner = Owner {
                container: "0123456789abcdef".into(),
                replies,
                replies6,
            };
            assert_eq!(Owner::parse(&owner.alias()), Some(owner.clone()));
            assert_eq!(
                Owner::of(Some(&owner.alias()), "0123456789abcdef"),
                Some(owner.clone())
            );
            assert_eq!(Owner::of(Some(&owner.alias()), "0123456789abcdee"), None);
        }
        // what earlier versions wrote: no replies mark
        assert_eq!(
            Owner::parse("egress-router abc"),
            Some(Owner {
                container: "abc".into(),
                replies: false,
                replies6: false,
            })
        );
        assert_eq!(
            Owner::parse("egress-router abc replies").map(|o| o.replies),
            Some(true)
        );
        for foreign in [
            "",
            "egress-router ",
            "egress-router a b",
            "uplink of rack 4",
            "egress-router  replies",
        ] {
            assert_eq!(Owner::parse(foreign), None, "{foreign:?}");
        }
        assert_eq!(Owner::of(None, "abc"), None);
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
