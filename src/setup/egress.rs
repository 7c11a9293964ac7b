//! The part of the setup a proxy relies on, checked without privileges (netlink reads
//! only): the egress interface is up with an IPv4 address, and the main table's
//! default route leaves by it. This is what makes proxied connections leave from
//! `EGRESS_SOURCE`; the proxy container is not told the address itself.

use std::net::Ipv4Addr;

use netlink_packet_route::route::RouteHeader;

use super::MACVLAN;
use crate::error::Result;
use crate::sys::netlink::{Link, Netlink, route_interface};

/// What was found of the egress path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPath {
    /// The egress interface, when it exists.
    pub link: Option<Link>,
    /// Its IPv4 addresses.
    pub addresses: Vec<Ipv4Addr>,
    /// Whether a default route of the main table leaves by it.
    pub default_route: bool,
}

/// Reads the egress path of the namespace `nl` is bound to.
pub async fn observe(nl: &Netlink) -> Result<EgressPath> {
    let Some((link, _)) = nl.find_link(MACVLAN).await? else {
        return Ok(EgressPath {
            link: None,
            addresses: Vec::new(),
            default_route: false,
        });
    };
    let addresses = nl
        .ipv4_addresses()
        .await?
        .into_iter()
        .filter(|(index, _, _)| *index == link.index)
        .map(|(_, address, _)| address)
        .collect();
    let default_route = nl
        .routes(u32::from(RouteHeader::RT_TABLE_MAIN))
        .await?
        .iter()
        .any(|r| r.header.destination_prefix_length == 0 && route_interface(r) == Some(link.index));
    Ok(EgressPath {
        link: Some(link),
        addresses,
        default_route,
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
        problems.push(format!("{MACVLAN} has no IPv4 address (EGRESS_SOURCE)"));
    }
    if !path.default_route {
        problems.push(format!(
            "the default route does not leave by {MACVLAN}: connections would not come from EGRESS_SOURCE"
        ));
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
            addresses: vec![Ipv4Addr::new(198, 51, 100, 99)],
            default_route: true,
        };
        assert!(problems(&whole).is_empty());
        let broken = EgressPath {
            link: Some(Link { up: false, ..link }),
            addresses: Vec::new(),
            default_route: false,
        };
        let found = problems(&broken).join("; ");
        for piece in ["is down", "no IPv4 address", "default route"] {
            assert!(found.contains(piece), "{found}");
        }
        let absent = EgressPath {
            link: None,
            ..whole
        };
        assert!(problems(&absent)[0].contains("does not exist"));
    }
}
