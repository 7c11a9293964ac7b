//! What to ask of EC2, decided from what it showed (pure): the calls of ADD, of DEL
//! (only what is still on this node's ENI), of a rollback (only what this ADD did and
//! is still there), and what CHECK finds missing.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::model::{ApiStep, ElasticIpState, Eni};

/// The sources EC2 must deliver to the node: at most one a family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The IPv4 source: a secondary private address of the ENI.
    pub v4: Option<Ipv4Addr>,
    /// The IPv6 source: an IPv6 address of the ENI.
    pub v6: Option<Ipv6Addr>,
}

/// What EC2 showed before ADD's calls.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// This node's ENI.
    pub ours: Eni,
    /// The other ENIs holding the IPv4 source (AssignPrivateIpAddresses moves it).
    pub v4_holders: Vec<String>,
    /// The other ENIs holding the IPv6 source (taken from them first: IPv6 has no
    /// reassignment).
    pub v6_holders: Vec<String>,
    /// The Elastic IP, when one is configured.
    pub eip: Option<ElasticIpState>,
}

/// The calls that make EC2 deliver `wanted` to `found.ours` (and associate the
/// Elastic IP with the IPv4 source), in order; none when all is in place. Fails when
/// the IPv4 source is the ENI's primary address (the node's own).
pub fn add_plan(wanted: &Wanted, found: &Found) -> Result<Vec<ApiStep>, String> {
    let ours = &found.ours;
    let mut steps = Vec::new();
    if let Some(address) = wanted.v4 {
        if ours.primary_ipv4 == Some(address) {
            return Err(format!(
                "{address} is the primary address of {} (the node's own): a source must be another address of its subnet",
                ours.id
            ));
        }
        if !ours.secondary_ipv4.contains(&address) {
            steps.push(ApiStep::AssignV4 {
                eni: ours.id.clone(),
                address,
                from: found.v4_holders.iter().find(|e| **e != ours.id).cloned(),
            });
        }
    }
    if let Some(address) = wanted.v6
        && !ours.ipv6.contains(&address)
    {
        for holder in found.v6_holders.iter().filter(|e| **e != ours.id) {
            steps.push(ApiStep::UnassignV6 {
                eni: holder.clone(),
                address,
            });
        }
        steps.push(ApiStep::AssignV6 {
            eni: ours.id.clone(),
            address,
        });
    }
    if let (Some(eip), Some(private)) = (&found.eip, wanted.v4)
        && !eip.is_on(&ours.id, private)
    {
        steps.push(ApiStep::Associate {
            allocation: eip.allocation_id.clone(),
            eni: ours.id.clone(),
            private,
        });
    }
    Ok(steps)
}

/// The calls of DEL: disassociate the Elastic IP and unassign the sources, only
/// where they are still on `ours` (a pod that moved has them on another node, which
/// keeps them).
pub fn release_plan(wanted: &Wanted, ours: &Eni, eip: Option<&ElasticIpState>) -> Vec<ApiStep> {
    let mut steps = Vec::new();
    if let Some(address) = wanted.v4
        && ours.secondary_ipv4.contains(&address)
    {
        if let Some(eip) = eip.filter(|e| e.is_on(&ours.id, address)) {
            steps.extend(disassociate(eip));
        }
        steps.push(ApiStep::UnassignV4 {
            eni: ours.id.clone(),
            address,
        });
    }
    if let Some(address) = wanted.v6
        && ours.ipv6.contains(&address)
    {
        steps.push(ApiStep::UnassignV6 {
            eni: ours.id.clone(),
            address,
        });
    }
    steps
}

fn disassociate(eip: &ElasticIpState) -> Option<ApiStep> {
    Some(ApiStep::Disassociate {
        association: eip.association_id.clone()?,
        allocation: eip.allocation_id.clone(),
    })
}

/// The calls that undo `attempted` (ADD's calls that were made, or may have been:
/// one that timed out), newest first, judged on what EC2 shows now (`ours`, `eip`):
/// an association with the source on this ENI is removed, an address assigned here
/// goes back where it came from or is unassigned, an IPv6 address taken from another
/// ENI is given back.
pub fn rollback_plan(
    attempted: &[ApiStep],
    ours: &Eni,
    eip: Option<&ElasticIpState>,
) -> Vec<ApiStep> {
    let mut steps = Vec::new();
    // IPv6 addresses on this ENI once the steps planned so far are made
    let mut ipv6 = ours.ipv6.clone();
    for step in attempted.iter().rev() {
        match step {
            ApiStep::Associate { private, .. } => {
                if let Some(eip) = eip.filter(|e| e.is_on(&ours.id, *private)) {
                    steps.extend(disassociate(eip));
                }
            }
            ApiStep::AssignV4 { address, from, .. } if ours.secondary_ipv4.contains(address) => {
                steps.push(match from {
                    Some(previous) => ApiStep::AssignV4 {
                        eni: previous.clone(),
                        address: *address,
                        from: Some(ours.id.clone()),
                    },
                    None => ApiStep::UnassignV4 {
                        eni: ours.id.clone(),
                        address: *address,
                    },
                });
            }
            ApiStep::AssignV6 { address, .. } if ipv6.contains(address) => {
                ipv6.retain(|a| a != address);
                steps.push(ApiStep::UnassignV6 {
                    eni: ours.id.clone(),
                    address: *address,
                });
            }
            ApiStep::UnassignV6 { eni, address } if !ipv6.contains(address) => {
                steps.push(ApiStep::AssignV6 {
                    eni: eni.clone(),
                    address: *address,
                });
            }
            _ => {}
        }
    }
    steps
}

/// What EC2 lacks of `wanted` on `ours`, each named (CHECK).
pub fn problems(wanted: &Wanted, ours: &Eni, eip: Option<&ElasticIpState>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(address) = wanted.v4
        && !ours.secondary_ipv4.contains(&address)
    {
        problems.push(format!(
            "EC2: {address} is not a secondary private address of {}",
            ours.id
        ));
    }
    if let Some(address) = wanted.v6
        && !ours.ipv6.contains(&address)
    {
        problems.push(format!(
            "EC2: {address} is not an IPv6 address of {}",
            ours.id
        ));
    }
    if let (Some(eip), Some(private)) = (eip, wanted.v4)
        && !eip.is_on(&ours.id, private)
    {
        let now = match (&eip.network_interface_id, eip.private_ip) {
            (Some(eni), Some(ip)) => format!("it is on {ip} of {eni}"),
            _ => "it is not associated".into(),
        };
        problems.push(format!(
            "EC2: Elastic IP {} ({}) is not associated with {private} on {}: {now}",
            eip.public_ip, eip.allocation_id, ours.id
        ));
    }
    problems
}

/// Whether `mac` (as EC2 writes it) is `node_mac`.
pub fn same_mac(mac: &str, node_mac: &[u8; 6]) -> bool {
    mac.eq_ignore_ascii_case(&crate::sys::netlink::show_mac(node_mac))
}

#[cfg(test)]
mod tests;
