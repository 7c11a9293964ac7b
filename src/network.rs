//! Pod network setup: observe the namespace, plan the changes (pure), apply
//! them while journaling how to undo each, and roll back on failure.

use std::net::Ipv4Addr;

use netlink_packet_route::route::{RouteHeader, RouteMessage};
use netlink_packet_route::rule::RuleMessage;
use tracing::{debug, warn};

use crate::config::{RouterConfig, SourceAddress};
use crate::error::{Error, Result};
use crate::firewall::{POD_INTERFACE, REPLY_MARK, REPLY_RULE_PRIORITY, REPLY_TABLE};
use crate::iptables::Backend;
use crate::netlink::{self, Link, Netlink};
use crate::sysctl::{self, Sysctl};

/// The interface that carries `EGRESS_SOURCE`.
pub const MACVLAN: &str = "macvlan0";

/// What the namespace looks like before any change.
#[derive(Debug, Clone)]
pub struct Observed {
    /// `macvlan0`.
    pub macvlan: Link,
    /// `eth0`, the pod's cluster interface.
    pub pod: Link,
    /// The route to the gateway already goes through `macvlan0` (a restarted pod).
    pub configured: bool,
    /// Default routes of the main table.
    pub main_defaults: Vec<RouteMessage>,
    /// Whether the reply table already holds routes.
    pub reply_table_used: bool,
    /// Whether the fwmark rule for replies exists.
    pub reply_rule: bool,
    /// `net.ipv4.ip_forward`.
    pub ip_forward: String,
    /// `net.ipv4.conf.all.rp_filter` and `net.ipv4.conf.eth0.rp_filter`.
    pub rp_filter: (String, String),
}

/// The changes setup will make, decided from [`Observed`] alone.
#[derive(Debug, Clone, Default)]
pub struct NetworkPlan {
    /// Add the address, bring the link up, add the gateway host route, move the default route.
    pub configure_interface: bool,
    /// Routes to copy into the reply table (the pod's `eth0` default routes).
    pub reply_routes: Vec<RouteMessage>,
    /// Add the fwmark rule for replies.
    pub add_reply_rule: bool,
    /// Sysctls to set.
    pub sysctls: Vec<Sysctl>,
    /// Conditions worth an operator's attention that do not stop the setup.
    pub warnings: Vec<String>,
}

/// Reads the state setup depends on; fails when an interface is missing.
pub async fn observe(nl: &Netlink, gateway: Ipv4Addr) -> Result<Observed> {
    let macvlan = nl.link(MACVLAN).await.map_err(|e| {
        Error::State(format!(
            "{e}: the pod needs a macvlan0 interface (annotation pod.network.openshift.io/assign-macvlan or the CNI plugin)"
        ))
    })?;
    let pod = nl.link(POD_INTERFACE).await?;
    let configured = nl.route_interface(gateway).await? == Some(macvlan.index);
    let main_defaults = nl
        .routes(u32::from(RouteHeader::RT_TABLE_MAIN))
        .await?
        .into_iter()
        .filter(|r| r.header.destination_prefix_length == 0)
        .collect();
    Ok(Observed {
        macvlan,
        pod,
        configured,
        main_defaults,
        reply_table_used: !nl.routes(REPLY_TABLE).await?.is_empty(),
        reply_rule: nl.mark_rule(REPLY_MARK, REPLY_TABLE).await?.is_some(),
        ip_forward: sysctl::read(IP_FORWARD)?,
        rp_filter: (
            sysctl::read(RP_FILTER_ALL)?,
            sysctl::read(&rp_filter_key(POD_INTERFACE))?,
        ),
    })
}

const IP_FORWARD: &str = "net/ipv4/ip_forward";
const RP_FILTER_ALL: &str = "net/ipv4/conf/all/rp_filter";

fn rp_filter_key(interface: &str) -> String {
    format!("net/ipv4/conf/{interface}/rp_filter")
}

/// Decides what to change. `forwarding` is true for the redirect modes.
pub fn plan(observed: &Observed, forwarding: bool) -> NetworkPlan {
    let mut plan = NetworkPlan {
        configure_interface: !observed.configured,
        ..NetworkPlan::default()
    };
    if !observed.reply_table_used {
        plan.reply_routes = observed
            .main_defaults
            .iter()
            .filter(|r| netlink::route_interface(r) == Some(observed.pod.index))
            .map(|r| netlink::in_table(r, REPLY_TABLE))
            .collect();
        if plan.reply_routes.is_empty() {
            plan.warnings.push(format!(
                "no default route via {POD_INTERFACE} to keep for replies: clients outside {POD_INTERFACE}'s subnet are reachable only through cluster routes"
            ));
        }
    }
    plan.add_reply_rule = !observed.reply_rule;
    if forwarding && observed.ip_forward != "1" {
        plan.sysctls.push(Sysctl {
            key: IP_FORWARD.into(),
            value: "1".into(),
        });
    }
    // The effective rp_filter is the maximum of `all` and the interface's value. Strict
    // mode (1) drops client packets whose source the main table now routes via macvlan0,
    // so eth0 is switched to loose mode (2), which checks reachability through any route.
    let (all, pod) = &observed.rp_filter;
    if all.as_str().max(pod.as_str()) == "1" {
        plan.sysctls.push(Sysctl {
            key: rp_filter_key(POD_INTERFACE),
            value: "2".into(),
        });
    }
    plan
}

/// One applied change and how to undo it.
enum Undo {
    Address { index: u32, source: SourceAddress },
    LinkDown(u32),
    DeleteRoute(RouteMessage),
    AddRoute(RouteMessage),
    DeleteRule(RuleMessage),
    Sysctl { key: String, old: String },
    Firewall { backend: Backend, script: String },
}

/// The changes made so far, newest last.
#[derive(Default)]
pub struct Journal(Vec<Undo>);

impl Journal {
    /// Records that `script` puts the firewall back as it was.
    pub fn firewall_applied(&mut self, backend: Backend, script: String) {
        self.0.push(Undo::Firewall { backend, script });
    }

    /// Undoes every change, newest first, and returns the errors met (all steps are tried).
    pub async fn rollback(self, nl: &Netlink) -> Vec<Error> {
        let mut errors = Vec::new();
        for undo in self.0.into_iter().rev() {
            let result = match undo {
                Undo::Address { index, source } => {
                    nl.del_address(index, source.address, source.prefix_len)
                        .await
                }
                Undo::LinkDown(index) => nl.set_up(index, false).await,
                Undo::DeleteRoute(route) => nl.del_route(route).await,
                Undo::AddRoute(route) => nl.add_route(route).await,
                Undo::DeleteRule(rule) => nl.del_rule(rule).await,
                Undo::Sysctl { key, old } => sysctl::write(&key, &old),
                Undo::Firewall { backend, script } => backend.restore(&script, true),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        errors
    }
}

/// Applies `plan`, journaling each change as soon as it is made.
pub async fn apply(
    nl: &Netlink,
    config: &RouterConfig,
    observed: &Observed,
    plan: &NetworkPlan,
    journal: &mut Journal,
) -> Result<()> {
    for warning in &plan.warnings {
        warn!("{warning}");
    }
    let index = observed.macvlan.index;
    let (address, prefix_len) = (config.source.address, config.source.prefix_len);
    if plan.configure_interface {
        debug!(address = %config.source, "adding address to {MACVLAN}");
        nl.add_address(index, address, prefix_len).await?;
        journal.0.push(Undo::Address {
            index,
            source: config.source,
        });
        if !observed.macvlan.up {
            debug!("bringing {MACVLAN} up");
            nl.set_up(index, true).await?;
            journal.0.push(Undo::LinkDown(index));
        }
        add_route(nl, journal, netlink::host_route(index, config.gateway)).await?;
    } else {
        debug!("route to the gateway already uses {MACVLAN}: address and routes left as they are");
    }
    for route in &plan.reply_routes {
        add_route(nl, journal, route.clone()).await?;
    }
    if plan.configure_interface {
        for old in &observed.main_defaults {
            debug!(
                route = netlink::describe_route(old),
                "removing old default route"
            );
            nl.del_route(old.clone()).await?;
            journal.0.push(Undo::AddRoute(old.clone()));
        }
        add_route(nl, journal, netlink::default_route(index, config.gateway)).await?;
    }
    if plan.add_reply_rule {
        debug!(
            mark = REPLY_MARK,
            table = REPLY_TABLE,
            "adding reply routing rule"
        );
        nl.add_mark_rule(REPLY_MARK, REPLY_TABLE, REPLY_RULE_PRIORITY)
            .await?;
        if let Some(rule) = nl.mark_rule(REPLY_MARK, REPLY_TABLE).await? {
            journal.0.push(Undo::DeleteRule(rule));
        }
    }
    for Sysctl { key, value } in &plan.sysctls {
        let old = sysctl::read(key)?;
        debug!(key, old, value, "setting sysctl");
        sysctl::write(key, value)?;
        journal.0.push(Undo::Sysctl {
            key: key.clone(),
            old,
        });
    }
    Ok(())
}

async fn add_route(nl: &Netlink, journal: &mut Journal, route: RouteMessage) -> Result<()> {
    debug!(route = netlink::describe_route(&route), "adding route");
    nl.add_route(route.clone()).await?;
    journal.0.push(Undo::DeleteRoute(route));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32) -> Link {
        Link {
            index,
            mac: [2, 0, 0, 0, 0, index as u8],
            up: false,
        }
    }

    fn observed() -> Observed {
        Observed {
            macvlan: link(3),
            pod: link(2),
            configured: false,
            main_defaults: vec![
                netlink::default_route(2, "192.0.2.65".parse().unwrap()),
                netlink::default_route(9, "192.0.2.129".parse().unwrap()),
            ],
            reply_table_used: false,
            reply_rule: false,
            ip_forward: "0".into(),
            rp_filter: ("0".into(), "0".into()),
        }
    }

    #[test]
    fn a_fresh_pod_gets_everything_and_only_eth0_defaults_are_kept_for_replies() {
        let plan = plan(&observed(), true);
        assert!(plan.configure_interface);
        assert!(plan.add_reply_rule);
        assert_eq!(plan.reply_routes.len(), 1);
        assert_eq!(netlink::route_interface(&plan.reply_routes[0]), Some(2));
        assert_eq!(netlink::route_table(&plan.reply_routes[0]), REPLY_TABLE);
        assert_eq!(
            plan.sysctls,
            vec![Sysctl {
                key: IP_FORWARD.into(),
                value: "1".into()
            }]
        );
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn a_restarted_pod_changes_nothing_already_in_place() {
        let mut seen = observed();
        seen.configured = true;
        seen.reply_table_used = true;
        seen.reply_rule = true;
        seen.ip_forward = "1".into();
        let plan = plan(&seen, true);
        assert!(!plan.configure_interface && !plan.add_reply_rule);
        assert!(
            plan.reply_routes.is_empty() && plan.sysctls.is_empty() && plan.warnings.is_empty()
        );
    }

    #[test]
    fn proxy_modes_leave_forwarding_alone() {
        assert!(plan(&observed(), false).sysctls.is_empty());
    }

    #[test]
    fn strict_reverse_path_filtering_is_loosened_on_eth0_only() {
        for (all, pod, expect) in [
            ("1", "0", true),
            ("0", "1", true),
            ("2", "1", false),
            ("0", "0", false),
            ("1", "2", false),
        ] {
            let mut seen = observed();
            seen.rp_filter = (all.into(), pod.into());
            let set = plan(&seen, false).sysctls;
            let loosened = set
                == vec![Sysctl {
                    key: "net/ipv4/conf/eth0/rp_filter".into(),
                    value: "2".into(),
                }];
            assert_eq!(loosened, expect, "all={all} eth0={pod}: {set:?}");
        }
    }

    #[test]
    fn without_an_eth0_default_route_it_warns() {
        let mut seen = observed();
        seen.main_defaults.remove(0);
        let plan = plan(&seen, true);
        assert!(plan.reply_routes.is_empty());
        assert_eq!(plan.warnings.len(), 1);
    }
}
