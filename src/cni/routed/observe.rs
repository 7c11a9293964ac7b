//! Reading the node's pieces of a routed attachment.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netlink_packet_route::route::RouteHeader;

use super::plan::{NodeFamily, NodeObserved, wanted_sysctls};
use super::{Holder, NODE_PROTOCOL, NODE_RULE_PRIORITY, NODE_TABLES, NodeIntent, host_len};
use crate::cni::host::Owner;
use crate::config::family::Family;
use crate::error::Result;
use crate::setup::{Namespace, SourceRuleSpec};
use crate::sys::netlink::{self, Netlink};
use crate::sys::sysctl;

/// Reads what the node has of `intent`.
pub async fn observe(node: &Namespace, intent: &NodeIntent) -> Result<NodeObserved> {
    let nl = &node.nl;
    let sources: Vec<IpAddr> = intent.sources.iter().map(|(s, _)| *s).collect();
    Ok(NodeObserved {
        node_end: nl.find_link(&intent.node_end).await?.map(|(link, _)| link),
        master: nl.find_link(&intent.master).await?.map(|(link, _)| link),
        sysctls: wanted_sysctls(intent)
            .into_iter()
            .filter_map(|(key, _)| {
                let value = sysctl::read(&node.netns, &key).ok()?;
                Some((key, value))
            })
            .collect(),
        families: observe_sources(node, &intent.container, &sources).await?,
    })
}

/// Reads the node's pieces of each of `sources`, for `container`.
pub async fn observe_sources(
    node: &Namespace,
    container: &str,
    sources: &[IpAddr],
) -> Result<Vec<NodeFamily>> {
    let mut families = Vec::new();
    for &source in sources {
        families.push(observe_source(node, container, source).await?);
    }
    Ok(families)
}

async fn observe_source(node: &Namespace, container: &str, source: IpAddr) -> Result<NodeFamily> {
    let nl = &node.nl;
    let family = Family::of(source);
    let routes = nl.all_routes(family).await?;
    let main = u32::from(RouteHeader::RT_TABLE_MAIN);
    let host_route = routes
        .iter()
        .find(|r| {
            netlink::route_table(r) == main
                && netlink::route_destination(r)
                    .is_some_and(|d| d.addr() == source && d.prefix_len() == host_len(source))
        })
        .cloned();
    let holder = match host_route.as_ref().and_then(netlink::route_interface) {
        None => Holder::Nobody,
        Some(index) => holder(nl, index, container).await?,
    };
    let all_rules = nl.source_rules(family).await?;
    let rules: Vec<SourceRuleSpec> = all_rules
        .iter()
        .filter(|r| r.source == source && r.priority == NODE_RULE_PRIORITY)
        .map(|r| SourceRuleSpec {
            source,
            table: r.table,
            priority: r.priority,
            protocol: r.protocol,
        })
        .collect();
    let named: BTreeSet<u32> = nl
        .rules(family)
        .await?
        .iter()
        .map(netlink::rule_table)
        .collect();
    let mut used_tables: BTreeSet<u32> = named
        .iter()
        .copied()
        .chain(routes.iter().map(netlink::route_table))
        .filter(|t| NODE_TABLES.contains(t))
        .collect();
    used_tables.extend(rules.iter().map(|r| r.table));
    let orphans = routes
        .iter()
        .filter(|r| {
            let table = netlink::route_table(r);
            NODE_TABLES.contains(&table)
                && !named.contains(&table)
                && netlink::route_protocol(r) == NODE_PROTOCOL
        })
        .cloned()
        .collect();
    let table_routes = routes
        .into_iter()
        .filter(|r| {
            rules
                .iter()
                .any(|rule| rule.table == netlink::route_table(r))
        })
        .collect();
    let nat_dump = node.backend.for_family(family)?.save_all(&node.netns)?;
    let proxies = nl
        .proxies()
        .await?
        .into_iter()
        .filter(|(_, address)| *address == source)
        .map(|(index, _)| index)
        .collect();
    Ok(NodeFamily {
        source,
        holder,
        host_route,
        rules,
        table_routes,
        used_tables,
        nat_dump,
        proxies,
        orphans,
    })
}

/// Who holds a source whose host route leads to interface `index`.
async fn holder(nl: &Netlink, index: u32, container: &str) -> Result<Holder> {
    let Some((interface, alias)) = nl.link_name(index).await? else {
        return Ok(Holder::Nobody);
    };
    Ok(match alias.as_deref().and_then(Owner::parse) {
        Some(owner) if owner.container == container => Holder::This,
        Some(owner) => Holder::Other {
            interface,
            container: owner.container,
        },
        None => Holder::Foreign { interface },
    })
}
