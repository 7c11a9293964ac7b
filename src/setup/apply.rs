//! Applying [`Step`]s, each journaled with its undo ([`super::journal`]) as soon as it
//! is made.

use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_route::rule::RuleMessage;
use tracing::debug;

use super::announce::Announced;
use super::journal::{Journal, Undo, add_source_rule};
use super::step::{FirewallUndo, SourceRuleSpec};
use super::{Namespace, Step};
use crate::config::family::Family;
use crate::error::{Error, Result};
use crate::setup::firewall::{self, REPLY_MARK, REPLY_RULE_PRIORITY, REPLY_TABLE};
use crate::sys::arp::{Announcement, ArpSocket};
use crate::sys::ndp::NdpSocket;
use crate::sys::netlink::AddressState;
use crate::sys::sysctl::{self, Sysctl};

/// Applies `steps` in order in namespace `ns`, journaling each change as soon as it is
/// made. Returns what was announced, for the delayed second announcement.
pub async fn apply(ns: &Namespace, steps: &[Step], journal: &mut Journal) -> Result<Announced> {
    let mut announced = Announced::default();
    for step in steps {
        debug!(%step, "applying");
        let undo = match step {
            Step::AddAddress {
                index,
                source,
                prefix_route,
            } => {
                ns.nl
                    .add_address(*index, source.address, source.prefix_len, *prefix_route)
                    .await?;
                Undo::Address {
                    index: *index,
                    source: *source,
                }
            }
            Step::AddHeldAddress { index, source } => {
                ns.nl
                    .add_address_nodad(*index, source.address, source.prefix_len)
                    .await?;
                Undo::Address {
                    index: *index,
                    source: *source,
                }
            }
            Step::DeleteAddress { index, source } => {
                ns.nl
                    .del_address(*index, source.address, source.prefix_len)
                    .await?;
                Undo::ReAddAddress {
                    index: *index,
                    source: *source,
                }
            }
            Step::SetNeighbour {
                index,
                address,
                mac,
            } => {
                ns.nl.set_neighbour(*index, *address, *mac).await?;
                Undo::Neighbour {
                    index: *index,
                    address: *address,
                }
            }
            Step::LinkUp(index) => {
                ns.nl.set_up(*index, true).await?;
                Undo::LinkDown(*index)
            }
            Step::AddRoute(route) => {
                ns.nl.add_route(route.clone()).await?;
                Undo::DeleteRoute(route.clone())
            }
            Step::DeleteRoute(route) => {
                ns.nl.del_route(route.clone()).await?;
                Undo::AddRoute(route.clone())
            }
            Step::AwaitAddress {
                index,
                interface,
                address,
                field,
            } => {
                await_address(ns, *index, interface, *address, field).await?;
                continue;
            }
            Step::AddSourceRule(rule) => {
                add_source_rule(ns, rule).await?;
                match find_source_rule(ns, rule).await? {
                    Some(message) => Undo::DeleteRule(message),
                    None => continue,
                }
            }
            Step::DeleteSourceRule(rule) => match find_source_rule(ns, rule).await? {
                Some(message) => {
                    ns.nl.del_rule(message).await?;
                    Undo::AddSourceRule(*rule)
                }
                None => continue,
            },
            Step::AddProxy { index, address } => {
                ns.nl.add_proxy(*index, *address).await?;
                Undo::Proxy {
                    index: *index,
                    address: *address,
                    add: false,
                }
            }
            Step::DeleteProxy { index, address } => {
                ns.nl.del_proxy(*index, *address).await?;
                Undo::Proxy {
                    index: *index,
                    address: *address,
                    add: true,
                }
            }
            Step::AddReplyRule(family) => {
                ns.nl
                    .add_mark_rule(*family, REPLY_MARK, REPLY_TABLE, REPLY_RULE_PRIORITY)
                    .await?;
                match ns.nl.mark_rule(*family, REPLY_MARK, REPLY_TABLE).await? {
                    Some(rule) => Undo::DeleteRule(rule),
                    None => continue,
                }
            }
            Step::SetSysctl(Sysctl { key, value }) => {
                let old = sysctl::read(&ns.netns, key)?;
                debug!(key, old, value, "setting sysctl");
                sysctl::write(&ns.netns, key, value)?;
                Undo::Sysctl {
                    key: key.clone(),
                    old,
                }
            }
            Step::Firewall {
                family,
                script,
                undo,
                before,
            } => {
                let backend = ns.backend.for_family(*family)?;
                let undo = match undo {
                    FirewallUndo::Tables(script) => Some((script, false)),
                    FirewallUndo::Rules(script) => Some((script, true)),
                    FirewallUndo::Nothing => None,
                }
                .map(|(script, noflush)| Undo::Firewall {
                    family: *family,
                    script: script.clone(),
                    noflush,
                });
                if let Err(e) = backend.restore(&ns.netns, script, true) {
                    // A restore is atomic per table, but say so only when the rules show it.
                    let now = backend.save_all(&ns.netns)?;
                    let tables = ["filter", "mangle", "nat"];
                    if !firewall::same_rules(before, &now, &tables) {
                        journal.record_all(undo);
                    }
                    return Err(e);
                }
                match undo {
                    Some(undo) => undo,
                    None => continue,
                }
            }
            Step::Announce {
                index,
                mac,
                address: IpAddr::V4(address),
            } => {
                let socket = ArpSocket::open(&ns.netns, *index, *mac)?;
                socket.announce(Announcement::Reply, *address)?;
                debug!(%address, "sent gratuitous ARP reply");
                announced.arp = Some((socket, *address));
                continue;
            }
            Step::Announce {
                index,
                mac,
                address: IpAddr::V6(address),
            } => {
                let socket = NdpSocket::open(&ns.netns, *index, *mac, *address)?;
                socket.announce()?;
                debug!(%address, "sent unsolicited neighbour advertisement");
                announced.ndp = Some(socket);
                continue;
            }
        };
        journal.record(undo);
    }
    Ok(announced)
}

/// The rule `rule` describes (its protocol aside), as the kernel lists it.
async fn find_source_rule(ns: &Namespace, rule: &SourceRuleSpec) -> Result<Option<RuleMessage>> {
    Ok(ns
        .nl
        .source_rules(Family::of(rule.source))
        .await?
        .into_iter()
        .find(|r| r.source == rule.source && r.table == rule.table && r.priority == rule.priority)
        .map(|r| r.message))
}

/// Waits until `address` on interface `index` (named `interface`) has passed duplicate
/// address detection, at most as long as the interface's own settings make it last
/// (the start delay, each probe's wait) and a second more; a duplicate is an error
/// naming `field`.
async fn await_address(
    ns: &Namespace,
    index: u32,
    interface: &str,
    address: IpAddr,
    field: &'static str,
) -> Result<()> {
    let setting = |key: String, default: u64| -> Result<u64> {
        Ok(sysctl::read(&ns.netns, &key)?.parse().unwrap_or(default))
    };
    let probes = setting(format!("net/ipv6/conf/{interface}/dad_transmits"), 1)?;
    let probe_wait = setting(format!("net/ipv6/neigh/{interface}/retrans_time_ms"), 1000)?;
    let limit = Duration::from_millis(2_000 + probes * probe_wait);
    let started = std::time::Instant::now();
    loop {
        match ns.nl.address_state(index, address).await? {
            Some(AddressState::Usable) => {
                debug!(%address, waited_ms = started.elapsed().as_millis() as u64, "duplicate address detection passed");
                return Ok(());
            }
            Some(AddressState::Duplicate) => {
                return Err(super::plan::duplicate(field, address, interface));
            }
            None => {
                return Err(Error::State(format!(
                    "{address} vanished from {interface} during duplicate address detection"
                )));
            }
            Some(AddressState::Tentative) if started.elapsed() >= limit => {
                return Err(Error::State(format!(
                    "{address} on {interface} is still tentative after {} ms of duplicate address detection (is {interface} without carrier?)",
                    limit.as_millis()
                )));
            }
            Some(AddressState::Tentative) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
