//! Neighbour entries: a permanent entry (a next hop pinned to a link-layer address)
//! and proxy entries (`ip neigh add proxy ADDRESS dev DEV`: answer ARP or neighbour
//! solicitations for an address that is not the host's).

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};

use super::{Netlink, address_family};
use crate::config::family::Family;
use crate::error::{Error, Result};

/// One neighbour entry as found: its link-layer address and whether it is permanent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    /// The link-layer address, when it has a 6-byte one.
    pub mac: Option<[u8; 6]>,
    /// Whether it is permanent (`nud permanent`).
    pub permanent: bool,
}

fn destination(message: &NeighbourMessage) -> Option<IpAddr> {
    message.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        _ => None,
    })
}

fn message(index: u32, address: IpAddr, proxy: bool) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = address_family(Family::of(address));
    message.header.ifindex = index;
    if proxy {
        message.header.flags = NeighbourFlags::Proxy;
    }
    message
        .attributes
        .push(NeighbourAttribute::Destination(match address {
            IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
            IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
        }));
    message
}

impl Netlink {
    async fn neighbour_messages(&self, proxies: bool) -> Result<Vec<NeighbourMessage>> {
        let mut request = self.handle.neighbours().get();
        if proxies {
            request = request.proxies();
        }
        request
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("listing neighbour entries", e))
    }

    /// The neighbour entry of `address` on interface `index`, if there is one.
    pub async fn neighbour(&self, index: u32, address: IpAddr) -> Result<Option<Neighbour>> {
        Ok(self
            .neighbour_messages(false)
            .await?
            .iter()
            .find(|m| m.header.ifindex == index && destination(m) == Some(address))
            .map(|m| Neighbour {
                mac: m.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::LinkLayerAddress(bytes) => {
                        <[u8; 6]>::try_from(bytes.as_slice()).ok()
                    }
                    _ => None,
                }),
                permanent: m.header.state == NeighbourState::Permanent,
            }))
    }

    /// Pins `address` on interface `index` to `mac` (a permanent entry, replacing any).
    pub async fn set_neighbour(&self, index: u32, address: IpAddr, mac: [u8; 6]) -> Result<()> {
        self.handle
            .neighbours()
            .add(index, address)
            .link_layer_address(&mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("adding neighbour entry {address}"), e))
    }

    /// Removes the neighbour entry of `address` on interface `index`.
    pub async fn del_neighbour(&self, index: u32, address: IpAddr) -> Result<()> {
        self.handle
            .neighbours()
            .del(message(index, address, false))
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("removing neighbour entry {address}"), e))
    }

    /// Every proxy entry: (interface index, address).
    pub async fn proxies(&self) -> Result<Vec<(u32, IpAddr)>> {
        Ok(self
            .neighbour_messages(true)
            .await?
            .iter()
            .filter(|m| m.header.flags.contains(NeighbourFlags::Proxy))
            .filter_map(|m| Some((m.header.ifindex, destination(m)?)))
            .collect())
    }

    /// Adds the proxy entry of `address` on interface `index`.
    pub async fn add_proxy(&self, index: u32, address: IpAddr) -> Result<()> {
        let mut request = self.handle.neighbours().add(index, address);
        let message = request.message_mut();
        message.header.flags = NeighbourFlags::Proxy;
        message.header.state = NeighbourState::Permanent;
        request
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("adding proxy entry {address}"), e))
    }

    /// Removes the proxy entry of `address` on interface `index`.
    pub async fn del_proxy(&self, index: u32, address: IpAddr) -> Result<()> {
        self.handle
            .neighbours()
            .del(message(index, address, true))
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("removing proxy entry {address}"), e))
    }
}
