//! Thin rtnetlink layer: reads link/address/route/rule state of one network
//! namespace and performs single changes. Decisions live in `setup`; building and
//! reading route messages (pure) in `route`.

mod link;
mod route;

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};

use netlink_packet_route::route::{RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};

use crate::error::{Error, Result};
use crate::sys::netns::Netns;

pub use route::{
    default_route, describe_route, host_route, in_table, route_gateway, route_interface,
    route_pref_source, route_table,
};

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

    /// The IPv4 addresses of every interface: (interface index, address, prefix length).
    pub async fn ipv4_addresses(&self) -> Result<Vec<(u32, Ipv4Addr, u8)>> {
        let all: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("listing addresses", e))?;
        Ok(all
            .iter()
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(IpAddr::V4(ip)) => {
                        Some((m.header.index, *ip, m.header.prefix_len))
                    }
                    _ => None,
                })
            })
            .collect())
    }

    /// The output interface of the route the kernel would use to reach `destination`.
    pub async fn route_interface(&self, destination: Ipv4Addr) -> Result<Option<u32>> {
        let query = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(destination, 32)
            .build();
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

    /// The IPv4 unicast routes of routing table `table`.
    pub async fn routes(&self, table: u32) -> Result<Vec<RouteMessage>> {
        let all: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("listing routes", e))?;
        Ok(all
            .into_iter()
            .filter(|r| route_table(r) == table && r.header.kind == RouteType::Unicast)
            .collect())
    }

    /// Whether `address` is configured on interface `index`.
    pub async fn has_address(&self, index: u32, address: Ipv4Addr) -> Result<bool> {
        let addresses: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("listing addresses", e))?;
        Ok(addresses.iter().any(|m| {
            m.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Address(IpAddr::V4(ip)) if *ip == address))
        }))
    }

    /// Adds `address/prefix_len` to interface `index`.
    pub async fn add_address(&self, index: u32, address: Ipv4Addr, prefix_len: u8) -> Result<()> {
        self.handle
            .address()
            .add(index, IpAddr::V4(address), prefix_len)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("adding address {address}/{prefix_len}"), e))
    }

    /// Removes `address/prefix_len` from interface `index`.
    pub async fn del_address(&self, index: u32, address: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.index = index;
        message.header.prefix_len = prefix_len;
        message
            .attributes
            .push(AddressAttribute::Local(IpAddr::V4(address)));
        message
            .attributes
            .push(AddressAttribute::Address(IpAddr::V4(address)));
        self.handle
            .address()
            .del(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("removing address {address}/{prefix_len}"), e))
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

    /// The IPv4 rule sending `mark` to `table`, if present.
    pub async fn mark_rule(&self, mark: u32, table: u32) -> Result<Option<RuleMessage>> {
        let rules: Vec<RuleMessage> = self
            .handle
            .rule()
            .get(IpVersion::V4)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("listing rules", e))?;
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

    /// Adds the IPv4 rule `fwmark mark/mark lookup table priority priority`.
    pub async fn add_mark_rule(&self, mark: u32, table: u32, priority: u32) -> Result<()> {
        let mut request = self
            .handle
            .rule()
            .add()
            .v4()
            .action(RuleAction::ToTable)
            .fw_mark(mark)
            .table_id(table)
            .priority(priority);
        request
            .message_mut()
            .attributes
            .push(RuleAttribute::FwMask(mark));
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
