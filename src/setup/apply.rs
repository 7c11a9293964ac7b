//! Applying [`Step`]s, each journaled with its undo as soon as it is made, and the
//! rollback that undoes them all, newest first.

use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::rule::RuleMessage;
use tracing::debug;

use super::{Namespace, Step};
use crate::config::router::SourceAddress;
use crate::error::{Error, Result};
use crate::setup::firewall::{self, REPLY_MARK, REPLY_RULE_PRIORITY, REPLY_TABLE};
use crate::sys::arp::{Announcement, ArpSocket};
use crate::sys::sysctl::{self, Sysctl};

/// One applied change and how to undo it.
enum Undo {
    Address { index: u32, source: SourceAddress },
    LinkDown(u32),
    DeleteRoute(RouteMessage),
    AddRoute(RouteMessage),
    DeleteRule(RuleMessage),
    Sysctl { key: String, old: String },
    Firewall(String),
}

/// The changes made so far, newest last.
#[derive(Default)]
pub struct Journal(Vec<Undo>);

impl Journal {
    /// Undoes every change, newest first, and returns the errors met (all steps are tried).
    pub async fn rollback(self, ns: &Namespace) -> Vec<Error> {
        let mut errors = Vec::new();
        for undo in self.0.into_iter().rev() {
            let result = match undo {
                Undo::Address { index, source } => {
                    ns.nl
                        .del_address(index, source.address, source.prefix_len)
                        .await
                }
                Undo::LinkDown(index) => ns.nl.set_up(index, false).await,
                Undo::DeleteRoute(route) => ns.nl.del_route(route).await,
                Undo::AddRoute(route) => ns.nl.add_route(route).await,
                Undo::DeleteRule(rule) => ns.nl.del_rule(rule).await,
                Undo::Sysctl { key, old } => sysctl::write(&ns.netns, &key, &old),
                Undo::Firewall(script) => ns.backend.restore(&ns.netns, &script, true),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        errors
    }
}

/// Applies `steps` in order in namespace `ns`, journaling each change as soon as it is
/// made. An announcement returns its socket, for the delayed second announcement.
pub async fn apply(
    ns: &Namespace,
    steps: &[Step],
    journal: &mut Journal,
) -> Result<Option<ArpSocket>> {
    let mut announced = None;
    for step in steps {
        debug!(%step, "applying");
        let undo = match step {
            Step::AddAddress { index, source } => {
                ns.nl
                    .add_address(*index, source.address, source.prefix_len)
                    .await?;
                Undo::Address {
                    index: *index,
                    source: *source,
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
            Step::AddReplyRule => {
                ns.nl
                    .add_mark_rule(REPLY_MARK, REPLY_TABLE, REPLY_RULE_PRIORITY)
                    .await?;
                match ns.nl.mark_rule(REPLY_MARK, REPLY_TABLE).await? {
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
                script,
                undo,
                before,
            } => {
                if let Err(e) = ns.backend.restore(&ns.netns, script, true) {
                    // A restore is atomic per table, but say so only when the rules show it.
                    let now = ns.backend.save_all(&ns.netns)?;
                    let tables = ["mangle", "nat"];
                    if !firewall::same_rules(before, &now, &tables) {
                        journal.0.push(Undo::Firewall(undo.clone()));
                    }
                    return Err(e);
                }
                Undo::Firewall(undo.clone())
            }
            Step::Announce {
                index,
                mac,
                address,
            } => {
                let socket = ArpSocket::open(&ns.netns, *index, *mac)?;
                socket.announce(Announcement::Reply, *address)?;
                debug!(%address, "sent gratuitous ARP reply");
                announced = Some(socket);
                continue;
            }
        };
        journal.0.push(undo);
    }
    Ok(announced)
}
