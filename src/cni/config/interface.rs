//! `interfaceType` and `interfaceArgs`: the kind of interface the plugin makes and
//! its arguments, validated. The routed kinds (`routed`, `aws-elastic-ip`, SPEC
//! section 11) take only their own arguments: an argument of another kind, or one no
//! kind has, is an error naming it, as is a value of the wrong form.

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use crate::cni::json::{Fields, invalid, quote};
use crate::error::Result;

/// The interface to create and its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceKind {
    /// `macvlan` (the default), with its mode.
    Macvlan(MacvlanMode),
    /// `ipvlan`, with its mode.
    Ipvlan(IpvlanMode),
    /// `routed`: a veth pair whose node end the node routes (SPEC section 11).
    Routed,
    /// `aws-elastic-ip`: `routed`, and EC2 delivers the source to this node.
    AwsElasticIp,
}

impl InterfaceKind {
    /// The `interfaceType` it is.
    pub fn type_name(self) -> &'static str {
        match self {
            InterfaceKind::Macvlan(_) => "macvlan",
            InterfaceKind::Ipvlan(_) => "ipvlan",
            InterfaceKind::Routed => "routed",
            InterfaceKind::AwsElasticIp => "aws-elastic-ip",
        }
    }

    /// Whether the node routes the source to a veth pair (`routed`, `aws-elastic-ip`).
    pub fn is_routed(self) -> bool {
        matches!(self, InterfaceKind::Routed | InterfaceKind::AwsElasticIp)
    }
}

/// `interfaceArgs.mode` of a macvlan interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// `bridge` (the default).
    Bridge,
    /// `private`.
    Private,
    /// `vepa`.
    Vepa,
    /// `passthru`.
    Passthru,
}

/// `interfaceArgs.mode` of an ipvlan interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    /// `l2` (the default).
    L2,
    /// `l3`.
    L3,
    /// `l3s`.
    L3s,
}

/// The Elastic IP to associate with the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElasticIp {
    /// `interfaceArgs.allocationId` (`eipalloc-...`).
    Allocation(String),
    /// `interfaceArgs.publicIp`: the Elastic IP's address, looked up by ADD.
    PublicIp(Ipv4Addr),
}

/// The arguments of `aws-elastic-ip`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsArgs {
    /// `interfaceArgs.networkInterfaceId`: the node's ENI on the master; when absent
    /// it is found by the master's MAC address, else its private IPv4 address.
    pub network_interface_id: Option<String>,
    /// The Elastic IP, if any: without one only the private address is assigned.
    pub elastic_ip: Option<ElasticIp>,
}

/// `interfaceType` and `interfaceArgs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// The kind of interface and its mode.
    pub kind: InterfaceKind,
    /// `master`: the host interface; when absent the setup picks it.
    pub master: Option<String>,
    /// `mtu` (68 to 65535); when absent the master's.
    pub mtu: Option<u16>,
    /// `proxyArp` (routed kinds): the node answers ARP (NDP) for the source on the
    /// master.
    pub proxy_arp: bool,
    /// The arguments of `aws-elastic-ip` (`None` for every other kind).
    pub aws: Option<AwsArgs>,
}

/// The `interfaceArgs` keys each kind takes.
fn arguments_of(kind: InterfaceKind) -> &'static [&'static str] {
    match kind {
        InterfaceKind::Macvlan(_) | InterfaceKind::Ipvlan(_) => &["master", "mode", "mtu"],
        InterfaceKind::Routed => &["master", "mtu", "proxyArp"],
        InterfaceKind::AwsElasticIp => &[
            "master",
            "mtu",
            "proxyArp",
            "networkInterfaceId",
            "allocationId",
            "publicIp",
        ],
    }
}

/// Arguments that only the routed kinds take (refused for macvlan and ipvlan; other
/// keys stay accepted there, as they always were).
const ROUTED_ONLY: [&str; 4] = ["proxyArp", "networkInterfaceId", "allocationId", "publicIp"];

impl InterfaceSpec {
    /// Reads `interfaceType` and `interfaceArgs` of the configuration `conf`.
    pub fn parse(conf: &Fields<'_>) -> Result<Self> {
        let none = Map::new();
        let map = conf.object("interfaceArgs")?.unwrap_or(&none);
        let args = Fields::new(map, "interfaceArgs");
        let kind = parse_kind(conf, &args)?;
        let type_name = kind.type_name();
        for key in map.keys().filter(|key| args.get(key).is_some()) {
            let known = arguments_of(kind).contains(&key.as_str());
            if !known && (kind.is_routed() || ROUTED_ONLY.contains(&key.as_str())) {
                return Err(invalid(
                    &args.path(key),
                    format!(
                        "is not an argument of interfaceType {type_name} (it takes {})",
                        arguments_of(kind).join(", ")
                    ),
                ));
            }
        }
        let master = args.string("master")?;
        if let Some(name) = master.filter(|name| !super::is_interface_name(name)) {
            return Err(invalid(
                "interfaceArgs.master",
                format!("{name:?} is not an interface name"),
            ));
        }
        let proxy_arp = match args.get("proxyArp") {
            None => false,
            Some(Value::Bool(on)) => *on,
            Some(other) => {
                return Err(invalid(
                    "interfaceArgs.proxyArp",
                    format!("{} is not true or false", quote(other)),
                ));
            }
        };
        Ok(InterfaceSpec {
            kind,
            master: master.map(str::to_owned),
            mtu: args.get("mtu").map(parse_mtu).transpose()?,
            proxy_arp,
            aws: match kind {
                InterfaceKind::AwsElasticIp => Some(parse_aws(&args)?),
                _ => None,
            },
        })
    }
}

/// `interfaceType`, with the mode of the kinds that have one.
fn parse_kind(conf: &Fields<'_>, args: &Fields<'_>) -> Result<InterfaceKind> {
    let mode_text = args.string("mode")?;
    let mode = mode_text.map(str::to_ascii_lowercase);
    let bad_mode = |kind: &str, modes: &str| {
        let text = mode_text.unwrap_or_default();
        invalid(
            "interfaceArgs.mode",
            format!("{text:?} is not {kind} mode: {modes}"),
        )
    };
    Ok(match conf.string("interfaceType")?.unwrap_or("macvlan") {
        "macvlan" => InterfaceKind::Macvlan(match mode.as_deref() {
            None | Some("bridge") => MacvlanMode::Bridge,
            Some("private") => MacvlanMode::Private,
            Some("vepa") => MacvlanMode::Vepa,
            Some("passthru") => MacvlanMode::Passthru,
            Some(_) => return Err(bad_mode("a macvlan", "bridge, private, vepa or passthru")),
        }),
        "ipvlan" => InterfaceKind::Ipvlan(match mode.as_deref() {
            None | Some("l2") => IpvlanMode::L2,
            Some("l3") => IpvlanMode::L3,
            Some("l3s") => IpvlanMode::L3s,
            Some(_) => return Err(bad_mode("an ipvlan", "l2, l3 or l3s")),
        }),
        "routed" => InterfaceKind::Routed,
        "aws-elastic-ip" => InterfaceKind::AwsElasticIp,
        other => {
            return Err(invalid(
                "interfaceType",
                format!("{other:?} is not supported: macvlan, ipvlan, routed or aws-elastic-ip"),
            ));
        }
    })
}

/// The arguments of `aws-elastic-ip`.
fn parse_aws(args: &Fields<'_>) -> Result<AwsArgs> {
    let id = |key: &str, prefix: &str| -> Result<Option<String>> {
        let Some(text) = args.string(key)? else {
            return Ok(None);
        };
        match is_aws_id(text, prefix) {
            true => Ok(Some(text.to_owned())),
            false => Err(invalid(
                &args.path(key),
                format!("{text:?} is not an ID of the form {prefix}- and 8 or 17 hex digits"),
            )),
        }
    };
    let network_interface_id = id("networkInterfaceId", "eni")?;
    let allocation = id("allocationId", "eipalloc")?;
    let public_ip = args
        .string("publicIp")?
        .map(|text| {
            text.parse::<Ipv4Addr>()
                .ok()
                .filter(|ip| !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast())
                .ok_or_else(|| {
                    invalid(
                        "interfaceArgs.publicIp",
                        format!("{text:?} is not an IPv4 unicast address (Elastic IPs are IPv4)"),
                    )
                })
        })
        .transpose()?;
    let elastic_ip = match (allocation, public_ip) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "interfaceArgs.publicIp",
                "give allocationId or publicIp, not both",
            ));
        }
        (Some(allocation), None) => Some(ElasticIp::Allocation(allocation)),
        (None, Some(ip)) => Some(ElasticIp::PublicIp(ip)),
        (None, None) => None,
    };
    Ok(AwsArgs {
        network_interface_id,
        elastic_ip,
    })
}

/// Whether `text` is an EC2 resource ID of `prefix` (`eni`, `eipalloc`): the prefix, a
/// dash and 8 or 17 lower-case hex digits.
pub fn is_aws_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            matches!(hex.len(), 8 | 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// `interfaceArgs.mtu`: a number, or a string of digits as the Go plugin took it.
fn parse_mtu(value: &Value) -> Result<u16> {
    let number = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(text)
            if text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0') =>
        {
            text.parse().ok()
        }
        _ => None,
    };
    number
        .filter(|n| (68..=65535).contains(n))
        .map(|n| n as u16)
        .ok_or_else(|| {
            invalid(
                "interfaceArgs.mtu",
                format!("{} is not a whole number from 68 to 65535", quote(value)),
            )
        })
}

#[cfg(test)]
mod tests;
