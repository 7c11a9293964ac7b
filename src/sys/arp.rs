//! Gratuitous ARP, written natively on a raw packet socket (no `arping`).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::libc;

use crate::error::{Error, Result};
use crate::sys::fd;
use crate::sys::netns::Netns;

const ETH_P_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];

/// The two announcements the router makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// Gratuitous ARP reply, sent at once (like `arping -A`).
    Reply,
    /// Unsolicited ARP request, sent ~2 s later (like `arping -U`).
    Request,
}

/// The 28-byte ARP payload announcing that `ip` is at `mac`.
pub fn announcement_packet(kind: Announcement, mac: [u8; 6], ip: Ipv4Addr) -> [u8; 28] {
    let (operation, target_mac) = match kind {
        Announcement::Reply => (2u16, mac),
        Announcement::Request => (1u16, [0u8; 6]),
    };
    let mut packet = [0u8; 28];
    packet[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    packet[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol type: IPv4
    packet[4] = 6;
    packet[5] = 4;
    packet[6..8].copy_from_slice(&operation.to_be_bytes());
    packet[8..14].copy_from_slice(&mac);
    packet[14..18].copy_from_slice(&ip.octets());
    packet[18..24].copy_from_slice(&target_mac);
    packet[24..28].copy_from_slice(&ip.octets());
    packet
}

/// A packet socket bound to sending ARP on one interface.
pub struct ArpSocket {
    fd: OwnedFd,
    ifindex: u32,
    mac: [u8; 6],
}

impl ArpSocket {
    /// Opens the socket in namespace `ns`, for interface `ifindex` there, whose
    /// hardware address is `mac`; fails without CAP_NET_RAW.
    pub fn open(ns: &Netns, ifindex: u32, mac: [u8; 6]) -> Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = ns.run(|| unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ARP.to_be()),
            )
        })?;
        if fd < 0 {
            return Err(Error::io(
                "opening a raw packet socket for gratuitous ARP (needs CAP_NET_RAW)",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd is a freshly created, valid descriptor that nothing else owns.
        Ok(ArpSocket {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            ifindex,
            mac,
        })
    }

    /// The interface the socket sends on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// That interface's hardware address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Takes over a socket inherited from the process that opened it.
    pub fn inherited(raw: RawFd, ifindex: u32, mac: [u8; 6]) -> Result<Self> {
        Ok(ArpSocket {
            fd: fd::inherited(raw, "ARP socket")?,
            ifindex,
            mac,
        })
    }

    /// Lets a child process inherit the socket; returns the descriptor number to give it.
    ///
    /// Closing a packet socket waits for an RCU grace period (`synchronize_net`, about
    /// 20 ms), so handing the socket to the detached helper keeps that off our exit path.
    pub fn share_with_child(&self) -> Result<RawFd> {
        fd::share_with_child(&self.fd, "ARP socket")
    }

    /// Broadcasts `kind` for `ip` at the interface's hardware address.
    pub fn announce(&self, kind: Announcement, ip: Ipv4Addr) -> Result<()> {
        let packet = announcement_packet(kind, self.mac, ip);
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = ETH_P_ARP.to_be();
        address.sll_ifindex = self.ifindex as i32;
        address.sll_halen = 6;
        address.sll_addr[..6].copy_from_slice(&BROADCAST);
        // SAFETY: the buffer and address pointers are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent != packet.len() as isize {
            return Err(Error::io(
                format!("sending gratuitous ARP {kind:?} for {ip}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    #[test]
    fn reply_announces_sender_equals_target() {
        let p = announcement_packet(Announcement::Reply, MAC, "198.51.100.99".parse().unwrap());
        assert_eq!(&p[0..8], &[0, 1, 8, 0, 6, 4, 0, 2]);
        assert_eq!(&p[8..14], &MAC);
        assert_eq!(&p[14..18], &[198, 51, 100, 99]);
        assert_eq!(&p[18..24], &MAC);
        assert_eq!(&p[24..28], &[198, 51, 100, 99]);
    }

    #[test]
    fn request_asks_for_its_own_address_with_an_empty_target_mac() {
        let p = announcement_packet(Announcement::Request, MAC, "198.51.100.99".parse().unwrap());
        assert_eq!(&p[6..8], &[0, 1]);
        assert_eq!(&p[18..24], &[0; 6]);
        assert_eq!(&p[14..18], &p[24..28]);
    }
}
