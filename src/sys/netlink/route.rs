//! Building and reading route messages (pure).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope,
};
use rtnetlink::RouteMessageBuilder;

/// The routing table a route belongs to.
pub fn route_table(route: &RouteMessage) -> u32 {
    route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table))
}

/// The output interface of a route.
pub fn route_interface(route: &RouteMessage) -> Option<u32> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

/// `destination/32 dev index scope link` (IPv6: `destination/128 dev index`) in the
/// main table.
pub fn host_route(index: u32, destination: IpAddr) -> RouteMessage {
    match destination {
        IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(v4, 32)
            .output_interface(index)
            .scope(RouteScope::Link)
            .build(),
        IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(v6, 128)
            .output_interface(index)
            .build(),
    }
}

/// An address attribute's address.
fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

/// The destination of a route (`0.0.0.0/0`, `::/0` for a default route).
pub fn route_destination(route: &RouteMessage) -> Option<ipnet::IpNet> {
    let length = route.header.destination_prefix_length;
    let address = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(address) => ip_of(address),
            _ => None,
        })
        .or(match route.header.address_family {
            netlink_packet_route::AddressFamily::Inet => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            netlink_packet_route::AddressFamily::Inet6 => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            _ => None,
        })?;
    ipnet::IpNet::new(address, length).ok()
}

/// The gateway of a route.
pub fn route_gateway(route: &RouteMessage) -> Option<IpAddr> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(address) => ip_of(address),
        _ => None,
    })
}

/// The destination address of a route, without its prefix length (none for a default
/// route).
pub fn route_destination_ip(route: &RouteMessage) -> Option<IpAddr> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(address) => ip_of(address),
        _ => None,
    })
}

/// The preferred source address of a route.
pub fn route_pref_source(route: &RouteMessage) -> Option<IpAddr> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::PrefSource(address) => ip_of(address),
        _ => None,
    })
}

/// `default via gateway dev index src source` in the main table (`source` is left
/// out unless of the gateway's family).
pub fn default_route(index: u32, gateway: IpAddr, source: IpAddr) -> RouteMessage {
    let mut route = match gateway {
        IpAddr::V4(gateway) => RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build(),
        IpAddr::V6(gateway) => RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build(),
    };
    if source.is_ipv4() == gateway.is_ipv4() {
        route
            .attributes
            .push(RouteAttribute::PrefSource(source.into()));
    }
    route
}

/// `default via gateway dev index` in the main table.
pub fn default_via(index: u32, gateway: IpAddr) -> RouteMessage {
    match gateway {
        IpAddr::V4(gateway) => RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build(),
        IpAddr::V6(gateway) => RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build(),
    }
}

/// `route` marked with `protocol` (`proto N`).
pub fn with_protocol(mut route: RouteMessage, protocol: u8) -> RouteMessage {
    route.header.protocol = protocol.into();
    route
}

/// The protocol (`proto`) of a route.
pub fn route_protocol(route: &RouteMessage) -> u8 {
    route.header.protocol.into()
}

/// A copy of `route` placed in routing table `table`, without an expiry (a route a
/// router advertisement made would vanish from the copy with its lifetime).
pub fn in_table(route: &RouteMessage, table: u32) -> RouteMessage {
    let mut copy = route.clone();
    copy.attributes.retain(|a| {
        !matches!(
            a,
            RouteAttribute::Table(_) | RouteAttribute::Expires(_) | RouteAttribute::CacheInfo(_)
        )
    });
    if table > 255 {
        copy.header.table = 0;
        copy.attributes.push(RouteAttribute::Table(table));
    } else {
        copy.header.table = table as u8;
    }
    copy
}

/// A short `ip route`-like rendering for error messages and logs.
pub fn describe_route(route: &RouteMessage) -> String {
    describe_route_named(route, |_| None)
}

/// [`describe_route`] with the interface named as `ip route` names it, when
/// `name_of` knows its index (`#INDEX` otherwise).
pub fn describe_route_named(
    route: &RouteMessage,
    name_of: impl Fn(u32) -> Option<String>,
) -> String {
    let mut text = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(address) => {
                ip_of(address).map(|ip| format!("{ip}/{}", route.header.destination_prefix_length))
            }
            _ => None,
        })
        .unwrap_or_else(|| "default".to_string());
    if let Some(gateway) = route_gateway(route) {
        text.push_str(&format!(" via {gateway}"));
    }
    if let Some(index) = route_interface(route) {
        match name_of(index) {
            Some(name) => text.push_str(&format!(" dev {name}")),
            None => text.push_str(&format!(" dev #{index}")),
        }
    }
    if let Some(source) = route_pref_source(route) {
        text.push_str(&format!(" src {source}"));
    }
    let table = route_table(route);
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        text.push_str(&format!(" table {table}"));
    }
    text
}
