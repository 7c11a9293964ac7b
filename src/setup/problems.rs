//! Every piece of the setup that is not in place, each named precisely (pure): what
//! a check reports, judged by the same predicates as [`plan`](super::plan).

use super::intent::{FamilyIntent, Intent};
use super::observe::{Observed, ObservedFamily, ObservedFirewall};
use super::plan::{
    default_in_place, describe_all, forwarding_off, gateway_pinned, pod_defaults, pod_names,
    reply_route_kept, strict_pod_links,
};
use crate::config::family::Family;
use crate::setup::firewall::{self, REPLY_MARK, REPLY_TABLE, Wanted};
use crate::sys::netlink::AddressState;
use crate::sys::sysctl::Sysctl;

/// Every piece of `intent` that `observed` lacks; empty when the setup is complete.
pub fn problems(intent: &Intent, observed: &Observed) -> Vec<String> {
    let egress = &intent.egress;
    let mut problems = Vec::new();
    for (wanted, found) in intent.families.iter().zip(&observed.families) {
        let address = wanted.source.address;
        if !wanted.held {
            if found.source.is_some() {
                problems.push(format!("{egress} holds {address} while on standby"));
            }
            continue;
        }
        match found.source {
            None => problems.push(format!("{egress} does not have address {address}")),
            Some(AddressState::Tentative) => problems.push(format!(
                "{address} on {egress} is still tentative (duplicate address detection)"
            )),
            Some(AddressState::Duplicate) => problems
                .push(super::plan::duplicate(intent.source_field, address, egress).to_string()),
            Some(AddressState::Usable) => {}
        }
    }
    if !observed.egress.up {
        problems.push(format!("{egress} is down"));
    }
    for (setting, value) in &observed.egress_unsettled {
        problems.push(unsettled(setting, value));
    }
    for (wanted, found) in intent.families.iter().zip(&observed.families) {
        routing_problems(&mut problems, intent, wanted, found, observed);
    }
    for link in strict_pod_links(intent, observed) {
        let name = &link.name;
        problems.push(format!(
            "rp_filter of {name} is strict (net.ipv4.conf.all.rp_filter={}, net.ipv4.conf.{name}.rp_filter={})",
            observed.rp_filter_all, link.rp_filter
        ));
    }
    for (wanted, found) in intent.families.iter().zip(&observed.families) {
        setting_problems(&mut problems, wanted, found);
    }
    for (wanted, found) in intent.firewalls.iter().zip(&observed.firewalls) {
        firewall_problems(&mut problems, wanted, found);
    }
    problems
}

/// The command that shows `family`'s rules (IPv4's wording predates IPv6 support and
/// is kept for the logs people grep).
fn ip_command(family: Family) -> &'static str {
    match family {
        Family::V4 => "ip",
        Family::V6 => "ip -6",
    }
}

/// The firewall tool of `family`, as its problems name it (none for IPv4, as before).
fn firewall_tool(family: Family) -> &'static str {
    match family {
        Family::V4 => "",
        Family::V6 => "ip6tables ",
    }
}

/// The routes and the reply routing of one family.
fn routing_problems(
    problems: &mut Vec<String>,
    intent: &Intent,
    wanted: &FamilyIntent,
    found: &ObservedFamily,
    observed: &Observed,
) {
    let (address, gateway, egress) = (wanted.source.address, wanted.gateway, &intent.egress);
    let (ip, of_family) = (ip_command(wanted.family()), wanted.family().qualifier());
    if let Some(routed) = intent.routed {
        for route in &found.prefix_routes {
            problems.push(format!(
                "{egress} has the on-link route {}: a routed interface reaches its subnet via the gateway",
                describe_all(std::slice::from_ref(route), egress, observed)
            ));
        }
        if !gateway_pinned(intent, found) {
            let found = match found.gateway_neighbour {
                None => "none".to_string(),
                Some(n) => format!(
                    "lladdr {}{}",
                    n.mac
                        .map_or("none".into(), |m| crate::sys::netlink::show_mac(&m)),
                    if n.permanent { " permanent" } else { "" }
                ),
            };
            problems.push(format!(
                "the gateway {gateway} is not pinned to {} on {egress} (`{ip} neigh ... nud permanent`; found: {found})",
                crate::sys::netlink::show_mac(&routed.gateway_mac)
            ));
        }
    }
    if wanted.held && !found.gateway_via_egress {
        problems.push(format!(
            "the route to gateway {gateway} does not use {egress}"
        ));
    }
    if wanted.held && !default_in_place(wanted, found, observed) {
        problems.push(format!(
            "the main table's {of_family}default route is not `via {gateway} dev {egress} src {address}` (found: {})",
            describe_all(&found.main_defaults, egress, observed)
        ));
    }
    let keep_needed = wanted.replies_required
        || !pod_defaults(observed, found).is_empty()
        || !found.reply_routes.is_empty();
    if !found.reply_rule && keep_needed {
        problems.push(format!(
            "{ip} rule `fwmark {REPLY_MARK:#x}/{REPLY_MARK:#x} lookup {REPLY_TABLE}` is missing"
        ));
    }
    if !reply_route_kept(observed, found) && keep_needed {
        problems.push(format!(
            "reply table {REPLY_TABLE} has no {of_family}route via {}",
            pod_names(observed)
        ));
    }
}

/// The sysctls of one family.
fn setting_problems(problems: &mut Vec<String>, wanted: &FamilyIntent, found: &ObservedFamily) {
    let family = wanted.family();
    for (setting, value) in &found.unsettled {
        problems.push(unsettled(setting, value));
    }
    if forwarding_off(wanted, found) {
        let key = super::observe::forwarding_key(family).replace('/', ".");
        problems.push(format!("{key} is {}, not 1", found.forwarding));
    }
}

/// A sysctl found at `value`, not the value `setting` wants.
fn unsettled(setting: &Sysctl, value: &str) -> String {
    format!(
        "{} is {value}, not {}",
        setting.key.replace('/', "."),
        setting.value
    )
}

/// The firewall of one family: each missing rule, and each misplaced jump.
fn firewall_problems(problems: &mut Vec<String>, wanted: &Wanted, found: &ObservedFirewall) {
    let Some(dump) = &found.dump else { return };
    let tool = firewall_tool(wanted.family);
    for rule in &found.missing {
        problems.push(format!("{tool}{} rule missing: {rule}", rule.table));
    }
    for problem in firewall::jump_problems(dump, wanted) {
        problems.push(format!("{tool}{problem}"));
    }
    for name in &wanted.names {
        let (chain, label) = (&name.chain, &name.label);
        match (name.held(dump), &name.addresses) {
            (Err(problem), _) => {
                problems.push(format!("{tool}nat chain {chain} ({label}) {problem}"));
            }
            (Ok(held), Some(wanted)) if held != *wanted => problems.push(format!(
                "{tool}nat chain {chain} ({label}) sends to [{}], not [{}]",
                list(&held),
                list(wanted)
            )),
            (Ok(_), _) => {}
        }
    }
}

/// Addresses, comma-separated.
fn list(addresses: &[std::net::IpAddr]) -> String {
    let shown: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    shown.join(", ")
}
