//! The journal of a setup: each applied change with how to undo it, and the rollback
//! that undoes them all, newest first, trying every one.

use std::net::IpAddr;

use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::rule::RuleMessage;

use super::Namespace;
use super::step::SourceRuleSpec;
use crate::config::family::Family;
use crate::config::router::SourceAddress;
use crate::error::{Error, Result};
use crate::sys::sysctl;

/// One applied change and how to undo it.
pub(super) enum Undo {
    Address {
        index: u32,
        source: SourceAddress,
    },
    Neighbour {
        index: u32,
        address: IpAddr,
    },
    ReAddAddress {
        index: u32,
        source: SourceAddress,
    },
    LinkDown(u32),
    DeleteRoute(RouteMessage),
    AddRoute(RouteMessage),
    DeleteRule(RuleMessage),
    AddSourceRule(SourceRuleSpec),
    Proxy {
        index: u32,
        address: IpAddr,
        add: bool,
    },
    Sysctl {
        key: String,
        old: String,
    },
    Firewall {
        family: Family,
        script: String,
        noflush: bool,
    },
}

/// The kernel's answer to removing an address that is not there.
const EADDRNOTAVAIL: i32 = 99;

/// The changes made so far, newest last.
#[derive(Default)]
pub struct Journal(Vec<Undo>);

impl Journal {
    /// Notes a change just made.
    pub(super) fn record(&mut self, undo: Undo) {
        self.0.push(undo);
    }

    /// Notes the changes just made, if any.
    pub(super) fn record_all(&mut self, undo: impl IntoIterator<Item = Undo>) {
        self.0.extend(undo);
    }

    /// Undoes every change, newest first, and returns the errors met (all steps are tried).
    pub async fn rollback(self, ns: &Namespace) -> Vec<Error> {
        let mut errors = Vec::new();
        for undo in self.0.into_iter().rev() {
            let result = match undo {
                // Taking a link down flushes its IPv6 addresses: gone is undone.
                Undo::Address { index, source } => match ns
                    .nl
                    .del_address(index, source.address, source.prefix_len)
                    .await
                {
                    Err(e) if source.address.is_ipv6() && e.errno() == Some(EADDRNOTAVAIL) => {
                        Ok(())
                    }
                    other => other,
                },
                Undo::ReAddAddress { index, source } => {
                    ns.nl
                        .add_address_nodad(index, source.address, source.prefix_len)
                        .await
                }
                Undo::LinkDown(index) => ns.nl.set_up(index, false).await,
                // Taking the link down (a later undo) flushed it too: gone is undone.
                Undo::Neighbour { index, address } => match ns.nl.neighbour(index, address).await {
                    Ok(Some(_)) => ns.nl.del_neighbour(index, address).await,
                    other => other.map(|_| ()),
                },
                Undo::DeleteRoute(route) => ns.nl.del_route(route).await,
                Undo::AddRoute(route) => ns.nl.add_route(route).await,
                Undo::DeleteRule(rule) => ns.nl.del_rule(rule).await,
                Undo::AddSourceRule(rule) => add_source_rule(ns, &rule).await,
                Undo::Proxy {
                    index,
                    address,
                    add: true,
                } => ns.nl.add_proxy(index, address).await,
                Undo::Proxy { index, address, .. } => ns.nl.del_proxy(index, address).await,
                Undo::Sysctl { key, old } => sysctl::write(&ns.netns, &key, &old),
                // Without --noflush, each table the script names is put back whole as it
                // was (our chains and jumps gone, its own rules back), not merged into;
                // with it, the script deletes only what the step added.
                Undo::Firewall {
                    family,
                    script,
                    noflush,
                } => match ns.backend.for_family(family) {
                    Ok(backend) => backend.restore(&ns.netns, &script, noflush),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        errors
    }
}

/// Adds the rule `rule` describes.
pub(super) async fn add_source_rule(ns: &Namespace, rule: &SourceRuleSpec) -> Result<()> {
    ns.nl
        .add_source_rule(rule.source, rule.table, rule.priority, rule.protocol)
        .await
}
