//! Raw VRRP sockets (IP protocol 112) of one network namespace, bound to one interface:
//! advertisements are sent from an address given with each packet (`IP_PKTINFO`,
//! `IPV6_PKTINFO`: the pod's own address, never `EGRESS_SOURCE`) with TTL / hop limit
//! 255, to the VRRP multicast group (joined on the interface, not looped back) or to
//! unicast peers; what arrives is read with its source, destination and TTL for the
//! decoder to check. Needs CAP_NET_RAW.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::libc;
use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrIn, SockaddrIn6, sendmsg};

use crate::config::family::Family;
use crate::error::{Error, Result};
use crate::sys::netns::Netns;
use crate::vrrp::packet::{Addresses, PROTOCOL, TTL};

mod receive;

/// The VRRP multicast group of IPv4.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The VRRP multicast group of IPv6.
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// The VRRP multicast group of `family`.
pub fn group(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(GROUP_V4),
        Family::V6 => IpAddr::V6(GROUP_V6),
    }
}

/// A packet received: its addresses, TTL (hop limit) and VRRP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Source and destination of the IP packet.
    pub addresses: Addresses,
    /// Its TTL or hop limit on arrival.
    pub ttl: u8,
    /// The VRRP message.
    pub message: Vec<u8>,
}

/// A non-blocking raw VRRP socket on one interface.
pub struct VrrpSocket {
    fd: OwnedFd,
    family: Family,
    ifindex: u32,
    source: IpAddr,
}

impl AsRawFd for VrrpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Sets an integer-like socket option.
fn set<T>(fd: &OwnedFd, level: i32, name: i32, value: &T, what: &str) -> Result<()> {
    // SAFETY: `value` points at a live `T` whose size is passed along.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(Error::io(
            format!("VRRP socket: {what}"),
            std::io::Error::last_os_error(),
        )),
    }
}

impl VrrpSocket {
    /// Opens the socket of `source`'s family in `ns`, bound to `interface` (index
    /// `ifindex`), sending from `source`; joins the multicast group there when
    /// `multicast`.
    pub fn open(
        ns: &Netns,
        interface: &str,
        ifindex: u32,
        source: IpAddr,
        multicast: bool,
    ) -> Result<Self> {
        let family = Family::of(source);
        let domain = match family {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        };
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = ns.run(|| unsafe {
            libc::socket(
                domain,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(PROTOCOL),
            )
        })?;
        if raw < 0 {
            return Err(Error::io(
                "opening a raw VRRP socket (needs CAP_NET_RAW)",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a descriptor just created and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = std::ffi::CString::new(interface)
            .map_err(|_| Error::State(format!("interface name {interface:?}")))?;
        let bytes = name.as_bytes_with_nul();
        // SAFETY: the name's bytes are live for the call, with their length.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                bytes.as_ptr().cast(),
                bytes.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(Error::io(
                format!("VRRP socket: binding to {interface}"),
                std::io::Error::last_os_error(),
            ));
        }
        let ttl = i32::from(TTL);
        let index = ifindex as i32;
        match family {
            Family::V4 => {
                set(&fd, libc::IPPROTO_IP, libc::IP_TTL, &ttl, "TTL")?;
                set(
                    &fd,
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_TTL,
                    &ttl,
                    "multicast TTL",
                )?;
                set(
                    &fd,
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_LOOP,
                    &0i32,
                    "multicast loop",
                )?;
                let request = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from(GROUP_V4).to_be(),
                    },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: index,
                };
                set(
                    &fd,
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_IF,
                    &request,
                    "multicast interface",
                )?;
                if multicast {
                    set(
                        &fd,
                        libc::IPPROTO_IP,
                        libc::IP_ADD_MEMBERSHIP,
                        &request,
                        "joining 224.0.0.18",
                    )?;
                }
            }
            Family::V6 => {
                set(
                    &fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_UNICAST_HOPS,
                    &ttl,
                    "hop limit",
                )?;
                set(
                    &fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_HOPS,
                    &ttl,
                    "multicast hop limit",
                )?;
                set(
                    &fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_LOOP,
                    &0i32,
                    "multicast loop",
                )?;
                set(
                    &fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_IF,
                    &index,
                    "multicast interface",
                )?;
                set(
                    &fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_RECVPKTINFO,
                    &1i32,
                    "packet info",
                )?;
                set(
                    &fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_RECVHOPLIMIT,
                    &1i32,
                    "hop limit info",
                )?;
                if multicast {
                    let request = libc::ipv6_mreq {
                        ipv6mr_multiaddr: libc::in6_addr {
                            s6_addr: GROUP_V6.octets(),
                        },
                        ipv6mr_interface: ifindex,
                    };
                    set(
                        &fd,
                        libc::IPPROTO_IPV6,
                        libc::IPV6_ADD_MEMBERSHIP,
                        &request,
                        "joining ff02::12",
                    )?;
                }
            }
        }
        Ok(VrrpSocket {
            fd,
            family,
            ifindex,
            source,
        })
    }

    /// The address it sends from.
    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// Sends `message` to `destination` (the group or a peer) from the source.
    pub fn send(&self, message: &[u8], destination: IpAddr) -> Result<()> {
        let iov = [std::io::IoSlice::new(message)];
        let failed = |e: nix::Error| {
            Error::io(
                format!("sending a VRRP advertisement to {destination}"),
                std::io::Error::from(e),
            )
        };
        match (self.source, destination) {
            (IpAddr::V4(source), IpAddr::V4(to)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as i32,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(source).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let to = SockaddrIn::from(SocketAddrV4::new(to, 0));
                let control = [ControlMessage::Ipv4PacketInfo(&info)];
                sendmsg(
                    self.fd.as_raw_fd(),
                    &iov,
                    &control,
                    MsgFlags::empty(),
                    Some(&to),
                )
                .map_err(failed)?;
            }
            (IpAddr::V6(source), IpAddr::V6(to)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: source.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                let scope = match to.is_unicast_link_local() || to.is_multicast() {
                    true => self.ifindex,
                    false => 0,
                };
                let to = SockaddrIn6::from(SocketAddrV6::new(to, 0, 0, scope));
                let control = [ControlMessage::Ipv6PacketInfo(&info)];
                sendmsg(
                    self.fd.as_raw_fd(),
                    &iov,
                    &control,
                    MsgFlags::empty(),
                    Some(&to),
                )
                .map_err(failed)?;
            }
            _ => {
                return Err(Error::State(format!(
                    "a VRRP advertisement from {} cannot go to {destination}",
                    self.source
                )));
            }
        }
        Ok(())
    }
}
