//! What to change, decided from an [`Intent`] and what was [`Observed`] alone (pure).
//!
//! [`plan`] and [`problems`](super::problems) judge each piece of the setup by the
//! same tests (the predicates below), so a namespace that needs no step has no
//! problem, and the reverse.

use std::net::IpAddr;

use netlink_packet_route::route::RouteMessage;

use super::intent::{FamilyIntent, Intent};
use super::observe::{
    Observed, ObservedFamily, PodLink, forwarding_key, ipv6_disabled_key, rp_filter_key,
};
use super::step::{FirewallUndo, Step};
use crate::config::family::Family;
use crate::error::{Error, Result};
use crate::setup::firewall::{self, REPLY_TABLE};
use crate::sys::netlink::{self, AddressState};
use crate::sys::sysctl::Sysctl;

/// The steps that bring each missing piece into place, in order: each family's
/// firewall script first (the guard before anything else; idempotent, applied every
/// time; none for the IPv6 guard of a kernel without IPv6), then the egress
/// interface's sysctls, addresses, the link, the wait for IPv6 duplicate address
/// detection (a tentative address cannot be a route's source), routes and sysctls of
/// each family. Fails, before any change, when an address
/// is a known duplicate, or when replies need a cluster-side default route to keep
/// and there is none, in the reply table or the main table.
pub fn plan(intent: &Intent, observed: &Observed) -> Result<Vec<Step>> {
    let index = observed.egress.index;
    let pairs = || intent.families.iter().zip(&observed.families);
    // First, before the interface has an address, is up or forwards: the guard (the
    // egress side never opens anything in, not even while the setup runs). Applied
    // every time: it declares our chains (which refills them), adds only the jumps that
    // are missing, and NAT in the built-in chains replaces what they held (SPEC section
    // 3), so rules of an earlier list do not linger.
    let mut steps: Vec<Step> = intent
        .firewalls
        .iter()
        .zip(&observed.firewalls)
        .filter_map(|(wanted, found)| {
            let dump = found.dump.as_ref()?;
            Some(Step::Firewall {
                family: wanted.family,
                script: firewall::restore_script(dump, wanted),
                undo: FirewallUndo::Tables(firewall::rollback_script(
                    dump,
                    &firewall::tables(wanted),
                )),
                before: dump.clone(),
            })
        })
        .collect();
    steps.extend(
        observed
            .egress_unsettled
            .iter()
            .map(|(wanted, _)| Step::SetSysctl(wanted.clone())),
    );
    if pairs().any(|(_, found)| found.disabled) {
        steps.push(Step::SetSysctl(Sysctl {
            key: ipv6_disabled_key(&intent.egress),
            value: "0".into(),
        }));
    }
    // Router advertisements on the egress network must not add addresses (a proxy
    // could leave from one) or default routes beside the gateway's, and a duplicate
    // address must be found out.
    for (_, found) in pairs() {
        steps.extend(
            found
                .unsettled
                .iter()
                .map(|(wanted, _)| Step::SetSysctl(wanted.clone())),
        );
    }
    for (wanted, found) in pairs().filter(|(wanted, _)| wanted.held) {
        match found.source {
            None if !wanted.dad => steps.push(Step::AddHeldAddress {
                index,
                source: wanted.source,
            }),
            None => steps.push(Step::AddAddress {
                index,
                source: wanted.source,
                prefix_route: intent.routed.is_none(),
            }),
            Some(AddressState::Duplicate) => {
                return Err(duplicate(
                    intent.source_field,
                    wanted.source.address,
                    &intent.egress,
                ));
            }
            Some(_) => {}
        }
    }
    if !observed.egress.up {
        steps.push(Step::LinkUp(index));
    }
    for (wanted, found) in pairs() {
        let checked = wanted.held && wanted.dad;
        if checked && wanted.family() == Family::V6 && found.source != Some(AddressState::Usable) {
            steps.push(Step::AwaitAddress {
                index,
                interface: intent.egress.clone(),
                address: wanted.source.address,
                field: intent.source_field,
            });
        }
    }
    for (wanted, found) in pairs() {
        routed_steps(&mut steps, intent, wanted, found, index);
        family_steps(&mut steps, &intent.egress, wanted, found, observed)?;
    }
    // Strict mode (1) drops client packets whose source the main table now routes via
    // the egress interface, so the cluster side is switched to loose mode (2).
    for link in strict_pod_links(intent, observed) {
        steps.push(Step::SetSysctl(Sysctl {
            key: rp_filter_key(&link.name),
            value: "2".into(),
        }));
    }
    Ok(steps)
}

/// On a routed egress interface (`index`): no on-link route of the source's subnet,
/// and the gateway pinned to the router's link-layer address.
fn routed_steps(
    steps: &mut Vec<Step>,
    intent: &Intent,
    wanted: &FamilyIntent,
    found: &ObservedFamily,
    index: u32,
) {
    let Some(routed) = intent.routed else { return };
    steps.extend(found.prefix_routes.iter().cloned().map(Step::DeleteRoute));
    if !gateway_pinned(intent, found) {
        steps.push(Step::SetNeighbour {
            index,
            address: wanted.gateway,
            mac: routed.gateway_mac,
        });
    }
}

/// Whether the gateway is pinned as a routed egress interface needs it (always, on
/// any other).
pub(super) fn gateway_pinned(intent: &Intent, found: &ObservedFamily) -> bool {
    match (intent.routed, found.gateway_neighbour) {
        (None, _) => true,
        (Some(routed), Some(neighbour)) => {
            neighbour.permanent && neighbour.mac == Some(routed.gateway_mac)
        }
        (Some(_), None) => false,
    }
}

/// One family's routes, reply routing and forwarding, on the egress interface `egress`.
fn family_steps(
    steps: &mut Vec<Step>,
    egress: &str,
    wanted: &FamilyIntent,
    found: &ObservedFamily,
    observed: &Observed,
) -> Result<()> {
    let family = wanted.family();
    let index = observed.egress.index;
    if wanted.held && !found.gateway_via_egress {
        steps.push(Step::AddRoute(netlink::host_route(index, wanted.gateway)));
    }
    let keep = pod_defaults(observed, found);
    let kept = reply_route_kept(observed, found);
    if !kept && keep.is_empty() && wanted.replies_required {
        return Err(Error::State(format!(
            "{} has no {}default route to keep in reply table {REPLY_TABLE} (main table defaults: {}): replies to clients outside its subnet would have no way back",
            pod_names(observed),
            family.qualifier(),
            describe_all(&found.main_defaults, egress, observed)
        )));
    }
    let replies = !kept && !keep.is_empty();
    if replies {
        steps.extend(
            keep.iter()
                .map(|r| Step::AddRoute(netlink::in_table(r, REPLY_TABLE))),
        );
    }
    if wanted.held && !default_in_place(wanted, found, observed) {
        steps.extend(found.main_defaults.iter().cloned().map(Step::DeleteRoute));
        steps.push(Step::AddRoute(netlink::default_route(
            index,
            wanted.gateway,
            wanted.source.address,
        )));
    }
    if !found.reply_rule && (replies || kept) {
        steps.push(Step::AddReplyRule(family));
    }
    if forwarding_off(wanted, found) {
        steps.push(Step::SetSysctl(Sysctl {
            key: forwarding_key(family).into(),
            value: "1".into(),
        }));
    }
    Ok(())
}

/// The error for a source `address` (given by `field`) another host holds.
pub(super) fn duplicate(field: &'static str, address: IpAddr, interface: &str) -> Error {
    Error::config(
        field,
        format!(
            "{address} is already used by another host on the network of {interface} (duplicate address detection failed)"
        ),
    )
}

/// The announcements a setup ends with, one a family whose source it holds.
pub fn announcements(intent: &Intent, observed: &Observed) -> Vec<Step> {
    intent
        .families
        .iter()
        .filter(|wanted| wanted.held)
        .map(|wanted| Step::Announce {
            index: observed.egress.index,
            mac: observed.egress.mac,
            address: wanted.source.address,
        })
        .collect()
}

/// The main table has one default route of the family: via the gateway on the egress
/// interface, from the source.
pub(super) fn default_in_place(
    wanted: &FamilyIntent,
    found: &ObservedFamily,
    observed: &Observed,
) -> bool {
    match found.main_defaults.as_slice() {
        [route] => {
            netlink::route_gateway(route) == Some(wanted.gateway)
                && netlink::route_interface(route) == Some(observed.egress.index)
                && netlink::route_pref_source(route) == Some(wanted.source.address)
        }
        _ => false,
    }
}

/// The main table's default routes of the family through the cluster side.
pub(super) fn pod_defaults<'a>(
    observed: &Observed,
    found: &'a ObservedFamily,
) -> Vec<&'a RouteMessage> {
    found
        .main_defaults
        .iter()
        .filter(|r| is_pod_route(observed, r))
        .collect()
}

fn is_pod_route(observed: &Observed, route: &RouteMessage) -> bool {
    let oif = netlink::route_interface(route);
    observed.pod_links.iter().any(|p| Some(p.link.index) == oif)
}

/// The reply table holds a default route of the family through the cluster side
/// (only a default route takes replies to clients in any subnet back).
pub(super) fn reply_route_kept(observed: &Observed, found: &ObservedFamily) -> bool {
    found
        .reply_routes
        .iter()
        .any(|r| r.header.destination_prefix_length == 0 && is_pod_route(observed, r))
}

/// The cluster-side interfaces whose effective IPv4 rp_filter (the maximum of `all`
/// and their own) is strict, when the intent routes IPv4 (IPv6 has no such filter).
pub(super) fn strict_pod_links<'a>(intent: &Intent, observed: &'a Observed) -> Vec<&'a PodLink> {
    if !intent.families.iter().any(|f| f.family() == Family::V4) {
        return Vec::new();
    }
    observed
        .pod_links
        .iter()
        .filter(|p| observed.rp_filter_all.as_str().max(p.rp_filter.as_str()) == "1")
        .collect()
}

pub(super) fn forwarding_off(wanted: &FamilyIntent, found: &ObservedFamily) -> bool {
    wanted.forwarding && found.forwarding != "1"
}

pub(super) fn pod_names(observed: &Observed) -> String {
    if observed.pod_links.is_empty() {
        return "the pod (no other interface)".into();
    }
    let names: Vec<&str> = observed.pod_links.iter().map(|p| p.name.as_str()).collect();
    names.join(", ")
}

/// `routes` as `ip route` shows them, their interfaces named: the egress interface
/// `egress`, and the pod's cluster-side interfaces.
pub(super) fn describe_all(routes: &[RouteMessage], egress: &str, observed: &Observed) -> String {
    if routes.is_empty() {
        return "none".into();
    }
    let name_of = |index: u32| {
        if index == observed.egress.index {
            return Some(egress.to_string());
        }
        observed
            .pod_links
            .iter()
            .find(|p| p.link.index == index)
            .map(|p| p.name.clone())
    };
    let shown: Vec<String> = routes
        .iter()
        .map(|r| netlink::describe_route_named(r, name_of))
        .collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests;
