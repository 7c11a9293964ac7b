//! Building and reading route messages (pure).

use std::net::Ipv4Addr;

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

/// `destination/32 dev index scope link` in the main table.
pub fn host_route(index: u32, destination: Ipv4Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(destination, 32)
        .output_interface(index)
        .scope(RouteScope::Link)
        .build()
}

/// The gateway of a route.
pub fn route_gateway(route: &RouteMessage) -> Option<Ipv4Addr> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}

/// The preferred source address of a route.
pub fn route_pref_source(route: &RouteMessage) -> Option<Ipv4Addr> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::PrefSource(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}

/// `default via gateway dev index src source` in the main table.
pub fn default_route(index: u32, gateway: Ipv4Addr, source: Ipv4Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(index)
        .pref_source(source)
        .build()
}

/// A copy of `route` placed in routing table `table`.
pub fn in_table(route: &RouteMessage, table: u32) -> RouteMessage {
    let mut copy = route.clone();
    copy.attributes
        .retain(|a| !matches!(a, RouteAttribute::Table(_)));
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
    let mut text = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                Some(format!("{ip}/{}", route.header.destination_prefix_length))
            }
            _ => None,
        })
        .unwrap_or_else(|| "default".to_string());
    if let Some(gateway) = route_gateway(route) {
        text.push_str(&format!(" via {gateway}"));
    }
    if let Some(index) = route_interface(route) {
        text.push_str(&format!(" dev #{index}"));
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
