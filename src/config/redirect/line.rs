//! One entry of a redirect list: its fields, and where it sends traffic (an address, or
//! in `EGRESS_DESTINATION` a host name as the DNS proxy reads one).

use std::net::IpAddr;

use super::{Destination, Dialect, Protocol, Target};
use crate::config::address::{ipv4_in_ipv6, is_unicast};
use crate::config::family::Family;
use crate::config::names;

/// One entry, or why it is wrong.
pub(super) fn parse_line(line: &str, dialect: Dialect) -> Result<Destination, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [target] => Ok(Destination::Fallback(parse_target(target, dialect)?)),
        [port, proto, target] | [port, proto, target, _] => Ok(Destination::Port {
            port: parse_port(port)?,
            protocol: parse_protocol(proto, dialect)?,
            target: parse_target(target, dialect)?,
            target_port: fields.get(3).map(|p| parse_port(p)).transpose()?,
        }),
        _ => Err("expected `IP`, `PORT PROTO IP` or `PORT PROTO IP DESTPORT`".into()),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    names::parse_port(text).ok_or_else(|| format!("port {text:?} is not a number from 1 to 65535"))
}

fn parse_protocol(text: &str, dialect: Dialect) -> Result<Protocol, String> {
    let name = if dialect.operator_forms {
        text.to_ascii_lowercase()
    } else {
        text.to_owned()
    };
    match name.as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" if dialect.operator_forms => Ok(Protocol::Sctp),
        _ if dialect.operator_forms => Err(format!("protocol {text:?} is not tcp, udp or sctp")),
        _ => Err(format!("protocol {text:?} is not tcp or udp")),
    }
}

/// An address, or a host name by the DNS proxy's rules: text with a `:` or a numeric
/// last label is meant as an address and gets every check of one; anything else must be
/// a host name with at least one dot. Names only where the dialect takes them.
fn parse_target(text: &str, dialect: Dialect) -> Result<Target, String> {
    let host = text.split_once('/').map_or(text, |(host, _)| host);
    if text.starts_with('[') || host.contains(':') || names::ends_in_number(host) {
        return parse_address(text, dialect).map(Target::Address);
    }
    match names::normalize_host_name(host) {
        Some(name) if name.contains('.') && !dialect.names => Err(format!(
            "{text:?} is a host name: the CNI plugin sets up once and cannot follow DNS; \
             name targets need the router's init container and its redirect container \
             (EGRESS_DESTINATION)"
        )),
        Some(name) if name.contains('.') && host == text => Ok(Target::Name(name)),
        _ => Err(format!(
            "{text:?} is not an IPv4 or IPv6 address, nor a host name with at least one dot"
        )),
    }
}

fn parse_address(text: &str, dialect: Dialect) -> Result<IpAddr, String> {
    if text.starts_with('[') {
        return Err(format!(
            "{text:?}: write an IPv6 address without brackets, and a port as a field of its own"
        ));
    }
    let (address_text, prefix) = match text.split_once('/') {
        Some((address, prefix)) if dialect.operator_forms => (address, Some(prefix)),
        _ => (text, None),
    };
    let address: IpAddr = address_text
        .parse()
        .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 address"))?;
    let max = Family::of(address).max_prefix();
    if let Some(prefix) = prefix
        && !prefix
            .parse::<u8>()
            .is_ok_and(|p| p <= max && p.to_string() == prefix)
    {
        return Err(format!(
            "{text:?} has a prefix length that is not from 0 to {max}"
        ));
    }
    match address {
        IpAddr::V4(v4) if !is_unicast(v4) => Err(format!("{text:?} is not a unicast address")),
        IpAddr::V6(v6) => match ipv4_in_ipv6(v6) {
            Some(v4) => Err(format!(
                "{text:?} is an IPv4 address written as IPv6: write {v4}"
            )),
            _ if v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unicast_link_local() =>
            {
                Err(format!(
                    "{text:?} is not a unicast address a router can forward to"
                ))
            }
            _ => Ok(address),
        },
        IpAddr::V4(_) => Ok(address),
    }
}
