//! The part of the setup a proxy relies on, checked without privileges (netlink reads
//! only): the egress interface is up with an egress address, and for each family it
//! has an address of, the main table's default route of that family leaves by it.
//! This is what makes proxied connections leave from `EGRESS_SOURCE`; the proxy
//! container is not told the addresses themselves.

use std::net::IpAddr;

use netlink_packet_route::route::RouteHeader;

use super::MACVLAN;
use crate::config::address::is_link_local_v6;
use crate::config::family::Family;
use crate::error::Result;
use crate::sys::netlink::{Link, Netlink, route_interface};

/// What was found of the egress path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPath {
    /// The egress interface, when it exists.
    pub link: Option<Link>,
    /// Its addresses the proxies dial from (configured, usable, not link-local).
    pub addresses: Vec<IpAddr>,
    /// The families whose main-table default route leaves by it.
    pub default_routes: Vec<Family>,
}

/// Reads the egress path of the namespace `nl` is bound to.
pub async fn observe(nl: &Netlink) -> Result<EgressPath> {
    let Some((link, _)) = nl.find_link(MACVLAN).await? else {
        return Ok(EgressPath {
            link: None,
            addresses: Vec::new(),
            default_routes: Vec::new(),
        });
    };
    let addresses = nl
        .usable_configured_addresses(link.index)
        .await?
        .into_iter()
        .filter(|address| !is_link_local_v6(*address))
        .collect();
    let mut default_routes = Vec::new();
    for family in [Family::V4, Family::V6] {
        let routes = nl
            .routes(family, u32::from(RouteHeader::RT_TABLE_MAIN))
            .await?;
        if routes.iter().any(|r| {
            r.header.destination_prefix_length == 0 && route_interface(r) == Some(link.index)
        }) {
            default_routes.push(family);
        }
    }
    Ok(EgressPath {
        link: Some(link),
        addresses,
        default_routes,
    })
}

/// What is missing from `path` (pure).
pub fn problems(path: &EgressPath) -> Vec<String> {
    let Some(link) = path.link else {
        return vec![format!(
            "{MACVLAN} does not exist: did the init container (EGRESS_ROUTER_MODE) run?"
        )];
    };
    let mut problems = Vec::new();
    if !link.up {
        problems.push(format!("{MACVLAN} is down"));
    }
    if path.addresses.is_empty() {
        problems.push(format!(
            "{MACVLAN} has no IPv4 or IPv6 address (EGRESS_SOURCE)"
        ));
    }
    for family in [Family::V4, Family::V6] {
        let has_address = path.addresses.iter().any(|a| Family::of(*a) == family);
        if has_address && !path.default_routes.contains(&family) {
            problems.push(format!(
                "the {}default route does not leave by {MACVLAN}: connections would not come from EGRESS_SOURCE",
                family.qualifier()
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_missing_piece() {
        let link = Link {
            index: 3,
            mac: [2, 0, 0, 0, 0, 1],
            up: true,
        };
        let whole = EgressPath {
            link: Some(link),
            addresses: vec!["198.51.100.99".parse().unwrap()],
            default_routes: vec![Family::V4],
        };
        assert!(problems(&whole).is_empty());
        let broken = EgressPath {
            link: Some(Link { up: false, ..link }),
            addresses: Vec::new(),
            default_routes: Vec::new(),
        };
        let found = problems(&broken).join("; ");
        for piece in ["is down", "no IPv4 or IPv6 address"] {
            assert!(found.contains(piece), "{found}");
        }
        let absent = EgressPath {
            link: None,
            ..whole.clone()
        };
        assert!(problems(&absent)[0].contains("does not exist"));
        let no_route = EgressPath {
            default_routes: Vec::new(),
            ..whole
        };
        assert!(problems(&no_route)[0].contains("default route does not leave"));
    }

    #[test]
    fn each_family_with_an_address_needs_its_own_default_route() {
        let path = EgressPath {
            link: Some(Link {
                index: 3,
                mac: [2, 0, 0, 0, 0, 1],
                up: true,
            }),
            addresses: vec![
                "198.51.100.99".parse().unwrap(),
                "2001:db8:1::99".parse().unwrap(),
            ],
            default_routes: vec![Family::V4],
        };
        assert_eq!(
            problems(&path),
            vec![
                "the IPv6 default route does not leave by macvlan0: connections would not come from EGRESS_SOURCE"
            ]
        );
        let ipv6_only = EgressPath {
            addresses: vec!["2001:db8:1::99".parse().unwrap()],
            default_routes: vec![Family::V6],
            ..path
        };
        assert!(problems(&ipv6_only).is_empty());
    }
}
