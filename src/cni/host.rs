//! The node's side of an attachment, decided from what the node has (pure): which
//! interface the new one hangs off (the master), which gateway it routes through,
//! and the names it goes by while it is there.

use std::net::IpAddr;

use ipnet::IpNet;

use super::code;
use crate::config::address::is_link_local_v6;
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

/// The master: `explicit` when given; else the one interface whose subnet holds the
/// sources (all of them that any interface holds: two families on two interfaces is an
/// error), else a gateway, tried in order; else the interface of the default routes.
/// The error names what was considered.
pub fn choose_master(
    explicit: Option<&str>,
    sources: &[IpAddr],
    gateways: &[IpAddr],
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
    let mut by_source: Vec<(IpAddr, &str)> = Vec::new();
    for source in sources {
        if let Some(holder) = holder(source, addresses)? {
            by_source.push((*source, holder));
        }
    }
    match by_source.as_slice() {
        [(_, one), rest @ ..] if rest.iter().all(|(_, other)| other == one) => {
            return Ok(one.to_string());
        }
        [] => {}
        split => {
            let shown: Vec<String> = split.iter().map(|(s, i)| format!("{s} on {i}")).collect();
            return Err(Error::cni(
                code::INVALID_NETWORK_CONFIG,
                format!(
                    "interfaceArgs.master: the sources' subnets are on different node interfaces ({}); one attachment has one interface",
                    shown.join(", ")
                ),
            ));
        }
    }
    for gateway in gateways {
        if let Some(holder) = holder(gateway, addresses)? {
            return Ok(holder.to_string());
        }
    }
    let wanted: Vec<&IpAddr> = sources.iter().chain(gateways).collect();
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

/// The one node interface among `addresses` whose subnet holds `wanted` (none for a
/// link-local address: every interface has fe80::/64); several is an error.
fn holder<'a>(wanted: &IpAddr, addresses: &'a [HostAddress]) -> Result<Option<&'a str>> {
    if is_link_local_v6(*wanted) {
        return Ok(None);
    }
    let mut holding: Vec<&str> = addresses
        .iter()
        .filter(|a| a.net.trunc().contains(wanted))
        .map(|a| a.interface.as_str())
        .collect();
    holding.sort_unstable();
    holding.dedup();
    match holding.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(Error::cni(
            code::INVALID_NETWORK_CONFIG,
            format!(
                "interfaceArgs.master: several node interfaces hold {wanted}'s subnet ({}); name one",
                many.join(", ")
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
    defaults
        .iter()
        .filter(|d| d.interface == master)
        .filter_map(|d| d.gateway)
        .filter(|g| g.is_ipv4() == source_net.addr().is_ipv4())
        .find(|g| source_net.trunc().contains(g) || is_link_local_v6(*g))
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
    format!("egr{:012x}", container_hash(container_id))
}

/// The name of the node end of a routed attachment's veth pair (it stays on the
/// node): `egv` and the same 12 hex digits as [`temporary_name`].
pub fn node_end_name(container_id: &str) -> String {
    format!("egv{:012x}", container_hash(container_id))
}

/// 48 bits of the FNV-1a hash of a container ID.
fn container_hash(container_id: &str) -> u64 {
    let hash = container_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    hash & 0xffff_ffff_ffff
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
    pub replies4: bool,
    /// Whether the pod had IPv6 default routes of its own, kept for replies.
    pub replies6: bool,
}

const ALIAS_PREFIX: &str = "egress-router ";
const ALIAS_REPLIES: &str = " replies";
const ALIAS_REPLIES6: &str = " replies6";

impl Owner {
    /// The alias that records this owner.
    pub fn alias(&self) -> String {
        let replies = if self.replies4 { ALIAS_REPLIES } else { "" };
        let replies6 = if self.replies6 { ALIAS_REPLIES6 } else { "" };
        format!("{ALIAS_PREFIX}{}{replies}{replies6}", self.container)
    }

    /// Whether replies of `family` were kept.
    pub fn replies_of(&self, family: Family) -> bool {
        match family {
            Family::V4 => self.replies4,
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
        let (container, replies4) = match rest.strip_suffix(ALIAS_REPLIES) {
            Some(container) => (container, true),
            None => (rest, false),
        };
        (!container.is_empty() && !container.contains(' ')).then(|| Owner {
            container: container.to_owned(),
            replies4,
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
mod tests;
