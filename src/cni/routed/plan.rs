//! What a routed attachment changes on the node, decided from a [`NodeIntent`] and
//! what was [`NodeObserved`] alone (pure): the steps of ADD ([`plan`]), the problems
//! CHECK names ([`problems`]), and the steps of DEL ([`teardown`]), all as
//! [`Step`]s of the shared setup path.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netlink_packet_route::route::RouteMessage;

use super::firewall::{self, NatState};
use super::{Holder, NODE_PROTOCOL, NODE_RULE_PRIORITY, NODE_TABLES, NodeIntent};
use crate::cni::code;
use crate::config::family::Family;
use crate::error::{Error, Result};
use crate::setup::{FirewallUndo, SourceRuleSpec, Step};
use crate::sys::netlink::{self, Link};
use crate::sys::sysctl::Sysctl;

/// The node as found, for one attachment.
#[derive(Debug, Clone, Default)]
pub struct NodeObserved {
    /// The node end of the veth pair, if it exists.
    pub node_end: Option<Link>,
    /// The master, if it exists.
    pub master: Option<Link>,
    /// The value of each sysctl of [`wanted_sysctls`] (absent: unreadable).
    pub sysctls: Vec<(String, String)>,
    /// Each source of the intent, in its order.
    pub families: Vec<NodeFamily>,
}

/// The node's pieces of one source.
#[derive(Debug, Clone)]
pub struct NodeFamily {
    /// The source.
    pub source: IpAddr,
    /// Who holds it.
    pub holder: Holder,
    /// The main table's host route to it, if any.
    pub host_route: Option<RouteMessage>,
    /// The rules `from SOURCE` at [`NODE_RULE_PRIORITY`].
    pub rules: Vec<SourceRuleSpec>,
    /// The routes of those rules' tables.
    pub table_routes: Vec<RouteMessage>,
    /// The tables of [`NODE_TABLES`] that a rule or a route of the family names.
    pub used_tables: BTreeSet<u32>,
    /// The family's `iptables-save` dump.
    pub nat_dump: String,
    /// The interfaces with a proxy entry of the source.
    pub proxies: Vec<u32>,
    /// Routes of ours (`proto 69`) of the family in tables of [`NODE_TABLES`] that no
    /// rule names: left by a rule removed by hand, useless to any attachment.
    pub orphans: Vec<RouteMessage>,
}

/// The sysctls the node needs (key, value): forwarding from the node end and the
/// master (IPv4 has a switch an interface; IPv6 one for all), the node end's IPv6
/// on for an IPv6 source, and proxy NDP on the master for `proxyArp` with IPv6.
pub fn wanted_sysctls(intent: &NodeIntent) -> Vec<(String, &'static str)> {
    let (node_end, master) = (&intent.node_end, &intent.master);
    let has = |family| intent.sources.iter().any(|(s, _)| Family::of(*s) == family);
    let mut wanted = Vec::new();
    if has(Family::V4) {
        wanted.push((format!("net/ipv4/conf/{node_end}/forwarding"), "1"));
        wanted.push((format!("net/ipv4/conf/{master}/forwarding"), "1"));
    }
    if has(Family::V6) {
        wanted.push((format!("net/ipv6/conf/{node_end}/disable_ipv6"), "0"));
        wanted.push(("net/ipv6/conf/all/forwarding".into(), "1"));
        if intent.proxy_arp {
            wanted.push((format!("net/ipv6/conf/{master}/proxy_ndp"), "1"));
        }
    }
    wanted
}

/// `SOURCE dev NODE_END proto 69` in the main table.
pub fn host_route(node_end: u32, source: IpAddr) -> RouteMessage {
    netlink::with_protocol(netlink::host_route(node_end, source), NODE_PROTOCOL)
}

/// `default via GATEWAY dev MASTER proto 69` in `table`.
pub fn table_default(master: u32, gateway: IpAddr, table: u32) -> RouteMessage {
    let route = netlink::in_table(&netlink::default_via(master, gateway), table);
    netlink::with_protocol(route, NODE_PROTOCOL)
}

fn is_table_default(route: &RouteMessage, table: u32, master: u32, gateway: IpAddr) -> bool {
    netlink::route_table(route) == table
        && route.header.destination_prefix_length == 0
        && netlink::route_interface(route) == Some(master)
        && netlink::route_gateway(route) == Some(gateway)
}

/// The rule of ours that already sends `source` through `gateway` on `master`.
fn rule_in_place(found: &NodeFamily, master: u32, gateway: IpAddr) -> Option<&SourceRuleSpec> {
    found.rules.iter().find(|r| {
        r.protocol == NODE_PROTOCOL
            && found
                .table_routes
                .iter()
                .any(|route| is_table_default(route, r.table, master, gateway))
    })
}

/// The steps that bring the node to `intent`: the node end up, sysctls, then per
/// source the host route, a table's default route and the rule to it (the table
/// before the rule, so the source never meets an empty table), the `nat` exemption
/// and the proxy entry. Fails, before any change, when another attachment holds a
/// source, or when no table is free.
pub fn plan(intent: &NodeIntent, observed: &NodeObserved) -> Result<Vec<Step>> {
    let (node_end, master) = links(intent, observed)?;
    let mut steps = Vec::new();
    if !node_end.up {
        steps.push(Step::LinkUp(node_end.index));
    }
    for (key, value) in wanted_sysctls(intent) {
        if sysctl_value(observed, &key) != Some(value) {
            steps.push(Step::SetSysctl(Sysctl {
                key,
                value: value.into(),
            }));
        }
    }
    for (&(source, gateway), found) in intent.sources.iter().zip(&observed.families) {
        refuse_held(source, &found.holder)?;
        let on_node_end = |r: &RouteMessage| netlink::route_interface(r) == Some(node_end.index);
        if !found.host_route.as_ref().is_some_and(on_node_end) {
            steps.push(Step::AddRoute(host_route(node_end.index, source)));
        }
        let keep = rule_in_place(found, master.index, gateway).copied();
        for rule in found.rules.iter().filter(|r| Some(**r) != keep) {
            steps.push(Step::DeleteSourceRule(*rule));
            steps.extend(ours_in_table(found, rule.table));
        }
        if keep.is_none() {
            let table = free_table(&found.used_tables).ok_or_else(|| {
                Error::cni(
                    code::PLUGIN_FAILURE,
                    format!(
                        "no free routing table for {source} on this node: every table from {} to {} is in use",
                        NODE_TABLES.start(),
                        NODE_TABLES.end()
                    ),
                )
            })?;
            steps.push(Step::AddRoute(table_default(master.index, gateway, table)));
            steps.push(Step::AddSourceRule(SourceRuleSpec {
                source,
                table,
                priority: NODE_RULE_PRIORITY,
                protocol: NODE_PROTOCOL,
            }));
        }
        let nat = NatState::read(&found.nat_dump);
        if let Some((script, undo)) =
            firewall::add_script(&nat, source, &intent.master, &intent.container)
        {
            steps.push(Step::Firewall {
                family: Family::of(source),
                script,
                undo: FirewallUndo::Rules(undo),
                before: found.nat_dump.clone(),
            });
        }
        if intent.proxy_arp && !found.proxies.contains(&master.index) {
            steps.push(Step::AddProxy {
                index: master.index,
                address: source,
            });
        }
    }
    Ok(steps)
}

/// Every piece of `intent` the node lacks, each named; empty when all is in place.
pub fn problems(intent: &NodeIntent, observed: &NodeObserved) -> Vec<String> {
    let (node_end, master) = match links(intent, observed) {
        Ok(links) => links,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = Vec::new();
    if !node_end.up {
        problems.push(format!("{} is down", intent.node_end));
    }
    for (key, value) in wanted_sysctls(intent) {
        let found = sysctl_value(observed, &key).unwrap_or("unreadable");
        if found != value {
            problems.push(format!("{} is {found}, not {value}", key.replace('/', ".")));
        }
    }
    for (&(source, gateway), found) in intent.sources.iter().zip(&observed.families) {
        if let Err(e) = refuse_held(source, &found.holder) {
            problems.push(e.to_string());
            continue;
        }
        let ip = match Family::of(source) {
            Family::V4 => "ip",
            Family::V6 => "ip -6",
        };
        if found.holder != Holder::This {
            problems.push(format!(
                "{ip} route `{source} dev {}` is missing",
                intent.node_end
            ));
        }
        if rule_in_place(found, master.index, gateway).is_none() {
            problems.push(format!(
                "{ip} rule `from {source} lookup TABLE priority {NODE_RULE_PRIORITY} proto {NODE_PROTOCOL}` with `default via {gateway} dev {}` in TABLE is missing (found rules: {})",
                intent.master,
                describe_rules(&found.rules)
            ));
        }
        let tool = if source.is_ipv4() { "" } else { "ip6tables " };
        let nat = NatState::read(&found.nat_dump);
        for problem in firewall::problems(&nat, source, &intent.master, &intent.container) {
            problems.push(format!("{tool}{problem}"));
        }
        if intent.proxy_arp && !found.proxies.contains(&master.index) {
            problems.push(format!(
                "{ip} neigh proxy {source} dev {} is missing (proxyArp)",
                intent.master
            ));
        }
    }
    problems
}

/// The steps of DEL: each source's rules and table routes of ours, its `nat`
/// exemption and (with `proxy_arp`) its proxy entries, unless another attachment
/// holds the source (then they are its own); and routes of ours in tables no rule
/// names. The host route goes with the node end.
pub fn teardown(observed: &NodeObserved, proxy_arp: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    for found in &observed.families {
        if matches!(found.holder, Holder::Other { .. }) {
            continue;
        }
        for rule in found.rules.iter().filter(|r| r.protocol == NODE_PROTOCOL) {
            steps.push(Step::DeleteSourceRule(*rule));
            steps.extend(ours_in_table(found, rule.table));
        }
        let nat = NatState::read(&found.nat_dump);
        if let Some(script) = firewall::remove_script(&nat, found.source) {
            steps.push(Step::Firewall {
                family: Family::of(found.source),
                script,
                undo: FirewallUndo::Nothing,
                before: found.nat_dump.clone(),
            });
        }
        if proxy_arp {
            steps.extend(found.proxies.iter().map(|&index| Step::DeleteProxy {
                index,
                address: found.source,
            }));
        }
        steps.extend(found.orphans.iter().cloned().map(Step::DeleteRoute));
    }
    steps
}

fn links(intent: &NodeIntent, observed: &NodeObserved) -> Result<(Link, Link)> {
    let missing = |name: &str| Error::State(format!("interface {name} does not exist on the node"));
    Ok((
        observed.node_end.ok_or_else(|| missing(&intent.node_end))?,
        observed.master.ok_or_else(|| missing(&intent.master))?,
    ))
}

fn sysctl_value<'a>(observed: &'a NodeObserved, key: &str) -> Option<&'a str> {
    observed
        .sysctls
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Another attachment, or an interface not of this plugin, holds `source`.
fn refuse_held(source: IpAddr, holder: &Holder) -> Result<()> {
    match holder {
        Holder::Nobody | Holder::This => Ok(()),
        Holder::Other {
            interface,
            container,
        } => Err(Error::cni(
            code::TRY_AGAIN_LATER,
            format!(
                "ip.addresses: {source} is routed on this node to {interface}, the attachment of container {container}: one attachment a source a node (try again when it is deleted)"
            ),
        )),
        Holder::Foreign { interface } => Err(Error::cni(
            code::PLUGIN_FAILURE,
            format!(
                "ip.addresses: {source} is routed on this node to {interface}, which this plugin did not make: nothing was changed"
            ),
        )),
    }
}

/// The routes of ours in `table`.
fn ours_in_table(found: &NodeFamily, table: u32) -> impl Iterator<Item = Step> + '_ {
    found
        .table_routes
        .iter()
        .filter(move |r| {
            netlink::route_table(r) == table && netlink::route_protocol(r) == NODE_PROTOCOL
        })
        .cloned()
        .map(Step::DeleteRoute)
}

/// The lowest table of [`NODE_TABLES`] not in `used`.
pub fn free_table(used: &BTreeSet<u32>) -> Option<u32> {
    NODE_TABLES.clone().find(|t| !used.contains(t))
}

fn describe_rules(rules: &[SourceRuleSpec]) -> String {
    match rules {
        [] => "none".into(),
        rules => rules
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests;
