//! ADD, DEL and CHECK of the routed kinds (`routed`, `aws-elastic-ip`).
//!
//! ADD, under the node's lock (ADDs and DELs of routed attachments take turns on a
//! node) and the pod's: the veth pair (node end `egv...`, the other end moved into
//! the pod as `CNI_IFNAME`), the node's pieces ([`super::plan`]), the pod on the
//! shared setup path with its gateway pinned to the node end, then EC2's calls
//! (`aws-elastic-ip`). Any failure undoes every step, EC2's included, newest first.
//! DEL removes the pod's side, the node's pieces of its sources (unless another
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
use crate::cni::attach::{self, differs_from_previous, has_own_default, node_side, open_pod};
use crate::cni::aws::decide::Wanted;
use crate::cni::aws::flow::{self, Target};
use crate::cni::aws::sdk::SdkEc2;
use crate::cni::code;
use crate::cni::config::{InterfaceKind, NetConf};
use crate::cni::detach::{check_outcome, finish, teardown_pod};
use crate::cni::host::{self, Owner};
use crate::cni::ip::IpConfig;
use crate::cni::request::Container;
use crate::cni::result::{Interface, SuccessResult};
use crate::config::family::Family;
use crate::config::router::BackendChoice;
use crate::error::{Error, Result};
use crate::setup::{self, Journal, Namespace, RoutedLink, Step, announce};
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
fn open_node() -> Result<Namespace> {
    Ok(Namespace::open(Netns::current()?, BackendChoice::Auto)?.0)
}

/// The node's lock for routed attachments.
async fn lock_node(node: &Namespace) -> Result<NamespaceLock> {
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
async fn target(nl: &Netlink, config: &NetConf, ip: &IpConfig, master: &str) -> Result<Target> {
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
async fn load_ec2(time: Duration) -> Result<SdkEc2> {
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

/// The sources must not be addresses of the node itself.
fn not_on_node(ip: &IpConfig, node_addresses: &[(u32, IpAddr, u8)]) -> Result<()> {
    for source in &ip.sources {
        if node_addresses.iter().any(|(_, a, _)| *a == source.address) {
            return Err(Error::cni(
                code::INVALID_NETWORK_CONFIG,
                format!(
                    "ip.addresses: {} is an address of the node itself: a routed source must be an address no host has",
                    source.address
                ),
            ));
        }
    }
    Ok(())
}

/// Runs ADD of a routed kind and returns the result to print.
pub async fn add(
    container: &Container,
    netns: &Path,
    config: &NetConf,
    ip: &IpConfig,
) -> Result<SuccessResult> {
    let started = Instant::now();
    let pod = open_pod(netns)?;
    let node = open_node()?;
    let (master, gateways) = node_side(&node.nl, config, ip).await?;
    not_on_node(ip, &node.nl.addresses().await?)?;
    let aws = match config.interface.kind {
        InterfaceKind::AwsElasticIp => Some((
            target(&node.nl, config, ip, &master).await?,
            load_ec2(ADD_API_TIME).await?,
        )),
        _ => None,
    };
    let _node_lock = lock_node(&node).await?;
    let _lock = setup::lock(&pod).await?;
    let (ns, _) = Namespace::open(pod, BackendChoice::Auto)?;
    if ns.nl.find_link(&container.ifname).await?.is_some() {
        return Err(Error::cni(
            code::PLUGIN_FAILURE,
            format!(
                "the pod already has an interface {}: nothing was changed",
                container.ifname
            ),
        ));
    }
    let owner = Owner {
        container: container.id.clone(),
        replies4: has_own_default(&ns.nl, Family::V4).await?,
        replies6: has_own_default(&ns.nl, Family::V6).await?,
    };
    let node_intent = NodeIntent {
        container: container.id.clone(),
        node_end: host::node_end_name(&container.id),
        master: master.clone(),
        sources: ip
            .sources
            .iter()
            .map(|s| s.address)
            .zip(gateways.iter().copied())
            .collect(),
        proxy_arp: config.interface.proxy_arp,
    };
    let mtu = match config.interface.mtu {
        Some(mtu) => u32::from(mtu),
        None => node.nl.mtu(node.nl.link(&master).await?.index).await?,
    };
    let temporary = host::temporary_name(&container.id);
    let (node_end, peer) = node
        .nl
        .add_veth(&node_intent.node_end, &temporary, Some(mtu))
        .await
        .map_err(|e| host::creation_failure("veth", &master, e))?;
    let node_owner = Owner {
        container: container.id.clone(),
        replies4: false,
        replies6: false,
    };
    let mut node_journal = Journal::default();
    let mut api = None;
    let made = async {
        node.nl.set_alias(node_end, &node_owner.alias()).await?;
        node.nl.set_alias(peer, &owner.alias()).await?;
        node.nl
            .move_link(peer, &ns.netns, &container.ifname)
            .await?;
        let observed = observe(&node, &node_intent).await?;
        let steps = plan::plan(&node_intent, &observed)?;
        setup::apply(&node, &steps, &mut node_journal).await?;
        let gateway_mac = node.nl.link(&node_intent.node_end).await?.mac;
        let intent = attach::intent(
            ip,
            &container.ifname,
            &gateways,
            &owner,
            Some(RoutedLink { gateway_mac }),
        );
        let done = setup::establish(&ns, &intent).await?;
        if let Some((target, ec2)) = &aws
            && let Err(failed) = flow::ensure(ec2, target, started + ADD_API_TIME).await
        {
            api = Some((failed.eni, failed.attempted));
            return Err(failed.error);
        }
        Ok::<_, Error>(done)
    }
    .await;
    let done = match made {
        Ok(done) => done,
        Err(cause) => {
            let mut rollback = Vec::new();
            if let (Some((target, ec2)), Some((Some(eni), attempted))) = (&aws, &api) {
                let deadline = Instant::now() + UNDO_API_TIME;
                rollback.extend(flow::undo(ec2, target, eni, attempted, deadline).await);
            }
            let cleanup = match ns.nl.find_link(&container.ifname).await {
                Ok(Some((link, _))) => ns.nl.delete_link(link.index).await,
                _ => match node.nl.find_link(&node_intent.node_end).await {
                    Ok(Some((link, _))) => node.nl.delete_link(link.index).await,
                    other => other.map(drop),
                },
            };
            rollback.extend(cleanup.err());
            rollback.extend(node_journal.rollback(&node).await);
            return Err(Error::Setup {
                cause: Box::new(cause),
                rollback,
            });
        }
    };
    announce::spawn_second(&done.announced)?;
    if config.interface.proxy_arp {
        announce_on_master(&node, &master, ip).await;
    }
    let link = ns.nl.link(&container.ifname).await?;
    info!(
        container = %container.id,
        interface = %container.ifname,
        node_end = %node_intent.node_end,
        %master,
        kind = config.interface.kind.type_name(),
        "attached (routed)"
    );
    Ok(SuccessResult::new(
        config.cni_version,
        Interface::new(&container.ifname, link.mac, ns.netns.path()),
        ip,
        &gateways,
    ))
}

/// With `proxyArp`: a gratuitous ARP for the IPv4 source at the master's address, so
/// that the network's caches (from a node the pod left) point here at once; a failure
/// is logged only (the proxy entry answers the next request anyway).
async fn announce_on_master(node: &Namespace, master: &str, ip: &IpConfig) {
    let Some(source) = ip.sources.iter().find_map(|s| match s.address {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }) else {
        return;
    };
    let announced = async {
        let link = node.nl.link(master).await?;
        let step = Step::Announce {
            index: link.index,
            mac: link.mac,
            address: IpAddr::V4(source),
        };
        let announced = setup::apply(node, &[step], &mut Journal::default()).await?;
        announce::spawn_second(&announced)
    }
    .await;
    if let Err(e) = announced {
        tracing::warn!(%source, %master, error = %e, "announcing the source on the master failed");
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
    let node_intent = NodeIntent {
        container: container.id.clone(),
        node_end: host::node_end_name(&container.id),
        master: master.clone(),
        sources: ip
            .sources
            .iter()
            .map(|s| s.address)
            .zip(gateways.iter().copied())
            .collect(),
        proxy_arp: config.interface.proxy_arp,
    };
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
