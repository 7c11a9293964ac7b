//! Reading what arrives on a [`VrrpSocket`]: the packet with its addresses and TTL
//! (IPv4's from its own header, which a raw IPv4 socket reads too; IPv6's from the
//! sender's address and the `IPV6_PKTINFO` and `IPV6_HOPLIMIT` messages).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};

use super::{Received, VrrpSocket};
use crate::config::family::Family;
use crate::vrrp::packet::Addresses;

impl VrrpSocket {
    /// The next packet waiting, if any (`WouldBlock` when none).
    pub fn receive(&self) -> std::io::Result<Received> {
        let mut buffer = [0u8; 2048];
        let mut iov = [std::io::IoSliceMut::new(&mut buffer)];
        let mut space = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let message = recvmsg::<SockaddrStorage>(
            self.fd.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )?;
        let length = message.bytes;
        let mut destination = None;
        let mut hops = None;
        for control in message.cmsgs().into_iter().flatten() {
            match control {
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    destination = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                ControlMessageOwned::Ipv6HopLimit(limit) => hops = Some(limit),
                _ => {}
            }
        }
        let source = message.address.and_then(|a| {
            a.as_sockaddr_in6()
                .map(|s| IpAddr::V6(s.ip()))
                .or_else(|| a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())))
        });
        let data = &buffer[..length];
        let malformed =
            || std::io::Error::new(std::io::ErrorKind::InvalidData, "short VRRP packet");
        match self.family {
            Family::V4 => {
                // A raw IPv4 socket reads the IP header too.
                let header = usize::from(data.first().ok_or_else(malformed)? & 0x0f) * 4;
                if data.len() < header.max(20) {
                    return Err(malformed());
                }
                let address = |at: usize| {
                    IpAddr::V4(Ipv4Addr::new(
                        data[at],
                        data[at + 1],
                        data[at + 2],
                        data[at + 3],
                    ))
                };
                Ok(Received {
                    addresses: Addresses {
                        source: address(12),
                        destination: address(16),
                    },
                    ttl: data[8],
                    message: data[header..].to_vec(),
                })
            }
            Family::V6 => {
                let (Some(source), Some(destination), Some(hops)) = (source, destination, hops)
                else {
                    return Err(malformed());
                };
                Ok(Received {
                    addresses: Addresses {
                        source,
                        destination,
                    },
                    ttl: u8::try_from(hops).unwrap_or(0),
                    message: data.to_vec(),
                })
            }
        }
    }
}
