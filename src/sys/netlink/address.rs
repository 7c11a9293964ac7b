//! Addresses: listing them with their state, adding, removing.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};

use super::{Netlink, address_family};
use crate::config::family::Family;
use crate::error::{Error, Result};

/// How usable an address on an interface is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressState {
    /// Ready to use.
    Usable,
    /// Duplicate address detection is still running (IPv6).
    Tentative,
    /// Duplicate address detection found another host using it (IPv6).
    Duplicate,
}

/// The flags of an address message (the 32-bit attribute, else the header's 8 bits).
fn message_flags(message: &AddressMessage) -> AddressFlags {
    message
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(flags) => Some(*flags),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(message.header.flags.bits())))
}

/// The address of an address message.
fn message_address(message: &AddressMessage) -> Option<IpAddr> {
    message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    })
}

impl Netlink {
    /// The addresses of every interface: (interface index, address, prefix length).
    pub async fn addresses(&self) -> Result<Vec<(u32, IpAddr, u8)>> {
        Ok(self
            .address_messages(None)
            .await?
            .iter()
            .filter_map(|m| Some((m.header.index, message_address(m)?, m.header.prefix_len)))
            .collect())
    }

    async fn address_messages(&self, index: Option<u32>) -> Result<Vec<AddressMessage>> {
        let mut request = self.handle.address().get();
        if let Some(index) = index {
            request = request.set_link_index_filter(index);
        }
        request
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("listing addresses", e))
    }

    /// The addresses of interface `index` a connection can leave from: IPv4 ones, and
    /// IPv6 ones set by hand or by a setup (permanent; not those router advertisements
    /// configured, with a lifetime) that are usable (not tentative, not a duplicate).
    pub async fn usable_configured_addresses(&self, index: u32) -> Result<Vec<IpAddr>> {
        let messages = self.address_messages(Some(index)).await?;
        Ok(messages
            .iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| Some((message_address(m)?, message_flags(m))))
            .filter(|(address, flags)| {
                address.is_ipv4()
                    || (flags.contains(AddressFlags::Permanent)
                        && !flags.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed))
            })
            .map(|(address, _)| address)
            .collect())
    }

    /// The state of `address` on interface `index`; `None` when it is not there.
    pub async fn address_state(&self, index: u32, address: IpAddr) -> Result<Option<AddressState>> {
        let messages = self.address_messages(Some(index)).await?;
        Ok(messages
            .iter()
            .find(|m| m.header.index == index && message_address(m) == Some(address))
            .map(|m| {
                let flags = message_flags(m);
                if flags.contains(AddressFlags::Dadfailed) {
                    AddressState::Duplicate
                } else if flags.contains(AddressFlags::Tentative) {
                    AddressState::Tentative
                } else {
                    AddressState::Usable
                }
            }))
    }

    /// Adds `address/prefix_len` to interface `index`; without `prefix_route`, the
    /// kernel adds no on-link route for its prefix (`noprefixroute`).
    pub async fn add_address(
        &self,
        index: u32,
        address: IpAddr,
        prefix_len: u8,
        prefix_route: bool,
    ) -> Result<()> {
        let mut request = self.handle.address().add(index, address, prefix_len);
        if !prefix_route {
            request
                .message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Noprefixroute));
        }
        request
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("adding address {address}/{prefix_len}"), e))
    }

    /// Adds `address/prefix_len` to interface `index` without duplicate address
    /// detection (an address VRRP decides the holder of), usable at once.
    pub async fn add_address_nodad(
        &self,
        index: u32,
        address: IpAddr,
        prefix_len: u8,
    ) -> Result<()> {
        let mut request = self.handle.address().add(index, address, prefix_len);
        let message = request.message_mut();
        message.header.flags |= netlink_packet_route::address::AddressHeaderFlags::Nodad;
        message
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        request
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("adding address {address}/{prefix_len}"), e))
    }

    /// Removes `address/prefix_len` from interface `index`.
    pub async fn del_address(&self, index: u32, address: IpAddr, prefix_len: u8) -> Result<()> {
        let mut message = AddressMessage::default();
        message.header.family = address_family(Family::of(address));
        message.header.index = index;
        message.header.prefix_len = prefix_len;
        if address.is_ipv4() {
            message.attributes.push(AddressAttribute::Local(address));
        }
        message.attributes.push(AddressAttribute::Address(address));
        self.handle
            .address()
            .del(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("removing address {address}/{prefix_len}"), e))
    }
}
