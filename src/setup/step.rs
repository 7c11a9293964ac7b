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
        /// Whether the kernel adds the on-link route of its prefix (not on a routed
        /// egress interface: `noprefixroute`).
        prefix_route: bool,
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
    /// Pin `address` on interface `index` to `mac` (a permanent neighbour entry).
    SetNeighbour {
        /// Interface index.
        index: u32,
        /// The next hop's address.
        address: IpAddr,
        /// Its link-layer address.
        mac: [u8; 6],
    },
    /// Add the rule `from SOURCE lookup TABLE priority PRIORITY proto PROTOCOL`.
    AddSourceRule(SourceRuleSpec),
    /// Delete the rule `from SOURCE lookup TABLE priority PRIORITY` (of any protocol).
    DeleteSourceRule(SourceRuleSpec),
    /// Add the proxy neighbour entry of `address` on interface `index`.
    AddProxy {
        /// Interface index.
        index: u32,
        /// The address answered for.
        address: IpAddr,
    },
    /// Delete the proxy neighbour entry of `address` on interface `index`.
    DeleteProxy {
        /// Interface index.
        index: u32,
        /// The address.
        address: IpAddr,
    },
    /// Add the fwmark rule of a family that sends replies to the reply table.
    AddReplyRule(Family),
    /// Set a sysctl.
    SetSysctl(Sysctl),
    /// Apply an `iptables-restore --noflush` script (`ip6tables-restore` for IPv6);
    /// `undo` takes it back should a later step fail; `before` is the dump the script
    /// was planned from.
    Firewall {
        /// The family whose tools apply it.
        family: Family,
        /// The script.
        script: String,
        /// How the script is taken back.
        undo: FirewallUndo,
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

/// A rule by source address, as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRuleSpec {
    /// The source address it matches (a host prefix).
    pub source: IpAddr,
    /// The table it looks up.
    pub table: u32,
    /// Its priority.
    pub priority: u32,
    /// Its protocol (`proto`), which marks whose it is.
    pub protocol: u8,
}

impl fmt::Display for SourceRuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SourceRuleSpec {
            source,
            table,
            priority,
            protocol,
        } = self;
        let qualifier = Family::of(*source).qualifier();
        write!(
            f,
            "{qualifier}rule from {source} lookup {table} priority {priority} proto {protocol}"
        )
    }
}

/// How a firewall step is taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirewallUndo {
    /// Restore, without `--noflush`, every table the script names as it was: for the
    /// pod's namespace, whose tables nobody else changes meanwhile.
    Tables(String),
    /// Restore with `--noflush` a script that deletes only what the step added: for the
    /// node, whose tables kube-proxy and others change at any time.
    Rules(String),
    /// Nothing to take back (a teardown step).
    Nothing,
}
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::AddAddress {
                source,
                index,
                prefix_route: true,
            } => write!(f, "add address {source} to #{index}"),
            Step::AddAddress { source, index, .. } => {
                write!(f, "add address {source} to #{index} noprefixroute")
            }
            Step::SetNeighbour {
                index,
                address,
                mac,
            } => write!(
                f,
                "add neighbour {address} lladdr {} on #{index}",
                netlink::show_mac(mac)
            ),
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
            Step::AddSourceRule(rule) => write!(f, "add {rule}"),
            Step::DeleteSourceRule(rule) => write!(f, "delete {rule}"),
            Step::AddProxy { index, address } => {
                write!(f, "add neighbour proxy {address} on #{index}")
            }
            Step::DeleteProxy { index, address } => {
                write!(f, "delete neighbour proxy {address} on #{index}")
            }
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
