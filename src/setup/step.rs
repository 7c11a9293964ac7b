//! One change to a namespace, as plain data: what [`plan`](super::plan) decides and
//! [`apply`](super::apply) makes.

use std::fmt;
use std::net::IpAddr;

use netlink_packet_route::route::RouteMessage;

use crate::config::family::Family;
use crate::config::router::SourceAddress;
use crate::setup::firewall::{REPLY_MARK, REPLY_RULE_PRIORITY, REPLY_TABLE};
use crate::sys::netlink;
use crate::sys::sysctl::Sysctl;

/// One change to the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Add the source address to interface `index`.
    AddAddress {
        /// Interface index (the egress interface).
        index: u32,
        /// The address and prefix length.
        source: SourceAddress,
    },
    /// Add the source address to interface `index` without duplicate address
    /// detection: a high-availability master's (VRRP decided who holds it).
    AddHeldAddress {
        /// Interface index (the egress interface).
        index: u32,
        /// The address and prefix length.
        source: SourceAddress,
    },
    /// Remove the source address from interface `index` (a high-availability master
    /// stepping down, or a leftover of one).
    DeleteAddress {
        /// Interface index (the egress interface).
        index: u32,
        /// The address and prefix length.
        source: SourceAddress,
    },
    /// Bring interface `index` up.
    LinkUp(u32),
    /// Wait, bounded, until duplicate address detection has passed for `address` on
    /// `interface`; a duplicate is an error naming `field`.
    AwaitAddress {
        /// Interface index.
        index: u32,
        /// Its name (its DAD settings are read from its sysctls).
        interface: String,
        /// The IPv6 address.
        address: IpAddr,
        /// The variable or field that gave it.
        field: &'static str,
    },
    /// Add a route.
    AddRoute(RouteMessage),
    /// Delete a route.
    DeleteRoute(RouteMessage),
    /// Add the fwmark rule of a family that sends replies to the reply table.
    AddReplyRule(Family),
    /// Set a sysctl.
    SetSysctl(Sysctl),
    /// Apply an `iptables-restore --noflush` script (`ip6tables-restore` for IPv6);
    /// `undo` puts the tables back as `before` (the dump the script was planned from)
    /// had them.
    Firewall {
        /// The family whose tools apply it.
        family: Family,
        /// The script.
        script: String,
        /// The script that restores the changed tables.
        undo: String,
        /// The `iptables-save` dump before.
        before: String,
    },
    /// Announce `address` at `mac` on interface `index` (gratuitous ARP for IPv4, an
    /// unsolicited neighbour advertisement for IPv6).
    Announce {
        /// Interface index.
        index: u32,
        /// Its hardware address.
        mac: [u8; 6],
        /// The address announced.
        address: IpAddr,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::AddAddress { source, index } => write!(f, "add address {source} to #{index}"),
            Step::AddHeldAddress { source, index } => {
                write!(f, "add address {source} to #{index} (no DAD)")
            }
            Step::DeleteAddress { source, index } => {
                write!(f, "remove address {source} from #{index}")
            }
            Step::LinkUp(index) => write!(f, "bring #{index} up"),
            Step::AwaitAddress {
                address, interface, ..
            } => write!(
                f,
                "wait for duplicate address detection of {address} on {interface}"
            ),
            Step::AddRoute(r) => write!(f, "add route {}", netlink::describe_route(r)),
            Step::DeleteRoute(r) => write!(f, "delete route {}", netlink::describe_route(r)),
            Step::AddReplyRule(family) => write!(
                f,
                "add {}rule fwmark {REPLY_MARK:#x}/{REPLY_MARK:#x} lookup {REPLY_TABLE} priority {REPLY_RULE_PRIORITY}",
                family.qualifier()
            ),
            Step::SetSysctl(Sysctl { key, value }) => write!(f, "set sysctl {key}={value}"),
            Step::Firewall { family, script, .. } => write!(
                f,
                "apply {} {}firewall lines",
                script.lines().filter(|l| l.starts_with('-')).count(),
                family.qualifier()
            ),
            Step::Announce { address, index, .. } => {
                write!(f, "announce {address} on #{index}")
            }
        }
    }
}
