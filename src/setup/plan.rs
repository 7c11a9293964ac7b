//! What to change and what is missing, decided from [`Observed`] alone (pure).
//!
//! [`plan`] and [`problems`] judge each piece of the setup by the same tests, so a
//! namespace that needs no step has no problem, and the reverse.

use std::fmt;

use netlink_packet_route::route::RouteMessage;

use super::observe::{IP_FORWARD, MACVLAN, Observed, rp_filter_key};
use crate::config::router::{RouterConfig, SourceAddress};
use crate::error::{Error, Result};
use crate::setup::firewall::{POD_INTERFACE, REPLY_MARK, REPLY_RULE_PRIORITY, REPLY_TABLE};
use crate::sys::netlink;
use crate::sys::sysctl::Sysctl;

/// One change to the namespace, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Add the source address to interface `index`.
    AddAddress {
        /// Interface index (`macvlan0`).
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
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::AddAddress { source, .. } => write!(f, "add address {source} to {MACVLAN}"),
            Step::LinkUp(_) => write!(f, "bring {MACVLAN} up"),
            Step::AddRoute(r) => write!(f, "add route {}", netlink::describe_route(r)),
            Step::DeleteRoute(r) => write!(f, "delete route {}", netlink::describe_route(r)),
            Step::AddReplyRule => write!(
                f,
                "add rule fwmark {REPLY_MARK:#x}/{REPLY_MARK:#x} lookup {REPLY_TABLE} priority {REPLY_RULE_PRIORITY}"
            ),
            Step::SetSysctl(Sysctl { key, value }) => write!(f, "set sysctl {key}={value}"),
        }
    }
}

/// The steps that bring each missing piece into place, in order; an empty list when the
/// whole setup is present. Fails, before any change, when `eth0` has no default route
/// to keep for replies and the reply table holds none either.
pub fn plan(observed: &Observed, config: &RouterConfig) -> Result<Vec<Step>> {
    let index = observed.macvlan.index;
    let mut steps = Vec::new();
    if !observed.source_present {
        steps.push(Step::AddAddress {
            index,
            source: config.source,
        });
    }
    if !observed.macvlan.up {
        steps.push(Step::LinkUp(index));
    }
    if !observed.gateway_via_macvlan {
        steps.push(Step::AddRoute(netlink::host_route(index, config.gateway)));
    }
    if !reply_route_kept(observed) {
        let pod_defaults: Vec<Step> = observed
            .main_defaults
            .iter()
            .filter(|r| netlink::route_interface(r) == Some(observed.pod.index))
            .map(|r| Step::AddRoute(netlink::in_table(r, REPLY_TABLE)))
            .collect();
        if pod_defaults.is_empty() {
            return Err(Error::State(format!(
                "{POD_INTERFACE} has no default route to keep in reply table {REPLY_TABLE} (main table defaults: {}): replies to clients outside {POD_INTERFACE}'s subnet would have no way back",
                describe_all(&observed.main_defaults)
            )));
        }
        steps.extend(pod_defaults);
    }
    if !default_in_place(observed, config) {
        steps.extend(
            observed
                .main_defaults
                .iter()
                .cloned()
                .map(Step::DeleteRoute),
        );
        steps.push(Step::AddRoute(netlink::default_route(
            index,
            config.gateway,
            config.source.address,
        )));
    }
    if !observed.reply_rule {
        steps.push(Step::AddReplyRule);
    }
    if forwarding_off(observed, config) {
        steps.push(Step::SetSysctl(Sysctl {
            key: IP_FORWARD.into(),
            value: "1".into(),
        }));
    }
    // Strict mode (1) drops client packets whose source the main table now routes via
    // macvlan0, so eth0 is switched to loose mode (2): reachability through any route.
    if rp_filter_strict(observed) {
        steps.push(Step::SetSysctl(Sysctl {
            key: rp_filter_key(POD_INTERFACE),
            value: "2".into(),
        }));
    }
    Ok(steps)
}

/// Every piece of the network setup that is not in place, each named precisely.
pub fn problems(observed: &Observed, config: &RouterConfig) -> Vec<String> {
    let (address, gateway) = (config.source.address, config.gateway);
    let mut problems = Vec::new();
    if !observed.source_present {
        problems.push(format!("{MACVLAN} does not have address {address}"));
    }
    if !observed.macvlan.up {
        problems.push(format!("{MACVLAN} is down"));
    }
    if !observed.gateway_via_macvlan {
        problems.push(format!(
            "the route to gateway {gateway} does not use {MACVLAN}"
        ));
    }
    if !default_in_place(observed, config) {
        problems.push(format!(
            "the main table's default route is not `via {gateway} dev {MACVLAN} src {address}` (found: {})",
            describe_all(&observed.main_defaults)
        ));
    }
    if !observed.reply_rule {
        problems.push(format!(
            "ip rule `fwmark {REPLY_MARK:#x}/{REPLY_MARK:#x} lookup {REPLY_TABLE}` is missing"
        ));
    }
    if !reply_route_kept(observed) {
        problems.push(format!(
            "reply table {REPLY_TABLE} has no route via {POD_INTERFACE}"
        ));
    }
    if rp_filter_strict(observed) {
        let (all, pod) = &observed.rp_filter;
        problems.push(format!(
            "rp_filter of {POD_INTERFACE} is strict (net.ipv4.conf.all.rp_filter={all}, net.ipv4.conf.{POD_INTERFACE}.rp_filter={pod})"
        ));
    }
    if forwarding_off(observed, config) {
        problems.push(format!(
            "net.ipv4.ip_forward is {}, not 1",
            observed.ip_forward
        ));
    }
    problems
}

/// The main table has one default route: via the gateway on `macvlan0`, from the source.
fn default_in_place(observed: &Observed, config: &RouterConfig) -> bool {
    match observed.main_defaults.as_slice() {
        [route] => {
            netlink::route_gateway(route) == Some(config.gateway)
                && netlink::route_interface(route) == Some(observed.macvlan.index)
                && netlink::route_pref_source(route) == Some(config.source.address)
        }
        _ => false,
    }
}

fn reply_route_kept(observed: &Observed) -> bool {
    observed
        .reply_routes
        .iter()
        .any(|r| netlink::route_interface(r) == Some(observed.pod.index))
}

/// The effective rp_filter of an interface is the maximum of `all` and its own value.
fn rp_filter_strict(observed: &Observed) -> bool {
    let (all, pod) = &observed.rp_filter;
    all.as_str().max(pod.as_str()) == "1"
}

fn forwarding_off(observed: &Observed, config: &RouterConfig) -> bool {
    config.mode.uses_nat() && observed.ip_forward != "1"
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
