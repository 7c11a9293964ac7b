//! Thin rtnetlink layer: reads link/address/route/rule state of one network
//! namespace and performs single changes. Decisions live in `setup`; building and
//! reading route messages (pure) in `route`.

mod route;

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{Handle, IpVersion, LinkUnspec, RouteMessageBuilder};

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

    /// Looks up interface `name`.
    pub async fn link(&self, name: &str) -> Result<Link> {
        self.find_link(name)
            .await?
            .map(|(link, _)| link)
            .ok_or_else(|| {
                Error::State(format!(
                    "interface {name} does not exist in this network namespace"
                ))
            })
    }

    /// Interface `name` and its alias (`ip link set NAME alias ...`), if it exists.
    pub async fn find_link(&self, name: &str) -> Result<Option<(Link, Option<String>)>> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        let message = match found {
            Ok(Some(message)) => message,
            Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) => return Ok(None),
            Err(e) => return Err(Error::netlink(format!("looking up interface {name}"), e)),
        };
        let link = to_link(&message)
            .ok_or_else(|| Error::State(format!("interface {name} has no Ethernet address")))?;
        let alias = message.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfAlias(alias) => Some(alias.clone()),
            _ => None,
        });
        Ok(Some((link, alias)))
    }

    /// Every interface with an Ethernet address, by name.
    pub async fn links(&self) -> Result<Vec<(String, Link)>> {
        let all: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("listing interfaces", e))?;
        Ok(all
            .iter()
            .filter_map(|m| {
                let name = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(name) => Some(name.clone()),
                    _ => None,
                })?;
                Some((name, to_link(m)?))
            })
            .collect())
    }

    /// Creates `link` (down) and returns its index.
    pub async fn add_link(&self, link: LinkMessage, name: &str) -> Result<u32> {
        self.handle
            .link()
            .add(link)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("creating interface {name}"), e))?;
        Ok(self.link(name).await?.index)
    }

    /// Moves interface `index` into namespace `to`, renamed `name`.
    pub async fn move_link(&self, index: u32, to: &Netns, name: &str) -> Result<()> {
        let message = LinkUnspec::new_with_index(index)
            .setns_by_fd(to.fd().as_raw_fd())
            .name(name.to_string())
            .build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| {
                Error::netlink(
                    format!(
                        "moving interface #{index} into {} as {name}",
                        to.path().display()
                    ),
                    e,
                )
            })
    }

    /// Sets the alias of interface `index` (`ip link set DEV alias TEXT`).
    pub async fn set_alias(&self, index: u32, alias: &str) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).alias(alias).build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("naming the owner of interface #{index}"), e))
    }

    /// Deletes interface `index`.
    pub async fn delete_link(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("deleting interface #{index}"), e))
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

    /// Sets interface `index` up or down.
    pub async fn set_up(&self, index: u32, up: bool) -> Result<()> {
        let builder = LinkUnspec::new_with_index(index);
        let message = if up { builder.up() } else { builder.down() }.build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| {
                Error::netlink(
                    format!(
                        "setting interface {index} {}",
                        if up { "up" } else { "down" }
                    ),
                    e,
                )
            })
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

/// A link message as [`Link`]; `None` without a 6-byte hardware address.
fn to_link(message: &LinkMessage) -> Option<Link> {
    let mac = message.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
        _ => None,
    })?;
    Some(Link {
        index: message.header.index,
        mac,
        up: message.header.flags.contains(LinkFlags::Up),
    })
}
