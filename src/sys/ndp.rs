//! Unsolicited neighbour advertisements (RFC 4861 section 7.2.6), the IPv6 counterpart
//! of gratuitous ARP: ICMPv6 type 136 to all nodes (ff02::1), hop limit 255, Override
//! set, Solicited clear, with the target link-layer address option. The kernel sends
//! none of its own for an address it adds (unless `ndisc_notify` is set), so hosts
//! and the gateway would keep an older owner's MAC until their cache entry expires.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn6, bind, sendto,
    setsockopt, socket, sockopt,
};

use crate::error::{Error, Result};
use crate::sys::fd;
use crate::sys::netns::Netns;

/// ICMPv6 type of a neighbour advertisement.
const NEIGHBOUR_ADVERTISEMENT: u8 = 136;
/// The Override flag (the first bit of the flags word is Router, then Solicited).
const OVERRIDE: u8 = 0x20;
/// Option type: target link-layer address.
const TARGET_LINK_LAYER: u8 = 2;
/// Link-local all-nodes multicast.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The 32-byte ICMPv6 message announcing that `target` is at `mac` (the checksum is
/// left zero: the kernel fills it in for raw ICMPv6 sockets).
pub fn advertisement(mac: [u8; 6], target: Ipv6Addr) -> [u8; 32] {
    let mut message = [0u8; 32];
    message[0] = NEIGHBOUR_ADVERTISEMENT;
    message[4] = OVERRIDE;
    message[8..24].copy_from_slice(&target.octets());
    message[24] = TARGET_LINK_LAYER;
    message[25] = 1; // option length in units of 8 bytes
    message[26..32].copy_from_slice(&mac);
    message
}

/// A raw ICMPv6 socket of one network namespace, bound to the address it advertises,
/// sending on one interface.
pub struct NdpSocket {
    fd: OwnedFd,
    ifindex: u32,
    mac: [u8; 6],
    target: Ipv6Addr,
}

impl NdpSocket {
    /// Opens the socket in namespace `ns` for `target`, an address of interface
    /// `ifindex` there whose hardware address is `mac`; needs CAP_NET_RAW.
    pub fn open(ns: &Netns, ifindex: u32, mac: [u8; 6], target: Ipv6Addr) -> Result<Self> {
        let failed = |what: &str, e: nix::Error| {
            Error::io(
                format!("{what} for the neighbour advertisement of {target}"),
                std::io::Error::from(e),
            )
        };
        let fd = ns
            .run(|| {
                socket(
                    AddressFamily::Inet6,
                    SockType::Raw,
                    SockFlag::SOCK_CLOEXEC,
                    SockProtocol::IcmpV6,
                )
            })?
            .map_err(|e| failed("opening a raw ICMPv6 socket (needs CAP_NET_RAW)", e))?;
        setsockopt(&fd, sockopt::Ipv6MulticastHops, &255)
            .map_err(|e| failed("setting the hop limit", e))?;
        bind(
            fd.as_raw_fd(),
            &SockaddrIn6::from(SocketAddrV6::new(target, 0, 0, 0)),
        )
        .map_err(|e| failed("binding to the address", e))?;
        Ok(NdpSocket {
            fd,
            ifindex,
            mac,
            target,
        })
    }

    /// Takes over a socket [`NdpSocket::open`] made, inherited as descriptor `fd`.
    pub fn inherited(raw: RawFd, ifindex: u32, mac: [u8; 6], target: Ipv6Addr) -> Result<Self> {
        Ok(NdpSocket {
            fd: fd::inherited(raw, "ICMPv6 socket")?,
            ifindex,
            mac,
            target,
        })
    }

    /// The interface it sends on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// That interface's hardware address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The address it advertises.
    pub fn target(&self) -> Ipv6Addr {
        self.target
    }

    /// Lets a child process inherit the socket; returns the descriptor number to give it.
    pub fn share_with_child(&self) -> Result<RawFd> {
        fd::share_with_child(&self.fd, "ICMPv6 socket")
    }

    /// Sends one unsolicited advertisement to all nodes on the interface.
    pub fn announce(&self) -> Result<()> {
        let to = SockaddrIn6::from(SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex));
        let message = advertisement(self.mac, self.target);
        let sent = sendto(self.fd.as_raw_fd(), &message, &to, MsgFlags::empty()).map_err(|e| {
            Error::io(
                format!("sending the neighbour advertisement of {}", self.target),
                std::io::Error::from(e),
            )
        })?;
        if sent != message.len() {
            return Err(Error::State(format!(
                "sending the neighbour advertisement of {}: {sent} of {} bytes sent",
                self.target,
                message.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advertisement_overrides_unsolicited_with_the_target_mac() {
        let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        let target: Ipv6Addr = "2001:db8:1::99".parse().unwrap();
        let message = advertisement(mac, target);
        assert_eq!(&message[..4], &[136, 0, 0, 0], "type, code, checksum");
        assert_eq!(&message[4..8], &[0x20, 0, 0, 0], "R=0 S=0 O=1");
        assert_eq!(&message[8..24], &target.octets());
        assert_eq!(
            &message[24..26],
            &[2, 1],
            "target link-layer option, 8 bytes"
        );
        assert_eq!(&message[26..32], &mac);
    }
}
