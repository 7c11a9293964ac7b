//! Reading the state of every piece of the setup from the namespace.

use netlink_packet_route::route::{RouteHeader, RouteMessage};

use super::Namespace;
use super::intent::{FamilyIntent, Intent, PodSide};
use crate::config::family::Family;
use crate::error::{Error, Result};
use crate::setup::firewall::{self, REPLY_MARK, REPLY_TABLE, Rule};
use crate::sys::netlink::{self, AddressState, Link, Neighbour, route_interface};
use crate::sys::sysctl::{self, Sysctl};

const RP_FILTER_ALL: &str = "net/ipv4/conf/all/rp_filter";

/// The sysctl key that turns forwarding of `family` on.
pub(super) fn forwarding_key(family: Family) -> &'static str {
    match family {
        Family::V4 => "net/ipv4/ip_forward",
        Family::V6 => "net/ipv6/conf/all/forwarding",
    }
}

/// The sysctl key of `interface`'s reverse path filter.
pub(super) fn rp_filter_key(interface: &str) -> String {
    format!("net/ipv4/conf/{interface}/rp_filter")
}

/// One sysctl setting the egress interface needs.
pub(super) struct Setting {
    /// The key.
    pub key: String,
    /// The value to set when the found one will not do.
    pub value: &'static str,
    /// Whether a found value will do.
    pub holds: fn(&str) -> bool,
}

/// The IPv6 settings an egress interface needs: no router advertisements configuring
/// it (addresses and routes of their own: `accept_ra`, `autoconf` 0), and duplicate
/// address detection on (`accept_dad` not 0).
pub(super) fn egress_ipv6_settings(interface: &str) -> [Setting; 3] {
    let setting = |name: &str, value, holds| Setting {
        key: format!("net/ipv6/conf/{interface}/{name}"),
        value,
        holds,
    };
    [
        setting("accept_ra", "0", |found| found == "0"),
        setting("autoconf", "0", |found| found == "0"),
        setting("accept_dad", "1", |found| found != "0"),
    ]
}

/// The IPv4 settings an egress interface needs: ARP answered only for its own
/// addresses (`arp_ignore` 1 or 2: the outside network never learns the pod's cluster
/// address from it) and asked with its own address as the sender (`arp_announce` 2).
pub(super) fn egress_ipv4_settings(interface: &str) -> [Setting; 2] {
    let setting = |name: &str, value, holds| Setting {
        key: format!("net/ipv4/conf/{interface}/{name}"),
        value,
        holds,
    };
    [
        setting("arp_ignore", "1", |found| found == "1" || found == "2"),
        setting("arp_announce", "2", |found| found == "2"),
    ]
}

/// The sysctl key that switches IPv6 off on `interface`.
pub(super) fn ipv6_disabled_key(interface: &str) -> String {
    format!("net/ipv6/conf/{interface}/disable_ipv6")
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
    /// `net.ipv4.conf.all.rp_filter`.
    pub rp_filter_all: String,
    /// The egress interface's IPv4 settings that do not hold: the value wanted, and the
    /// value found.
    pub egress_unsettled: Vec<(Sysctl, String)>,
    /// Each family of the intent, in its order.
    pub families: Vec<ObservedFamily>,
    /// Each firewall of the intent, in its order.
    pub firewalls: Vec<ObservedFirewall>,
}

/// The state of one family's firewall.
#[derive(Debug, Clone, Default)]
pub struct ObservedFirewall {
    /// The `iptables-save` (`ip6tables-save`) dump of the namespace; `None` when the
    /// family's firewall is not needed: the IPv6 guard of a kernel without IPv6
    /// (switched off at boot). IPv6 switched off on the egress interface still gets it:
    /// whoever switches it on later must find the interface guarded.
    pub dump: Option<String>,
    /// The wanted rules that are not in place; examined only by [`check`] (the rule
    /// checks wait for the xtables lock), empty otherwise.
    pub missing: Vec<Rule>,
}

/// The state of one family's pieces.
#[derive(Debug, Clone)]
pub struct ObservedFamily {
    /// The source address on the egress interface, and how usable it is.
    pub source: Option<AddressState>,
    /// Whether IPv6 is switched off on the egress interface (always false for IPv4).
    pub disabled: bool,
    /// The egress interface's IPv6 settings that do not hold: the value wanted, and the
    /// value found.
    pub unsettled: Vec<(Sysctl, String)>,
    /// Whether the kernel's route to the gateway goes through the egress interface.
    pub gateway_via_egress: bool,
    /// The main table's host route to the gateway on the egress interface (the
    /// setup's, when the gateway is not in a subnet of the interface).
    pub gateway_route: Option<RouteMessage>,
    /// Default routes of the main table.
    pub main_defaults: Vec<RouteMessage>,
    /// Routes of the reply table.
    pub reply_routes: Vec<RouteMessage>,
    /// Whether the fwmark rule for replies exists.
    pub reply_rule: bool,
    /// The family's forwarding sysctl.
    pub forwarding: String,
    /// On a routed egress interface: the gateway's neighbour entry there, if any
    /// (not read otherwise).
    pub gateway_neighbour: Option<Neighbour>,
    /// On a routed egress interface: main-table routes of the source's subnet
    /// through it (the on-link route the address would add), which must not be
    /// there (not read otherwise).
    pub prefix_routes: Vec<RouteMessage>,
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
    let mut families = Vec::new();
    for family in &intent.families {
        families.push(observe_family(ns, intent, family, egress.index).await?);
    }
    let ipv6 = sysctl::has_ipv6(&ns.netns);
    let mut firewalls = Vec::new();
    for wanted in &intent.firewalls {
        let needed = wanted.has_source() || wanted.family == Family::V4 || ipv6;
        let dump = match needed {
            true => Some(ns.backend.for_family(wanted.family)?.save_all(&ns.netns)?),
            false => None,
        };
        firewalls.push(ObservedFirewall {
            dump,
            missing: Vec::new(),
        });
    }
    let mut egress_unsettled = Vec::new();
    for Setting { key, value, holds } in egress_ipv4_settings(&intent.egress) {
        let found = sysctl::read(&ns.netns, &key)?;
        if !holds(&found) {
            egress_unsettled.push((
                Sysctl {
                    key,
                    value: value.into(),
                },
                found,
            ));
        }
    }
    Ok(Observed {
        egress,
        pod_links,
        rp_filter_all: sysctl::read(&ns.netns, RP_FILTER_ALL)?,
        egress_unsettled,
        families,
        firewalls,
    })
}

async fn observe_family(
    ns: &Namespace,
    intent: &Intent,
    wanted: &FamilyIntent,
    egress: u32,
) -> Result<ObservedFamily> {
    let nl = &ns.nl;
    let family = wanted.family();
    let main = nl
        .routes(family, u32::from(RouteHeader::RT_TABLE_MAIN))
        .await?;
    let gateway_route = main
        .iter()
        .find(|r| {
            r.header.destination_prefix_length == family.max_prefix()
                && netlink::route_destination_ip(r) == Some(wanted.gateway)
                && route_interface(r) == Some(egress)
        })
        .cloned();
    let main_defaults = main
        .into_iter()
        .filter(|r| r.header.destination_prefix_length == 0)
        .collect();
    let disabled =
        family == Family::V6 && sysctl::read(&ns.netns, &ipv6_disabled_key(&intent.egress))? == "1";
    let mut unsettled = Vec::new();
    if family == Family::V6 {
        for Setting { key, value, holds } in egress_ipv6_settings(&intent.egress) {
            let found = sysctl::read(&ns.netns, &key)?;
            if !holds(&found) {
                let value = value.to_string();
                unsettled.push((Sysctl { key, value }, found));
            }
        }
    }
    let gateway_via_egress =
        wanted.gateway_link_local() || nl.route_interface(wanted.gateway).await? == Some(egress);
    let (gateway_neighbour, prefix_routes) = match intent.routed {
        None => (None, Vec::new()),
        Some(_) => {
            let subnet = wanted.source.network();
            let main = nl
                .routes(family, u32::from(RouteHeader::RT_TABLE_MAIN))
                .await?;
            let on_link = main
                .into_iter()
                .filter(|r| {
                    netlink::route_interface(r) == Some(egress)
                        && netlink::route_gateway(r).is_none()
                        && netlink::route_destination(r) == Some(subnet)
                })
                .collect();
            (nl.neighbour(egress, wanted.gateway).await?, on_link)
        }
    };
    Ok(ObservedFamily {
        gateway_neighbour,
        prefix_routes,
        source: nl.address_state(egress, wanted.source.address).await?,
        disabled,
        unsettled,
        gateway_via_egress,
        gateway_route,
        main_defaults,
        reply_routes: nl.routes(family, REPLY_TABLE).await?,
        reply_rule: nl
            .mark_rule(family, REPLY_MARK, REPLY_TABLE)
            .await?
            .is_some(),
        forwarding: sysctl::read(&ns.netns, forwarding_key(family))?,
    })
}

/// [`observe`], and which wanted rules are missing (`iptables -C`): what a check needs.
pub async fn check(ns: &Namespace, intent: &Intent) -> Result<Observed> {
    let mut observed = observe(ns, intent).await?;
    for (wanted, found) in intent.firewalls.iter().zip(&mut observed.firewalls) {
        if found.dump.is_some() {
            found.missing = missing(ns, wanted.family, &firewall::all_rules(wanted))?;
        }
    }
    Ok(observed)
}

/// The rules of `rules` that are not in place. One `iptables-restore` checks them all
/// (`-C` lines, which change nothing); only when that fails is each checked with
/// `iptables -C`, to name every missing one.
fn missing(ns: &Namespace, family: Family, rules: &[Rule]) -> Result<Vec<Rule>> {
    let backend = ns.backend.for_family(family)?;
    let script = firewall::check_script(rules);
    if backend.restore(&ns.netns, &script, true).is_ok() {
        return Ok(Vec::new());
    }
    let mut missing = Vec::new();
    for rule in rules {
        if !backend.exists(&ns.netns, rule.table, &rule.chain, &rule.spec)? {
            missing.push(rule.clone());
        }
    }
    Ok(missing)
}
