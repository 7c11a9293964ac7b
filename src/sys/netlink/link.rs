//! Interfaces: looking them up, listing, creating, moving into another namespace,
//! naming their owner, bringing up or down, deleting.

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::{LinkUnspec, LinkVeth};
use std::os::fd::AsRawFd;

use super::{Link, Netlink};
use crate::error::{Error, Result};
use crate::sys::netns::Netns;

impl Netlink {
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

    /// The name and alias of interface `index`, if it exists.
    pub async fn link_name(&self, index: u32) -> Result<Option<(String, Option<String>)>> {
        let found = self
            .handle
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_next()
            .await;
        let message = match found {
            Ok(Some(message)) => message,
            Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) => return Ok(None),
            Err(e) => return Err(Error::netlink(format!("looking up interface #{index}"), e)),
        };
        let text = |f: fn(&LinkAttribute) -> Option<&String>| {
            message.attributes.iter().find_map(f).cloned()
        };
        Ok(text(|a| match a {
            LinkAttribute::IfName(name) => Some(name),
            _ => None,
        })
        .map(|name| {
            let alias = text(|a| match a {
                LinkAttribute::IfAlias(alias) => Some(alias),
                _ => None,
            });
            (name, alias)
        }))
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

    /// Creates the veth pair `name` and `peer` (down), both with `mtu` when given,
    /// and returns their indexes.
    pub async fn add_veth(&self, name: &str, peer: &str, mtu: Option<u32>) -> Result<(u32, u32)> {
        let index = self
            .add_link(LinkVeth::new(name, peer).build(), name)
            .await?;
        let peer_index = self.link(peer).await?.index;
        if let Some(mtu) = mtu {
            for (i, n) in [(index, name), (peer_index, peer)] {
                let message = LinkUnspec::new_with_index(i).mtu(mtu).build();
                if let Err(e) = self
                    .set_link(message, || format!("setting the MTU of {n} to {mtu}"))
                    .await
                {
                    let _ = self.delete_link(index).await;
                    return Err(e);
                }
            }
        }
        Ok((index, peer_index))
    }

    /// The MTU of interface `index`.
    pub async fn mtu(&self, index: u32) -> Result<u32> {
        let message = self
            .handle
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_next()
            .await
            .map_err(|e| Error::netlink(format!("looking up interface #{index}"), e))?;
        message
            .and_then(|m| {
                m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Mtu(mtu) => Some(*mtu),
                    _ => None,
                })
            })
            .ok_or_else(|| Error::State(format!("interface #{index} has no MTU")))
    }

    /// Moves interface `index` into namespace `to`, renamed `name`.
    pub async fn move_link(&self, index: u32, to: &Netns, name: &str) -> Result<()> {
        let message = LinkUnspec::new_with_index(index)
            .setns_by_fd(to.fd().as_raw_fd())
            .name(name.to_string())
            .build();
        self.set_link(message, || {
            format!(
                "moving interface #{index} into {} as {name}",
                to.path().display()
            )
        })
        .await
    }

    /// Sets the alias of interface `index` (`ip link set DEV alias TEXT`).
    pub async fn set_alias(&self, index: u32, alias: &str) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).alias(alias).build();
        self.set_link(message, || {
            format!("naming the owner of interface #{index}")
        })
        .await
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

    /// Sets interface `index` up or down.
    pub async fn set_up(&self, index: u32, up: bool) -> Result<()> {
        let builder = LinkUnspec::new_with_index(index);
        let message = if up { builder.up() } else { builder.down() }.build();
        let state = if up { "up" } else { "down" };
        self.set_link(message, || format!("setting interface {index} {state}"))
            .await
    }

    /// Sends one link change; `what` names it in the error.
    async fn set_link(&self, message: LinkMessage, what: impl FnOnce() -> String) -> Result<()> {
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(what(), e))
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
