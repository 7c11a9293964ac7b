//! The node side of a routed attachment (`interfaceType` `routed` and
//! `aws-elastic-ip`, SPEC section 11): a veth pair whose pod end is `CNI_IFNAME`
//! (set up on the shared setup path, its gateway pinned to the node end) and whose
//! node end (`egv` + 12 hex digits of the container ID) the node routes.
//!
//! What one attachment adds on the node, for each source address `S` with gateway `G`
//! on the master `M`:
//! - `S/32 dev egv... proto 69` (IPv6: `/128`) in the main table: the way in;
//! - `from S lookup T priority 4553 proto 69` and, in table `T` (the lowest table of
//!   [`NODE_TABLES`] that no rule or route names), `default via G dev M proto 69`: the
//!   way out by the master whatever the node's own default route is;
//! - in `nat` (`iptables`, `ip6tables`), the chain `EGRESS-ROUTER-ROUTED`, jumped to
//!   first from `POSTROUTING`, with `-s S -o M -m comment --comment "egress-router
//!   CONTAINER" -j ACCEPT`: no masquerade or SNAT rule later in `POSTROUTING`
//!   rewrites the source;
//! - forwarding: `net.ipv4.conf.{egv...,M}.forwarding=1`, `net.ipv6.conf.all.forwarding=1`;
//! - with `proxyArp`: the proxy entry `S dev M` (and, for IPv6,
//!   `net.ipv6.conf.M.proxy_ndp=1`), and an announcement of `S` at `M`'s address.
//!
//! Who holds `S` on the node is the interface its host route leads to: an interface
//! of this plugin (alias `egress-router CONTAINER`) names its container. DEL removes
//! the pieces of `S` unless another container's attachment holds it; ADD refuses a
//! source another live attachment holds and replaces what a gone one left.
//!
//! - [`firewall`]: the `nat` scripts (pure); [`plan`]: the steps and the problems
//!   (pure); [`observe`]: reading the node; [`add`]: ADD, [`commands`]: DEL and
//!   CHECK of the routed kinds.

pub mod add;
pub mod commands;
pub mod firewall;
pub mod observe;
pub mod plan;

use std::net::IpAddr;
use std::ops::RangeInclusive;

use crate::cni::config::NetConf;
use crate::cni::host;
use crate::cni::ip::IpConfig;
use crate::cni::request::Container;

/// Priority of the node's rules `from SOURCE lookup TABLE` (after the low priorities
/// cluster network plugins use, before the main table's 32766; the router's reply
/// rule, 4552, lives in pods, never on the node).
pub const NODE_RULE_PRIORITY: u32 = 4553;
/// The routing tables the node's rules look up, one an attachment's source.
pub const NODE_TABLES: RangeInclusive<u32> = 4_553_000..=4_553_999;
/// The protocol (`proto 69`) that marks the node's routes and rules as this plugin's.
pub const NODE_PROTOCOL: u8 = 69;
/// The setup lock of the node's namespace, held by ADD and DEL of routed attachments.
pub const NODE_LOCK: &str = "egress-router-node";

/// What one routed attachment needs on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIntent {
    /// `CNI_CONTAINERID`.
    pub container: String,
    /// The node end of the veth pair.
    pub node_end: String,
    /// The master: where the sources leave.
    pub master: String,
    /// Each source with its gateway on the master, in the order of the sources.
    pub sources: Vec<(IpAddr, IpAddr)>,
    /// `interfaceArgs.proxyArp`.
    pub proxy_arp: bool,
}

impl NodeIntent {
    /// What `container`'s attachment with `ip` needs on the node: its sources leaving
    /// by `master` through `gateways` (one a source, in order).
    pub fn new(
        container: &Container,
        master: &str,
        ip: &IpConfig,
        gateways: &[IpAddr],
        config: &NetConf,
    ) -> NodeIntent {
        NodeIntent {
            container: container.id.clone(),
            node_end: host::node_end_name(&container.id),
            master: master.to_string(),
            sources: ip
                .sources
                .iter()
                .map(|s| s.address)
                .zip(gateways.iter().copied())
                .collect(),
            proxy_arp: config.interface.proxy_arp,
        }
    }
}

/// Who holds a source on the node: where its host route leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// No host route.
    Nobody,
    /// The interface of this container (the node end).
    This,
    /// Another container's attachment: its node end and container ID.
    Other {
        /// The interface.
        interface: String,
        /// Its container.
        container: String,
    },
    /// An interface this plugin did not make.
    Foreign {
        /// The interface.
        interface: String,
    },
}

/// The prefix length of one address (`/32`, `/128`).
pub fn host_len(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}
