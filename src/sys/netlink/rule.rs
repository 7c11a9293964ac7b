//! Policy routing rules by source address: `from ADDRESS lookup TABLE priority P
//! proto PROTOCOL`, what the routed CNI attachment adds on the node; and the tables
//! every rule of a family names.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::route::RouteProtocol;
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::IpVersion;

use super::{EAFNOSUPPORT, Netlink, address_family};
use crate::config::family::Family;
use crate::error::{Error, Result};

/// A rule `from SOURCE/host lookup TABLE priority PRIORITY` as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRule {
    /// The source it matches (a host prefix: /32, /128).
    pub source: IpAddr,
    /// The table it looks up.
    pub table: u32,
    /// Its priority.
    pub priority: u32,
    /// Its protocol (`proto`), 0 when unset.
    pub protocol: u8,
    /// The message, to delete it by.
    pub message: RuleMessage,
}

/// The table a rule looks up.
pub fn rule_table(rule: &RuleMessage) -> u32 {
    rule.attributes
        .iter()
        .find_map(|a| match a {
            RuleAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(rule.header.table))
}

fn host_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl Netlink {
    /// Every rule of `family` (none when the kernel has no such family).
    pub async fn rules(&self, family: Family) -> Result<Vec<RuleMessage>> {
        let version = match family {
            Family::V4 => IpVersion::V4,
            Family::V6 => IpVersion::V6,
        };
        let listed: std::result::Result<Vec<RuleMessage>, _> = self
            .handle
            .rule()
            .get(version)
            .execute()
            .try_collect()
            .await;
        match listed.map_err(|e| Error::netlink("listing rules", e)) {
            Err(e) if e.errno() == Some(EAFNOSUPPORT) => Ok(Vec::new()),
            other => other,
        }
    }

    /// The rules of `family` that match one source address (a host prefix) and look
    /// up a table.
    pub async fn source_rules(&self, family: Family) -> Result<Vec<SourceRule>> {
        Ok(self
            .rules(family)
            .await?
            .into_iter()
            .filter_map(|rule| {
                let source = rule.attributes.iter().find_map(|a| match a {
                    RuleAttribute::Source(ip) => Some(*ip),
                    _ => None,
                })?;
                if rule.header.src_len != host_prefix(source)
                    || rule.header.action != RuleAction::ToTable
                {
                    return None;
                }
                let attr =
                    |f: fn(&RuleAttribute) -> Option<u32>| rule.attributes.iter().find_map(f);
                let priority = attr(|a| match a {
                    RuleAttribute::Priority(p) => Some(*p),
                    _ => None,
                })
                .unwrap_or(0);
                let protocol = rule
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RuleAttribute::Protocol(p) => Some(u8::from(*p)),
                        _ => None,
                    })
                    .unwrap_or(0);
                Some(SourceRule {
                    source,
                    table: rule_table(&rule),
                    priority,
                    protocol,
                    message: rule,
                })
            })
            .collect())
    }

    /// Adds `from SOURCE lookup TABLE priority PRIORITY proto PROTOCOL`.
    pub async fn add_source_rule(
        &self,
        source: IpAddr,
        table: u32,
        priority: u32,
        protocol: u8,
    ) -> Result<()> {
        let mut request = self
            .handle
            .rule()
            .add()
            .action(RuleAction::ToTable)
            .table_id(table)
            .priority(priority);
        let message = request.message_mut();
        message.header.family = address_family(Family::of(source));
        message.header.src_len = host_prefix(source);
        message.attributes.push(RuleAttribute::Source(source));
        message
            .attributes
            .push(RuleAttribute::Protocol(RouteProtocol::from(protocol)));
        request.execute().await.map_err(|e| {
            Error::netlink(
                format!("adding rule from {source} lookup {table} priority {priority}"),
                e,
            )
        })
    }
}
