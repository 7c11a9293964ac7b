//! The EC2 phases of an attachment over the [`Ec2`] boundary: [`ensure`] (ADD's
//! calls, reporting what it attempted when it fails), [`undo`] (their rollback),
//! [`release`] (DEL), [`verify`] (CHECK). Lookups and decisions come first; each
//! call runs under [`super::retry::run`]; every failure becomes one CNI error naming the
//! call, the AWS error code and message, and the field at fault when there is one.

use std::net::Ipv4Addr;

use tokio::time::Instant;

use super::Ec2;
use super::decide::{self, Found, Wanted};
use super::lookup::{call, find_eip, find_eni, not_found, others};
use super::model::{ApiError, ApiStep, EniLookup, FailureKind};
use super::retry::Policy;
use crate::cni::code;
use crate::cni::config::ElasticIp;
use crate::error::Error;

/// What the EC2 side of one attachment is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `interfaceArgs.networkInterfaceId`.
    pub network_interface_id: Option<String>,
    /// The master's name, MAC and first IPv4 address: how the ENI is found.
    pub master: String,
    /// The master's MAC address.
    pub master_mac: [u8; 6],
    /// The master's first IPv4 address.
    pub master_ipv4: Option<Ipv4Addr>,
    /// The Elastic IP, if any.
    pub elastic_ip: Option<ElasticIp>,
    /// The sources.
    pub wanted: Wanted,
}

/// A failed [`ensure`]: the error, the ENI and the calls that were made or may have
/// been (a timed-out one), for [`undo`].
#[derive(Debug)]
pub struct Failed {
    /// The error.
    pub error: Error,
    /// The node's ENI, when it was found.
    pub eni: Option<String>,
    /// The calls made (or maybe made), in order.
    pub attempted: Vec<ApiStep>,
}

/// The CNI error for a failed call: code 11 (try again later) for throttling,
/// transient errors, timeouts and an unreachable endpoint; 7 naming `field` for a
/// resource it names that does not exist; 100 otherwise.
pub fn api_error(error: &ApiError, field: Option<&str>) -> Error {
    let transient = error.kind != FailureKind::Service || Policy::retryable(error);
    let missing = error
        .code
        .as_deref()
        .is_some_and(|c| c.ends_with(".NotFound") || c.ends_with(".Malformed"));
    match (transient, missing, field) {
        (true, _, _) => Error::cni(code::TRY_AGAIN_LATER, format!("EC2: {error}")),
        (false, true, Some(field)) => Error::cni(
            code::INVALID_NETWORK_CONFIG,
            format!("{field}: EC2: {error}"),
        ),
        _ => Error::cni(code::PLUGIN_FAILURE, format!("EC2: {error}")),
    }
}

/// ADD's calls, all before `deadline`; on success, the calls made.
pub async fn ensure(
    ec2: &dyn Ec2,
    target: &Target,
    deadline: Instant,
) -> Result<Vec<ApiStep>, Failed> {
    let policy = Policy::ADD;
    let failed = |error, eni: Option<&str>, attempted| Failed {
        error,
        eni: eni.map(str::to_owned),
        attempted,
    };
    let ours = match find_eni(ec2, target, &policy, deadline).await {
        Ok(Some(eni)) => eni,
        Ok(None) => return Err(failed(not_found(target), None, Vec::new())),
        Err(e) => return Err(failed(e, None, Vec::new())),
    };
    let id = Some(ours.id.as_str());
    let eip = find_eip(ec2, target, &policy, deadline)
        .await
        .map_err(|e| failed(e, id, Vec::new()))?;
    let wanted = target.wanted;
    let mut found = Found {
        ours: ours.clone(),
        eip,
        ..Found::default()
    };
    if let Some(address) = wanted.v4.filter(|a| !ours.secondary_ipv4.contains(a)) {
        found.v4_holders = others(
            ec2,
            EniLookup::PrivateIpv4(address),
            &ours.id,
            &policy,
            deadline,
        )
        .await
        .map_err(|e| failed(e, id, Vec::new()))?;
    }
    if let Some(address) = wanted.v6.filter(|a| !ours.ipv6.contains(a)) {
        found.v6_holders = others(ec2, EniLookup::Ipv6(address), &ours.id, &policy, deadline)
            .await
            .map_err(|e| failed(e, id, Vec::new()))?;
    }
    let steps = decide::add_plan(&wanted, &found).map_err(|message| {
        failed(
            Error::cni(
                code::INVALID_NETWORK_CONFIG,
                format!("ip.addresses: {message}"),
            ),
            id,
            Vec::new(),
        )
    })?;
    let mut attempted = Vec::new();
    for step in steps {
        attempted.push(step.clone());
        if let Err(e) = call(&policy, deadline, step.action(), || ec2.apply(&step)).await {
            // A refusal changed nothing; a timeout may have changed it.
            if e.kind != FailureKind::Timeout {
                attempted.pop();
            }
            let field = match step {
                ApiStep::Associate { .. } => target.elastic_ip.as_ref().map(|eip| match eip {
                    ElasticIp::Allocation(_) => "interfaceArgs.allocationId",
                    ElasticIp::PublicIp(_) => "interfaceArgs.publicIp",
                }),
                _ => None,
            };
            return Err(failed(api_error(&e, field), id, attempted));
        }
        tracing::info!(call = %step, "EC2 call made");
    }
    Ok(attempted)
}

/// Undoes `attempted` on `eni` as far as EC2 shows it done, before `deadline`;
/// the errors met (every call is tried).
pub async fn undo(
    ec2: &dyn Ec2,
    target: &Target,
    eni: &str,
    attempted: &[ApiStep],
    deadline: Instant,
) -> Vec<Error> {
    if attempted.is_empty() {
        return Vec::new();
    }
    let policy = Policy::ROLLBACK;
    let lookup = EniLookup::Id(eni.to_owned());
    let ours = match call(&policy, deadline, "DescribeNetworkInterfaces", || {
        ec2.interfaces(&lookup)
    })
    .await
    {
        Ok(found) => found.into_iter().find(|e| e.id == eni).unwrap_or_default(),
        Err(e) => return vec![api_error(&e, None)],
    };
    let eip = match find_eip(ec2, target, &policy, deadline).await {
        Ok(eip) => eip,
        Err(e) => return vec![e],
    };
    let mut errors = Vec::new();
    for step in decide::rollback_plan(attempted, &ours, eip.as_ref()) {
        match call(&policy, deadline, step.action(), || ec2.apply(&step)).await {
            Ok(()) => tracing::info!(call = %step, "EC2 call undone"),
            Err(e) => errors.push(api_error(&e, None)),
        }
    }
    errors
}

/// DEL's calls: what is still on this node's ENI goes, before `deadline`; the calls
/// made. Nothing to do when the ENI or the Elastic IP no longer exists.
pub async fn release(
    ec2: &dyn Ec2,
    target: &Target,
    deadline: Instant,
) -> Result<Vec<ApiStep>, Error> {
    let policy = Policy::ADD;
    let Some(ours) = find_eni(ec2, target, &policy, deadline).await? else {
        tracing::info!(master = %target.master, "no ENI of the master in EC2: nothing to release");
        return Ok(Vec::new());
    };
    let eip = match find_eip(ec2, target, &policy, deadline).await {
        Ok(eip) => eip,
        Err(e) if code::of(&e) == code::INVALID_NETWORK_CONFIG => {
            tracing::warn!(error = %e, "the Elastic IP is gone: only the addresses are released");
            None
        }
        Err(e) => return Err(e),
    };
    let steps = decide::release_plan(&target.wanted, &ours, eip.as_ref());
    for step in &steps {
        call(&policy, deadline, step.action(), || ec2.apply(step))
            .await
            .map_err(|e| api_error(&e, None))?;
        tracing::info!(call = %step, "EC2 call made");
    }
    Ok(steps)
}

/// CHECK: what EC2 lacks, each named.
pub async fn verify(
    ec2: &dyn Ec2,
    target: &Target,
    deadline: Instant,
) -> Result<Vec<String>, Error> {
    let policy = Policy::ADD;
    let Some(ours) = find_eni(ec2, target, &policy, deadline).await? else {
        return Ok(vec![not_found(target).to_string()]);
    };
    let eip = find_eip(ec2, target, &policy, deadline).await?;
    Ok(decide::problems(&target.wanted, &ours, eip.as_ref()))
}

#[cfg(test)]
mod tests;
