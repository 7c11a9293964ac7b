//! Reading the state of every piece of the setup from the namespace.

use netlink_packet_route::route::{RouteHeader, RouteMessage};

use crate::config::router::RouterConfig;
use crate::error::{Error, Result};
use crate::setup::firewall::{POD_INTERFACE, REPLY_MARK, REPLY_TABLE};
use crate::sys::netlink::{Link, Netlink};
use crate::sys::sysctl;

/// The interface that carries `EGRESS_SOURCE`.
pub const MACVLAN: &str = "macvlan0";

pub(super) const IP_FORWARD: &str = "net/ipv4/ip_forward";
const RP_FILTER_ALL: &str = "net/ipv4/conf/all/rp_filter";

pub(super) fn rp_filter_key(interface: &str) -> String {
    format!("net/ipv4/conf/{interface}/rp_filter")
}

/// The state of each piece of the setup, read from the namespace.
#[derive(Debug, Clone)]
pub struct Observed {
    /// `macvlan0` (its `up` field: whether it is administratively up).
    pub macvlan: Link,
    /// `eth0`, the pod's cluster interface.
    pub pod: Link,
    /// Whether `EGRESS_SOURCE`'s address is on `macvlan0`.
    pub source_present: bool,
    /// Whether the kernel's route to the gateway goes through `macvlan0`.
    pub gateway_via_macvlan: bool,
    /// Default routes of the main table.
    pub main_defaults: Vec<RouteMessage>,
    /// Routes of the reply table.
    pub reply_routes: Vec<RouteMessage>,
    /// Whether the fwmark rule for replies exists.
    pub reply_rule: bool,
    /// `net.ipv4.ip_forward`.
    pub ip_forward: String,
    /// `net.ipv4.conf.all.rp_filter` and `net.ipv4.conf.eth0.rp_filter`.
    pub rp_filter: (String, String),
}

/// Reads every piece of the setup separately; fails when an interface is missing.
pub async fn observe(nl: &Netlink, config: &RouterConfig) -> Result<Observed> {
    let macvlan = nl.link(MACVLAN).await.map_err(|e| {
        Error::State(format!(
            "{e}: the pod needs a macvlan0 interface (annotation pod.network.openshift.io/assign-macvlan or the CNI plugin)"
        ))
    })?;
    let pod = nl.link(POD_INTERFACE).await?;
    let main_defaults = nl
        .routes(u32::from(RouteHeader::RT_TABLE_MAIN))
        .await?
        .into_iter()
        .filter(|r| r.header.destination_prefix_length == 0)
        .collect();
    Ok(Observed {
        source_present: nl.has_address(macvlan.index, config.source.address).await?,
        gateway_via_macvlan: nl.route_interface(config.gateway).await? == Some(macvlan.index),
        macvlan,
        pod,
        main_defaults,
        reply_routes: nl.routes(REPLY_TABLE).await?,
        reply_rule: nl.mark_rule(REPLY_MARK, REPLY_TABLE).await?.is_some(),
        ip_forward: sysctl::read(IP_FORWARD)?,
        rp_filter: (
            sysctl::read(RP_FILTER_ALL)?,
            sysctl::read(&rp_filter_key(POD_INTERFACE))?,
        ),
    })
}
