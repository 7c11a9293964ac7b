//! What to change and what is missing, decided from an [`Intent`] and what was
//! [`Observed`] alone (pure).
//!
//! [`plan`] and [`problems`] judge each piece of the setup by the same tests, so a
//! namespace that needs no step has no problem, and the reverse.

use std::fmt;
use std::net::Ipv4Addr;

use netlink_packet_route::route::RouteMessage;

use super::intent::Intent;
use super::observe::{IP_FORWARD, Observed, PodLink, rp_filter_key};
use crate::config::router::SourceAddress;
use crate::error::{Error, Result};
use crate::setup::firewall::{self, REPLY_MARK, REPLY_RULE_PRIORITY, REPLY_TABLE};
use crate::sys::netlink;
use crate::sys::sysctl::Sysctl;

/// One change to the namespace, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Add the source address to interface `index`.
    AddAddress {
        /// Interface index (the egress interface).
        index: u32,
        /// The address and prefix length.
        source: SourceAddress,
    },
    /// Bring interface `index` up.
    LinkUp(u32),
    /// Add a route.
    AddRoute(RouteMessage),
    /// Delete a route.
    DeleteRoute(RouteMessage),
    /// Add the fwmark rule that sends replies to the reply table.
    AddReplyRule,
    /// Set a sysctl.
    SetSysctl(Sysctl),
    /// Apply an `iptables-restore --noflush` script; `undo` puts the tables back as
    /// `before` (the dump the script was planned from) had them.
    Firewall {
        /// The script.
        script: String,
        /// The script that restores the changed tables.
        undo: String,
        /// The `iptables-save` dump before.
        before: String,
    },
    /// Announce `address` at `mac` on interface `index` (gratuitous ARP).
    Announce {
        /// Interface index.
        index: u32,
        /// Its hardware address.
        mac: [u8; 6],
        /// The address announced.
        address: Ipv4Addr,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::AddAddress { source, index } => write!(f, "add address {source} to #{index}"),
            Step::LinkUp(index) => write!(f, "bring #{index} up"),
            Step::AddRoute(r) => write!(f, "add route {}", netlink::describe_route(r)),
            Step::DeleteRoute(r) => write!(f, "delete route {}", netlink::describe_route(r)),
            Step::AddReplyRule => write!(
                f,
                "add rule fwmark {REPLY_MARK:#x}/{REPLY_MARK:#x} lookup {REPLY_TABLE} priority {REPLY_RULE_PRIORITY}"
            ),
            Step::SetSysctl(Sysctl { key, value }) => write!(f, "set sysctl {key}={value}"),
            Step::Firewall { script, .. } => write!(
                f,
                "apply {} firewall lines",
                script.lines().filter(|l| l.starts_with('-')).count()
            ),
            Step::Announce { address, index, .. } => {
                write!(f, "announce {address} on #{index}")
            }
        }
    }
}

/// The steps that bring each missing piece into place, in order, ending with the
/// firewall script (idempotent, applied every time). Fails, before any change, when replies need a cluster-side
/// default route to keep and there is none, in the reply table or the main table.
pub fn plan(intent: &Intent, observed: &Observed) -> Result<Vec<Step>> {
    let index = observed.egress.index;
    let mut steps = Vec::new();
    if !observed.source_present {
        steps.push(Step::AddAddress {
            index,
            source: intent.source,
        });
    }
    if !observed.egress.up {
        steps.push(Step::LinkUp(index));
    }
    if !observed.gateway_via_egress {
        steps.push(Step::AddRoute(netlink::host_route(index, intent.gateway)));
    }
    let keep = pod_defaults(observed);
    let replies = !reply_route_kept(observed) && !keep.is_empty();
    if !reply_route_kept(observed) && keep.is_empty() && intent.replies_required {
        return Err(Error::State(format!(
            "{} has no default route to keep in reply table {REPLY_TABLE} (main table defaults: {}): replies to clients outside its subnet would have no way back",
            pod_names(observed),
            describe_all(&observed.main_defaults)
        )));
    }
    if replies {
        steps.extend(
            keep.iter()
                .map(|r| Step::AddRoute(netlink::in_table(r, REPLY_TABLE))),
        );
    }
    if !default_in_place(intent, observed) {
        steps.extend(
            observed
                .main_defaults
                .iter()
                .cloned()
                .map(Step::DeleteRoute),
        );
        steps.push(Step::AddRoute(netlink::default_route(
            index,
            intent.gateway,
            intent.source.address,
        )));
    }
    if !observed.reply_rule && (replies || reply_route_kept(observed)) {
        steps.push(Step::AddReplyRule);
    }
    if forwarding_off(intent, observed) {
        steps.push(Step::SetSysctl(Sysctl {
            key: IP_FORWARD.into(),
            value: "1".into(),
        }));
    }
    // Strict mode (1) drops client packets whose source the main table now routes via
    // the egress interface, so the cluster side is switched to loose mode (2).
    for link in strict_pod_links(observed) {
        steps.push(Step::SetSysctl(Sysctl {
            key: rp_filter_key(&link.name),
            value: "2".into(),
        }));
    }
    // Applied every time: it declares our chains (which refills them), adds only the
    // jumps that are missing, and NAT in the built-in chains replaces what they held
    // (SPEC section 3), so rules of an earlier list do not linger.
    steps.push(Step::Firewall {
        script: firewall::restore_script(&observed.firewall, &intent.firewall),
        undo: firewall::rollback_script(&observed.firewall, firewall::tables(&intent.firewall)),
        before: observed.firewall.clone(),
    });
    Ok(steps)
}

/// The announcement a setup ends with.
pub fn announcement(intent: &Intent, observed: &Observed) -> Step {
    Step::Announce {
        index: observed.egress.index,
        mac: observed.egress.mac,
        address: intent.source.address,
    }
}

/// Every piece of the setup that is not in place, each named precisely.
pub fn problems(intent: &Intent, observed: &Observed) -> Vec<String> {
    let (address, gateway, egress) = (intent.source.address, intent.gateway, &intent.egress);
    let mut problems = Vec::new();
    if !observed.source_present {
        problems.push(format!("{egress} does not have address {address}"));
    }
    if !observed.egress.up {
        problems.push(format!("{egress} is down"));
    }
    if !observed.gateway_via_egress {
        problems.push(format!(
            "the route to gateway {gateway} does not use {egress}"
        ));
    }
    if !default_in_place(intent, observed) {
        problems.push(format!(
            "the main table's default route is not `via {gateway} dev {egress} src {address}` (found: {})",
            describe_all(&observed.main_defaults)
        ));
    }
    let keep_needed = intent.replies_required
        || !pod_defaults(observed).is_empty()
        || !observed.reply_routes.is_empty();
    if !observed.reply_rule && keep_needed {
        problems.push(format!(
            "ip rule `fwmark {REPLY_MARK:#x}/{REPLY_MARK:#x} lookup {REPLY_TABLE}` is missing"
        ));
    }
    if !reply_route_kept(observed) && keep_needed {
        problems.push(format!(
            "reply table {REPLY_TABLE} has no route via {}",
            pod_names(observed)
        ));
    }
    for link in strict_pod_links(observed) {
        let name = &link.name;
        problems.push(format!(
            "rp_filter of {name} is strict (net.ipv4.conf.all.rp_filter={}, net.ipv4.conf.{name}.rp_filter={})",
            observed.rp_filter_all, link.rp_filter
        ));
    }
    if forwarding_off(intent, observed) {
        problems.push(format!(
            "net.ipv4.ip_forward is {}, not 1",
            observed.ip_forward
        ));
    }
    for rule in &observed.firewall_missing {
        problems.push(format!("{} rule missing: {rule}", rule.table));
    }
    if firewall::has_surplus_jumps(&observed.firewall) {
        problems.push("a jump into the egress-router chains stands more than once".into());
    }
    problems
}

/// The main table has one default route: via the gateway on the egress interface,
/// from the source.
fn default_in_place(intent: &Intent, observed: &Observed) -> bool {
    match observed.main_defaults.as_slice() {
        [route] => {
            netlink::route_gateway(route) == Some(intent.gateway)
                && netlink::route_interface(route) == Some(observed.egress.index)
                && netlink::route_pref_source(route) == Some(intent.source.address)
        }
        _ => false,
    }
}

/// The main table's default routes through the cluster side.
fn pod_defaults(observed: &Observed) -> Vec<&RouteMessage> {
    observed
        .main_defaults
        .iter()
        .filter(|r| is_pod_route(observed, r))
        .collect()
}

fn is_pod_route(observed: &Observed, route: &RouteMessage) -> bool {
    let oif = netlink::route_interface(route);
    observed.pod_links.iter().any(|p| Some(p.link.index) == oif)
}

/// The reply table holds a default route through the cluster side (only a default
/// route takes replies to clients in any subnet back).
fn reply_route_kept(observed: &Observed) -> bool {
    observed
        .reply_routes
        .iter()
        .any(|r| r.header.destination_prefix_length == 0 && is_pod_route(observed, r))
}

/// The cluster-side interfaces whose effective rp_filter (the maximum of `all` and
/// their own) is strict.
fn strict_pod_links(observed: &Observed) -> Vec<&PodLink> {
    observed
        .pod_links
        .iter()
        .filter(|p| observed.rp_filter_all.as_str().max(p.rp_filter.as_str()) == "1")
        .collect()
}

fn forwarding_off(intent: &Intent, observed: &Observed) -> bool {
    intent.forwarding && observed.ip_forward != "1"
}

fn pod_names(observed: &Observed) -> String {
    if observed.pod_links.is_empty() {
        return "the pod (no other interface)".into();
    }
    let names: Vec<&str> = observed.pod_links.iter().map(|p| p.name.as_str()).collect();
    names.join(", ")
}

fn describe_all(routes: &[RouteMessage]) -> String {
    if routes.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = routes.iter().map(netlink::describe_route).collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests;
