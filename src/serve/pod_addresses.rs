//! The pod's addresses, kept current while a proxy runs: listed at start, and again
//! each time the kernel reports that an address or a link of the namespace changed
//! (a route netlink socket subscribed to those events, on a thread of its own; no
//! privilege needed). The proxies read the latest listing on every decision: which
//! destinations are the pod itself (never dialed, on any port), which addresses are
//! the egress interface's (a connection made to one came from the egress side), and
//! each family's egress address to dial from.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol};
use tracing::{debug, warn};

use super::egress::{self, EgressSources};
use crate::config::address::{canonical, interface_addresses};
use crate::error::{Error, Result};

/// Route netlink multicast groups: link, IPv4 address and IPv6 address changes.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// One listing of the namespace's addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Every address with its interface's name, as the kernel lists them.
    pub interfaces: Vec<(String, IpAddr)>,
    /// Every address, canonical.
    pub addresses: Vec<IpAddr>,
    /// The egress address of each family.
    pub egress: EgressSources,
}

impl Listing {
    /// The listing of `interfaces` (interface name, address), with `egress` found among
    /// them.
    pub fn new(interfaces: Vec<(String, IpAddr)>, egress: EgressSources) -> Self {
        let addresses = interfaces.iter().map(|(_, ip)| canonical(*ip)).collect();
        Listing {
            interfaces,
            addresses,
            egress,
        }
    }

    /// The namespace's addresses now.
    pub fn now() -> std::io::Result<Self> {
        let interfaces = interface_addresses()?;
        let egress = EgressSources::from_listing(&interfaces);
        Ok(Listing::new(interfaces, egress))
    }

    /// Whether `local`, the address a connection was made to, is the egress
    /// interface's: the connection came from the outside network.
    pub fn on_egress_side(&self, local: IpAddr) -> bool {
        egress::on_egress_side(local, &self.interfaces)
    }
}

/// The latest listing of the pod's addresses.
#[derive(Debug)]
pub struct PodAddresses {
    current: RwLock<Arc<Listing>>,
}

impl PodAddresses {
    /// Lists the addresses now and keeps following their changes (subscribed before
    /// the first listing, so no change in between is missed).
    pub fn follow() -> Result<Arc<Self>> {
        let failed =
            |e: Errno| Error::io("following this pod's addresses (route netlink)", e.into());
        let events = socket::socket(
            AddressFamily::Netlink,
            socket::SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(failed)?;
        let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
        socket::bind(events.as_raw_fd(), &NetlinkAddr::new(0, groups)).map_err(failed)?;
        let listing = Listing::now().map_err(|e| Error::io("listing this pod's addresses", e))?;
        let shared = PodAddresses::fixed(listing);
        let follower = shared.clone();
        std::thread::Builder::new()
            .name("pod-addresses".into())
            .spawn(move || follower.follow_events(events))
            .map_err(|e| Error::io("starting the thread following this pod's addresses", e))?;
        Ok(shared)
    }

    /// A listing that never changes (tests, and roles that need no follower).
    pub fn fixed(listing: Listing) -> Arc<Self> {
        Arc::new(PodAddresses {
            current: RwLock::new(Arc::new(listing)),
        })
    }

    /// The latest listing.
    pub fn now(&self) -> Arc<Listing> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Lists again after every batch of events (lost events, `ENOBUFS`, too); a
    /// failing socket is replaced by a listing every second.
    fn follow_events(&self, events: OwnedFd) {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match socket::recv(events.as_raw_fd(), &mut buffer, MsgFlags::empty()) {
                Ok(_) | Err(Errno::ENOBUFS) => {}
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    warn!(%error, "reading address changes failed; listing every second instead");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            while socket::recv(events.as_raw_fd(), &mut buffer, MsgFlags::MSG_DONTWAIT).is_ok() {}
            match Listing::now() {
                Ok(listing) => {
                    debug!(addresses = ?listing.addresses, "pod addresses changed");
                    *self
                        .current
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(listing);
                }
                Err(error) => {
                    warn!(%error, "listing this pod's addresses failed; keeping the last listing")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_to_an_address_of_the_egress_interface_came_from_outside() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let listing = Listing::new(
            vec![
                ("eth0".into(), ip("192.0.2.70")),
                ("macvlan0".into(), ip("198.51.100.99")),
                ("macvlan0".into(), ip("fe80::1")),
            ],
            EgressSources::default(),
        );
        assert!(listing.on_egress_side(ip("198.51.100.99")));
        assert!(listing.on_egress_side(ip("::ffff:198.51.100.99")));
        assert!(listing.on_egress_side(ip("fe80::1")));
        assert!(!listing.on_egress_side(ip("192.0.2.70")));
        assert_eq!(listing.addresses.len(), 3);
    }

    #[test]
    fn following_starts_from_the_current_listing() {
        let followed = PodAddresses::follow().expect("route netlink needs no privilege");
        let listed = Listing::now().unwrap();
        assert_eq!(followed.now().addresses, listed.addresses);
    }
}
