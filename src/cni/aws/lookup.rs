//! The lookups of the EC2 phases: the node's ENI on the master, the configured
//! Elastic IP, the other ENIs holding a source, each call under [`retry::run`].

use tokio::time::Instant;

use super::Ec2;
use super::decide;
use super::flow::{Target, api_error};
use super::model::{ApiError, EipLookup, ElasticIpState, Eni, EniLookup};
use super::retry::{self, Policy};
use crate::cni::code;
use crate::cni::config::ElasticIp;
use crate::error::Error;
use crate::sys::netlink::show_mac;

/// Runs one lookup or change under `policy`.
pub(super) async fn call<T, F, Fut>(
    policy: &Policy,
    deadline: Instant,
    action: &'static str,
    f: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    retry::run(policy, deadline, action, f).await
}

/// The node's ENI on the master: by `networkInterfaceId` (whose MAC must be the
/// master's), else by the master's MAC, else by its IPv4 address. `Ok(None)` when no
/// ENI matches (the error that says so, for ADD, is [`not_found`]).
pub(super) async fn find_eni(
    ec2: &dyn Ec2,
    target: &Target,
    policy: &Policy,
    deadline: Instant,
) -> Result<Option<Eni>, Error> {
    const ACTION: &str = "DescribeNetworkInterfaces";
    let field = "interfaceArgs.networkInterfaceId";
    let lookup =
        |l: EniLookup| async move { call(policy, deadline, ACTION, || ec2.interfaces(&l)).await };
    if let Some(id) = &target.network_interface_id {
        let found = match lookup(EniLookup::Id(id.clone())).await {
            Err(e) if e.code.as_deref() == Some("InvalidNetworkInterfaceID.NotFound") => {
                return Ok(None);
            }
            other => other.map_err(|e| api_error(&e, Some(field)))?,
        };
        let Some(eni) = found.into_iter().find(|e| e.id == *id) else {
            return Ok(None);
        };
        if !decide::same_mac(&eni.mac, &target.master_mac) {
            return Err(Error::cni(
                code::INVALID_NETWORK_CONFIG,
                format!(
                    "{field}: {id} has MAC {}, but master {} has {}: it is not this node's ENI on {}",
                    eni.mac,
                    target.master,
                    show_mac(&target.master_mac),
                    target.master
                ),
            ));
        }
        return Ok(Some(eni));
    }
    let mut lookups = vec![EniLookup::Mac(show_mac(&target.master_mac))];
    lookups.extend(target.master_ipv4.map(EniLookup::PrivateIpv4));
    for l in lookups {
        let found = lookup(l.clone()).await.map_err(|e| api_error(&e, None))?;
        match found.as_slice() {
            [] => continue,
            [one] => return Ok(Some(one.clone())),
            many => {
                let ids: Vec<&str> = many.iter().map(|e| e.id.as_str()).collect();
                return Err(Error::cni(
                    code::INVALID_NETWORK_CONFIG,
                    format!(
                        "{field}: several ENIs match master {} ({l:?}): {}; name one",
                        target.master,
                        ids.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(None)
}

/// The error of an ENI that cannot be found.
pub(super) fn not_found(target: &Target) -> Error {
    let how = match (&target.network_interface_id, target.master_ipv4) {
        (Some(id), _) => format!("{id} does not exist"),
        (None, Some(ip)) => format!(
            "no ENI has master {}'s MAC {} or its address {ip}",
            target.master,
            show_mac(&target.master_mac)
        ),
        (None, None) => format!(
            "no ENI has master {}'s MAC {}",
            target.master,
            show_mac(&target.master_mac)
        ),
    };
    Error::cni(
        code::INVALID_NETWORK_CONFIG,
        format!("interfaceArgs.networkInterfaceId: EC2: {how} (DescribeNetworkInterfaces)"),
    )
}

/// The configured Elastic IP as EC2 shows it (`Ok(None)` when none is configured).
pub(super) async fn find_eip(
    ec2: &dyn Ec2,
    target: &Target,
    policy: &Policy,
    deadline: Instant,
) -> Result<Option<ElasticIpState>, Error> {
    let (lookup, field, shown) = match &target.elastic_ip {
        None => return Ok(None),
        Some(ElasticIp::Allocation(id)) => (
            EipLookup::Allocation(id.clone()),
            "interfaceArgs.allocationId",
            id.clone(),
        ),
        Some(ElasticIp::PublicIp(ip)) => (
            EipLookup::PublicIp(*ip),
            "interfaceArgs.publicIp",
            ip.to_string(),
        ),
    };
    let found = call(policy, deadline, "DescribeAddresses", || {
        ec2.elastic_ips(&lookup)
    })
    .await
    .map_err(|e| api_error(&e, Some(field)))?;
    match found.into_iter().next() {
        Some(eip) => Ok(Some(eip)),
        None => Err(Error::cni(
            code::INVALID_NETWORK_CONFIG,
            format!(
                "{field}: EC2: {shown} is not an Elastic IP of this account and region (DescribeAddresses)"
            ),
        )),
    }
}

/// The ENIs other than `ours` that `lookup` finds.
pub(super) async fn others(
    ec2: &dyn Ec2,
    lookup: EniLookup,
    ours: &str,
    policy: &Policy,
    deadline: Instant,
) -> Result<Vec<String>, Error> {
    let found = call(policy, deadline, "DescribeNetworkInterfaces", || {
        ec2.interfaces(&lookup)
    })
    .await
    .map_err(|e| api_error(&e, None))?;
    Ok(found
        .into_iter()
        .map(|e| e.id)
        .filter(|id| id != ours)
        .collect())
}
