//! Reading the state of every piece of the setup from the namespace.

use netlink_packet_route::route::{RouteHeader, RouteMessage};

use super::Namespace;
use super::intent::{Intent, PodSide};
use crate::error::{Error, Result};
use crate::setup::firewall::{self, REPLY_MARK, REPLY_TABLE, Rule};
use crate::sys::netlink::Link;
use crate::sys::sysctl;

pub(super) const IP_FORWARD: &str = "net/ipv4/ip_forward";
const RP_FILTER_ALL: &str = "net/ipv4/conf/all/rp_filter";

/// The sysctl key of `interface`'s reverse path filter.
pub(super) fn rp_filter_key(interface: &str) -> String {
    format!("net/ipv4/conf/{interface}/rp_filter")
}

/// One interface of the pod's cluster side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLink {
    /// Its name.
    pub name: String,
    /// The link.
    pub link: Link,
    /// `net.ipv4.conf.NAME.rp_filter`.
    pub rp_filter: String,
}

/// The state of each piece of the setup, read from the namespace.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The egress interface (its `up` field: whether it is administratively up).
    pub egress: Link,
    /// The cluster-side interfaces.
    pub pod_links: Vec<PodLink>,
    /// Whether the source address is on the egress interface.
    pub source_present: bool,
    /// Whether the kernel's route to the gateway goes through the egress interface.
    pub gateway_via_egress: bool,
    /// Default routes of the main table.
    pub main_defaults: Vec<RouteMessage>,
    /// Routes of the reply table.
    pub reply_routes: Vec<RouteMessage>,
    /// Whether the fwmark rule for replies exists.
    pub reply_rule: bool,
    /// `net.ipv4.ip_forward`.
    pub ip_forward: String,
    /// `net.ipv4.conf.all.rp_filter`.
    pub rp_filter_all: String,
    /// The `iptables-save` dump of the namespace.
    pub firewall: String,
    /// The wanted rules that are not in place; examined only by [`check`] (the rule
    /// checks wait for the xtables lock), empty otherwise.
    pub firewall_missing: Vec<Rule>,
}

/// Reads every piece of the setup separately; fails when an interface is missing.
pub async fn observe(ns: &Namespace, intent: &Intent) -> Result<Observed> {
    let nl = &ns.nl;
    let egress = nl.link(&intent.egress).await.map_err(|e| {
        Error::State(format!(
            "{e}: the pod needs its egress interface {} (annotation pod.network.openshift.io/assign-macvlan or the CNI plugin)",
            intent.egress
        ))
    })?;
    let links = match &intent.pod {
        PodSide::Interface(name) => vec![(name.clone(), nl.link(name).await?)],
        PodSide::AllButEgress => nl
            .links()
            .await?
            .into_iter()
            .filter(|(name, link)| name != "lo" && link.index != egress.index)
            .collect(),
    };
    let mut pod_links = Vec::new();
    for (name, link) in links {
        let rp_filter = sysctl::read(&ns.netns, &rp_filter_key(&name))?;
        pod_links.push(PodLink {
            name,
            link,
            rp_filter,
        });
    }
    let main_defaults = nl
        .routes(u32::from(RouteHeader::RT_TABLE_MAIN))
        .await?
        .into_iter()
        .filter(|r| r.header.destination_prefix_length == 0)
        .collect();
    Ok(Observed {
        source_present: nl.has_address(egress.index, intent.source.address).await?,
        gateway_via_egress: nl.route_interface(intent.gateway).await? == Some(egress.index),
        egress,
        pod_links,
        main_defaults,
        reply_routes: nl.routes(REPLY_TABLE).await?,
        reply_rule: nl.mark_rule(REPLY_MARK, REPLY_TABLE).await?.is_some(),
        ip_forward: sysctl::read(&ns.netns, IP_FORWARD)?,
        rp_filter_all: sysctl::read(&ns.netns, RP_FILTER_ALL)?,
        firewall: ns.backend.save_all(&ns.netns)?,
        firewall_missing: Vec::new(),
    })
}

/// [`observe`], and which wanted rules are missing (`iptables -C`): what a check needs.
pub async fn check(ns: &Namespace, intent: &Intent) -> Result<Observed> {
    let mut observed = observe(ns, intent).await?;
    observed.firewall_missing = missing(ns, &firewall::all_rules(&intent.firewall))?;
    Ok(observed)
}

/// The rules of `rules` that are not in place. One `iptables-restore` checks them all
/// (`-C` lines, which change nothing); only when that fails is each checked with
/// `iptables -C`, to name every missing one.
fn missing(ns: &Namespace, rules: &[Rule]) -> Result<Vec<Rule>> {
    let script = firewall::check_script(rules);
    if ns.backend.restore(&ns.netns, &script, true).is_ok() {
        return Ok(Vec::new());
    }
    let mut missing = Vec::new();
    for rule in rules {
        if !ns
            .backend
            .exists(&ns.netns, rule.table, rule.chain, &rule.spec)?
        {
            missing.push(rule.clone());
        }
    }
    Ok(missing)
}
