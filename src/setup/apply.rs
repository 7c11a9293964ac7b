//! Applying [`Step`]s, each journaled with its undo as soon as it is made.

use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::rule::RuleMessage;
use tracing::debug;

use super::Step;
use crate::config::router::SourceAddress;
use crate::error::{Error, Result};
use crate::setup::firewall::{REPLY_MARK, REPLY_RULE_PRIORITY, REPLY_TABLE};
use crate::sys::iptables::Backend;
use crate::sys::netlink::Netlink;
use crate::sys::sysctl::{self, Sysctl};

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

/// Applies `steps` in order, journaling each change as soon as it is made.
pub async fn apply(nl: &Netlink, steps: &[Step], journal: &mut Journal) -> Result<()> {
    for step in steps {
        debug!(%step, "applying");
        let undo = match step {
            Step::AddAddress { index, source } => {
                nl.add_address(*index, source.address, source.prefix_len)
                    .await?;
                Undo::Address {
                    index: *index,
                    source: *source,
                }
            }
            Step::LinkUp(index) => {
                nl.set_up(*index, true).await?;
                Undo::LinkDown(*index)
            }
            Step::AddRoute(route) => {
                nl.add_route(route.clone()).await?;
                Undo::DeleteRoute(route.clone())
            }
            Step::DeleteRoute(route) => {
                nl.del_route(route.clone()).await?;
                Undo::AddRoute(route.clone())
            }
            Step::AddReplyRule => {
                nl.add_mark_rule(REPLY_MARK, REPLY_TABLE, REPLY_RULE_PRIORITY)
                    .await?;
                match nl.mark_rule(REPLY_MARK, REPLY_TABLE).await? {
                    Some(rule) => Undo::DeleteRule(rule),
                    None => continue,
                }
            }
            Step::SetSysctl(Sysctl { key, value }) => {
                let old = sysctl::read(key)?;
                debug!(key, old, value, "setting sysctl");
                sysctl::write(key, value)?;
                Undo::Sysctl {
                    key: key.clone(),
                    old,
                }
            }
        };
        journal.0.push(undo);
    }
    Ok(())
}
