//! DEL and CHECK of the routed kinds (`routed`, `aws-elastic-ip`; ADD:
//! [`super::add`]), and what the three share: the node's namespace and lock, the EC2
//! target and client.
//!
//! DEL, under the node's lock (ADDs and DELs of routed attachments take turns on a
//! node), removes the pod's side, the node's pieces of its sources (unless another
//! attachment holds them) and, last, what EC2 still has on this node's ENI; a failed
//! EC2 call fails DEL after the local pieces are gone, so that the runtime retries.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use super::observe::{observe, observe_sources};
use super::plan::{self, NodeObserved};
use super::{NODE_LOCK, NodeIntent};
use crate::cni::attach::{self, differs_from_previous, node_side, open_pod};
use crate::cni::aws::decide::Wanted;
use crate::cni::aws::flow::{self, Target};
use crate::cni::aws::sdk::SdkEc2;
use crate::cni::code;
use crate::cni::config::{InterfaceKind, NetConf};
use crate::cni::detach::{check_outcome, finish, teardown_pod};
use crate::cni::host::{self, Owner};
use crate::cni::ip::IpConfig;
use crate::cni::request::Container;
use crate::config::family::Family;
use crate::config::router::BackendChoice;
use crate::error::{Error, Result};
use crate::setup::{self, Journal, Namespace, RoutedLink};
use crate::sys::lock::NamespaceLock;
use crate::sys::netlink::Netlink;
use crate::sys::netns::Netns;

/// How long EC2's calls of ADD may take, from the start of ADD.
pub const ADD_API_TIME: Duration = Duration::from_secs(9);
/// How long the rollback of EC2's calls may take.
pub const UNDO_API_TIME: Duration = Duration::from_secs(4);
/// How long DEL's and CHECK's EC2 calls may take.
pub const DEL_API_TIME: Duration = Duration::from_secs(10);

/// The node's namespace, opened for setup.
pub(super) fn open_node() -> Result<Namespace> {
    Ok(Namespace::open(Netns::current()?, BackendChoice::Auto)?.0)
}

/// The node's lock for routed attachments.
pub(super) async fn lock_node(node: &Namespace) -> Result<NamespaceLock> {
    NamespaceLock::acquire(&node.netns, NODE_LOCK, setup::SETUP_LOCK_WAIT)
        .await?
        .ok_or_else(|| {
            Error::cni(
                code::TRY_AGAIN_LATER,
                format!(
                    "another ADD or DEL of a routed attachment has held the node's lock @{NODE_LOCK} for more than {} s; nothing was changed",
                    setup::SETUP_LOCK_WAIT.as_secs()
                ),
            )
        })
}

/// The EC2 target of an `aws-elastic-ip` attachment on `master`.
pub(super) async fn target(
    nl: &Netlink,
    config: &NetConf,
    ip: &IpConfig,
    master: &str,
) -> Result<Target> {
    let aws = config.interface.aws.clone().unwrap_or_default();
    let link = nl.link(master).await?;
    let master_ipv4 =
        nl.addresses()
            .await?
            .into_iter()
            .find_map(|(index, address, _)| match address {
                IpAddr::V4(v4) if index == link.index => Some(v4),
                _ => None,
            });
    let of = |family| {
        ip.sources
            .iter()
            .find(|s| s.family() == family)
            .map(|s| s.address)
    };
    let wanted = Wanted {
        v4: of(Family::V4).and_then(|a| match a {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        }),
        v6: of(Family::V6).and_then(|a| match a {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        }),
    };
    if aws.elastic_ip.is_some() && wanted.v4.is_none() {
        return Err(Error::cni(
            code::INVALID_NETWORK_CONFIG,
            "interfaceArgs.allocationId: an Elastic IP is IPv4 and needs an IPv4 source in ip.addresses",
        ));
    }
    Ok(Target {
        network_interface_id: aws.network_interface_id,
        master: master.to_owned(),
        master_mac: link.mac,
        master_ipv4,
        elastic_ip: aws.elastic_ip,
        wanted,
    })
}

/// The SDK's client, loaded from its default chain within `time` (the region may
/// come from the instance metadata service).
pub(super) async fn load_ec2(time: Duration) -> Result<SdkEc2> {
    match tokio::time::timeout(time, SdkEc2::load()).await {
        Ok(loaded) => loaded.map_err(|e| flow::api_error(&e, None)),
        Err(_) => Err(Error::cni(
            code::TRY_AGAIN_LATER,
            format!(
                "EC2: loading the AWS configuration (credentials, region) took more than {} s",
                time.as_secs()
            ),
        )),
    }
}

/// The master of an attachment being removed (only `aws-elastic-ip` needs it).
async fn master_of(nl: &Netlink, config: &NetConf, ip: &IpConfig) -> Result<String> {
    let (addresses, defaults) = attach::node_view(nl).await?;
    let sources: Vec<IpAddr> = ip.sources.iter().map(|s| s.address).collect();
    host::choose_master(
        config.interface.master.as_deref(),
        &sources,
        &ip.gateways,
        &addresses,
        &defaults,
    )
}

/// Runs DEL of a routed kind.
pub async fn del(container: &Container, netns: Option<&Path>, config: &NetConf) -> Result<()> {
    let node = open_node()?;
    let _node_lock = lock_node(&node).await?;
    let mut errors = teardown_pod(container, netns).await?;
    let node_end = host::node_end_name(&container.id);
    for name in [host::temporary_name(&container.id), node_end.clone()] {
        if let Err(e) = crate::cni::detach::remove_if_ours(&node.nl, &name, &container.id).await {
            errors.push(e);
        }
    }
    // The runtime passes ADD's configuration: a pod it chooses no address for got none.
    let ip = match config.ip_config(container.pod.name.as_deref()) {
        Ok(ip) => ip,
        Err(e) => {
            info!(error = %e, "no source for this pod: nothing of it on the node");
            return finish(container, errors);
        }
    };
    let sources: Vec<IpAddr> = ip.sources.iter().map(|s| s.address).collect();
    let observed = NodeObserved {
        families: observe_sources(&node, &container.id, &sources).await?,
        ..NodeObserved::default()
    };
    for step in plan::teardown(&observed, config.interface.proxy_arp) {
        if let Err(e) = setup::apply(&node, &[step], &mut Journal::default()).await {
            errors.push(e);
        }
    }
    if config.interface.kind != InterfaceKind::AwsElasticIp {
        return finish(container, errors);
    }
    let released = async {
        let master = master_of(&node.nl, config, ip).await?;
        let target = target(&node.nl, config, ip, &master).await?;
        let ec2 = load_ec2(DEL_API_TIME).await?;
        flow::release(&ec2, &target, Instant::now() + DEL_API_TIME).await
    }
    .await;
    match (released, errors.is_empty()) {
        (Ok(_), _) => finish(container, errors),
        (Err(e), true) => Err(Error::cni(
            code::of(&e),
            format!("{e} (the node and the pod are clean; a repeated DEL finishes the EC2 side)"),
        )),
        (Err(e), false) => {
            errors.push(e);
            finish(container, errors)
        }
    }
}

/// Runs CHECK of a routed kind: every missing piece in the pod, on the node and (for
/// `aws-elastic-ip`) in EC2, as one error.
pub async fn check(container: &Container, netns: &Path, config: &NetConf) -> Result<()> {
    let ip = config.ip_config(container.pod.name.as_deref())?;
    let pod = open_pod(netns)?;
    let node = open_node()?;
    let (master, gateways) = node_side(&node.nl, config, ip).await?;
    let node_intent = NodeIntent::new(container, &master, ip, &gateways, config);
    let observed = observe(&node, &node_intent).await?;
    let mut problems: Vec<String> = plan::problems(&node_intent, &observed)
        .into_iter()
        .map(|p| format!("node: {p}"))
        .collect();
    let (ns, _) = Namespace::open(pod, BackendChoice::Auto)?;
    match (ns.nl.find_link(&container.ifname).await?, observed.node_end) {
        (None, _) => problems.push(format!("interface {} is missing", container.ifname)),
        (Some((_, alias)), node_end) => {
            match (Owner::of(alias.as_deref(), &container.id), node_end) {
                (None, _) => problems.push(format!(
                    "interface {} was not made by this container's ADD",
                    container.ifname
                )),
                (Some(_), None) => {}
                (Some(owner), Some(node_end)) => {
                    let routed = Some(RoutedLink {
                        gateway_mac: node_end.mac,
                    });
                    let intent = attach::intent(ip, &container.ifname, &gateways, &owner, routed);
                    problems.extend(setup::check(&ns, &intent).await?);
                }
            }
        }
    }
    if let Some(prev) = &config.prev_result {
        problems.extend(differs_from_previous(prev, &ns, &container.ifname).await?);
    }
    if config.interface.kind == InterfaceKind::AwsElasticIp {
        let target = target(&node.nl, config, ip, &master).await?;
        let ec2 = load_ec2(DEL_API_TIME).await?;
        problems.extend(flow::verify(&ec2, &target, Instant::now() + DEL_API_TIME).await?);
    }
    check_outcome(problems)
}
