//! Thin rtnetlink layer: reads link/address/route/rule state of one network
//! namespace and performs single changes. Decisions live in `setup`; interfaces in
//! `link`, addresses in `address`; building and reading route messages (pure) in
//! `route`; rules by source address in `rule`; neighbour and proxy entries in
//! `neighbour`.

mod address;
mod link;
mod neighbour;
mod route;
mod rule;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::config::family::Family;
use crate::error::{Error, Result};
use crate::sys::netns::Netns;

pub use address::AddressState;
pub use neighbour::Neighbour;
pub use route::{
    default_route, default_via, describe_route, describe_route_named, host_route, in_table,
    route_destination, route_destination_ip, route_gateway, route_interface, route_pref_source,
    route_protocol, route_table, with_protocol,
};
pub use rule::{SourceRule, rule_table};

/// What the router needs to know about a network interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Hardware address.
    pub mac: [u8; 6],
    /// Whether the interface is administratively up.
    pub up: bool,
}

/// A link-layer address as `ip link` shows it: `aa:bb:cc:dd:ee:ff`.
pub fn show_mac(mac: &[u8; 6]) -> String {
    let bytes: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    bytes.join(":")
}

/// The kernel's answer for an address family it does not have (IPv6 off at boot).
const EAFNOSUPPORT: i32 = 97;

fn address_family(family: Family) -> AddressFamily {
    match family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

/// A route-netlink connection bound to one network namespace.
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens the connection in namespace `ns`; must be called inside a tokio runtime.
    pub fn connect(ns: &Netns) -> Result<Self> {
        let (connection, handle, _) = ns
            .run(rtnetlink::new_connection)?
            .map_err(|e| Error::io("opening a netlink socket", e))?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    /// The output interface of the route the kernel would use to reach `destination`.
    pub async fn route_interface(&self, destination: IpAddr) -> Result<Option<u32>> {
        let query = match destination {
            IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(v4, 32)
                .build(),
            IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(v6, 128)
                .build(),
        };
        match self.handle.route().get(query).execute().try_next().await {
            Ok(Some(route)) => Ok(route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(index) => Some(*index),
                _ => None,
            })),
            Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) => Ok(None),
            Err(e) => Err(Error::netlink(
                format!("looking up the route to {destination}"),
                e,
            )),
        }
    }

    /// The unicast routes of `family` in routing table `table` (none when the kernel
    /// has no such family: it answers a dump of one it lacks with every family's).
    pub async fn routes(&self, family: Family, table: u32) -> Result<Vec<RouteMessage>> {
        Ok(self
            .all_routes(family)
            .await?
            .into_iter()
            .filter(|r| route_table(r) == table)
            .collect())
    }

    /// The unicast routes of `family` in every routing table.
    pub async fn all_routes(&self, family: Family) -> Result<Vec<RouteMessage>> {
        let query = match family {
            Family::V4 => RouteMessageBuilder::<Ipv4Addr>::new().build(),
            Family::V6 => RouteMessageBuilder::<Ipv6Addr>::new().build(),
        };
        let all: Vec<RouteMessage> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("listing routes", e))?;
        Ok(all
            .into_iter()
            .filter(|r| {
                r.header.address_family == address_family(family)
                    && r.header.kind == RouteType::Unicast
            })
            .collect())
    }

    /// Adds a route.
    pub async fn add_route(&self, route: RouteMessage) -> Result<()> {
        let shown = describe_route(&route);
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("adding route {shown}"), e))
    }

    /// Deletes a route.
    pub async fn del_route(&self, route: RouteMessage) -> Result<()> {
        let shown = describe_route(&route);
        self.handle
            .route()
            .del(route)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("deleting route {shown}"), e))
    }

    /// The rule of `family` sending `mark` to `table`, if present (never, when the
    /// kernel has no such family).
    pub async fn mark_rule(
        &self,
        family: Family,
        mark: u32,
        table: u32,
    ) -> Result<Option<RuleMessage>> {
        let rules = self.rules(family).await?;
        Ok(rules.into_iter().find(|rule| {
            let attr = |f: fn(&RuleAttribute) -> Option<u32>| rule.attributes.iter().find_map(f);
            attr(|a| {
                if let RuleAttribute::FwMark(m) = a {
                    Some(*m)
                } else {
                    None
                }
            }) == Some(mark)
                && attr(|a| {
                    if let RuleAttribute::Table(t) = a {
                        Some(*t)
                    } else {
                        None
                    }
                })
                .unwrap_or(u32::from(rule.header.table))
                    == table
        }))
    }

    /// Adds the rule of `family` `fwmark mark/mark lookup table priority priority`.
    pub async fn add_mark_rule(
        &self,
        family: Family,
        mark: u32,
        table: u32,
        priority: u32,
    ) -> Result<()> {
        let mut request = self
            .handle
            .rule()
            .add()
            .action(RuleAction::ToTable)
            .fw_mark(mark)
            .table_id(table)
            .priority(priority);
        let message = request.message_mut();
        message.header.family = address_family(family);
        message.attributes.push(RuleAttribute::FwMask(mark));
        request
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("adding rule fwmark {mark:#x} lookup {table}"), e))
    }

    /// Deletes a rule.
    pub async fn del_rule(&self, rule: RuleMessage) -> Result<()> {
        self.handle
            .rule()
            .del(rule)
            .execute()
            .await
            .map_err(|e| Error::netlink("deleting rule", e))
    }
}
