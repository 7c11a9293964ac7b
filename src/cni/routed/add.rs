//! ADD of the routed kinds (`routed`, `aws-elastic-ip`), under the node's lock and the
//! pod's: the veth pair (node end `egv...`, the other end moved into the pod as
//! `CNI_IFNAME`), the node's pieces ([`super::plan`]), the pod on the shared setup
//! path with its gateway pinned to the node end, then EC2's calls (`aws-elastic-ip`).
//! Any failure undoes every step, EC2's included, newest first.

use std::net::IpAddr;
use std::path::Path;

use tokio::time::Instant;
use tracing::info;

use super::commands::{ADD_API_TIME, UNDO_API_TIME, load_ec2, lock_node, open_node, target};
use super::observe::observe;
use super::{NodeIntent, plan};
use crate::cni::attach::{self, node_side, open_pod, owner_in_pod};
use crate::cni::aws::flow;
use crate::cni::code;
use crate::cni::config::{InterfaceKind, NetConf};
use crate::cni::host::{self, Owner};
use crate::cni::ip::IpConfig;
use crate::cni::request::Container;
use crate::cni::result::{Interface, SuccessResult};
use crate::config::router::BackendChoice;
use crate::error::{Error, Result};
use crate::setup::{self, Journal, Namespace, RoutedLink, Step, announce};

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
    let owner = owner_in_pod(&ns, container).await?;
    let node_intent = NodeIntent::new(container, &master, ip, &gateways, config);
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
