//! ADD: validate, choose master and gateway on the node, create the interface there
//! under a name unique to the container, move it into the pod as `CNI_IFNAME`, and
//! bring the pod to the plugin's [`Intent`] through the shared setup path. Any failure
//! undoes every step, on the node and in the pod.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use netlink_packet_route::link::{IpVlanMode, LinkAttribute, MacVlanMode};
use netlink_packet_route::route::RouteHeader;
use rtnetlink::{LinkIpVlan, LinkMacVlan};
use tracing::info;

use super::code;
use super::config::{InterfaceKind, IpvlanMode, MacvlanMode, NetConf};
use super::host::{self, HostAddress, HostDefault, Owner};
use super::ip::IpConfig;
use super::preflight;
use super::request::Container;
use super::result::{Interface, SuccessResult};
use crate::config::address::is_link_local_v6;
use crate::config::family::Family;
use crate::config::redirect::forwards;
use crate::config::router::BackendChoice;
use crate::error::{Error, Result};
use crate::setup::firewall::{Inbound, NatChains, Wanted};
use crate::setup::{self, FamilyIntent, Intent, Namespace, PodSide, RoutedLink, announce};
use crate::sys::netlink::{self, Netlink};
use crate::sys::netns::Netns;

/// The plugin's intent for a pod: `ifname` carries each family's source and default
/// route via its gateway (`gateways` in the order of the sources), the pod's other
/// interfaces are the cluster side, NAT in chains of our own, the interface guarded in
/// every family (only replies come in from it); a family whose default
/// routes the pod had when ADD ran (`owner`) keeps them in the reply table (a
/// container on this network alone has none). `routed`: the interface is the pod end
/// of a routed attachment's veth pair.
pub fn intent(
    ip: &IpConfig,
    ifname: &str,
    gateways: &[IpAddr],
    owner: &Owner,
    routed: Option<RoutedLink>,
) -> Intent {
    let families = ip
        .sources
        .iter()
        .zip(gateways)
        .map(|(source, gateway)| FamilyIntent {
            source: *source,
            gateway: *gateway,
            forwarding: forwards(source.family(), &ip.destinations),
            replies_required: owner.replies_of(source.family()),
            held: true,
            dad: true,
        })
        .collect();
    let firewalls = Family::ALL
        .into_iter()
        .map(
            |family| match ip.sources.iter().find(|s| s.family() == family) {
                Some(source) => Wanted {
                    family,
                    egress: ifname.into(),
                    replies: Some(Inbound::NotOn(ifname.into())),
                    nat: Some((NatChains::Own, ip.nat_rules(ifname, source))),
                    names: Vec::new(),
                    vrrp: None,
                },
                None => Wanted::guard_only(family, ifname),
            },
        )
        .collect();
    Intent {
        families,
        firewalls,
        egress: ifname.into(),
        pod: PodSide::AllButEgress,
        source_field: "ip.addresses",
        routed,
    }
}

/// The attachment's owner in the pod `ns` (whether the pod has its own default route a
/// family, where replies then go); an error, before anything changes, when the pod
/// already has an interface named `CNI_IFNAME`.
pub async fn owner_in_pod(ns: &Namespace, container: &Container) -> Result<Owner> {
    if ns.nl.find_link(&container.ifname).await?.is_some() {
        return Err(Error::cni(
            code::PLUGIN_FAILURE,
            format!(
                "the pod already has an interface {}: nothing was changed",
                container.ifname
            ),
        ));
    }
    Ok(Owner {
        container: container.id.clone(),
        replies4: has_own_default(&ns.nl, Family::V4).await?,
        replies6: has_own_default(&ns.nl, Family::V6).await?,
    })
}

/// Runs ADD and returns the result to print.
pub async fn add(container: &Container, netns: &Path, config: &NetConf) -> Result<SuccessResult> {
    let ip = config.ip_config(container.pod.name.as_deref())?;
    one_address_a_family(ip)?;
    if config.interface.kind.is_routed() {
        return super::routed::add::add(container, netns, config, ip).await;
    }
    let pod = open_pod(netns)?;
    let node_nl = Netlink::connect(&Netns::current()?)?;
    let (master, gateways) = node_side(&node_nl, config, ip).await?;
    let _lock = setup::lock(&pod).await?;
    let (ns, _) = Namespace::open(pod, BackendChoice::Auto)?;
    let owner = owner_in_pod(&ns, container).await?;
    preflight::refuse_a_second_setup(&ns)?;
    let intent = intent(ip, &container.ifname, &gateways, &owner, None);
    let index = create_link(&node_nl, config, &master, &owner).await?;
    let moved = node_nl.move_link(index, &ns.netns, &container.ifname).await;
    let done = match moved {
        Ok(()) => setup::establish(&ns, &intent).await,
        Err(e) => Err(e),
    };
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            let cleanup = match ns.nl.find_link(&container.ifname).await {
                Ok(Some((link, _))) => ns.nl.delete_link(link.index).await,
                _ => node_nl.delete_link(index).await,
            };
            return Err(match cleanup {
                Ok(()) => e,
                Err(left) => Error::Setup {
                    cause: Box::new(e),
                    rollback: vec![left],
                },
            });
        }
    };
    announce::spawn_second(&done.announced)?;
    let link = ns.nl.link(&container.ifname).await?;
    let shown = |items: Vec<String>| items.join(",");
    info!(
        container = %container.id,
        interface = %container.ifname,
        %master,
        source = %shown(ip.sources.iter().map(ToString::to_string).collect()),
        gateway = %shown(gateways.iter().map(ToString::to_string).collect()),
        "attached"
    );
    Ok(SuccessResult::new(
        config.cni_version,
        Interface::new(&container.ifname, link.mac, ns.netns.path()),
        ip,
        &gateways,
    ))
}

/// Refuses a second address of a family (code 2, naming its field).
pub fn one_address_a_family(ip: &IpConfig) -> Result<()> {
    match ip.additional.first() {
        Some((field, address)) => Err(Error::cni(
            code::UNSUPPORTED_FIELD,
            format!(
                "{field}: {address} is a second {} address: one address a family per attachment is supported",
                address.family()
            ),
        )),
        None => Ok(()),
    }
}

/// The pod's network namespace; a path that does not open, or is no namespace, is an
/// unknown container.
pub fn open_pod(netns: &Path) -> Result<Netns> {
    Netns::open(netns).map_err(|e| Error::cni(code::UNKNOWN_CONTAINER, format!("CNI_NETNS: {e}")))
}

/// The master and each source's gateway (in the order of the sources), from the
/// configuration and what the node has.
pub async fn node_side(
    nl: &Netlink,
    config: &NetConf,
    ip: &IpConfig,
) -> Result<(String, Vec<IpAddr>)> {
    let (addresses, defaults) = node_view(nl).await?;
    let sources: Vec<IpAddr> = ip.sources.iter().map(|s| s.address).collect();
    let master = host::choose_master(
        config.interface.master.as_deref(),
        &sources,
        &ip.gateways,
        &addresses,
        &defaults,
    )?;
    let mut gateways = Vec::new();
    for source in &ip.sources {
        let source_net = IpNet::new(source.address, source.prefix_len)
            .map_err(|e| Error::cni(code::INVALID_NETWORK_CONFIG, e.to_string()))?;
        let subnet = addresses
            .iter()
            .find(|a| a.interface == master && a.net.trunc().contains(&source.address))
            .map_or(source_net, |a| a.net);
        gateways.push(host::choose_gateway(
            ip.gateway(source.family()),
            &master,
            subnet,
            &defaults,
        )?);
    }
    Ok((master, gateways))
}

/// Whether the pod has a default route of `family` of its own, through one of its
/// interfaces (the cluster side, before the plugin's interface is there): the route
/// replies need.
pub async fn has_own_default(nl: &Netlink, family: Family) -> Result<bool> {
    let links = nl.links().await?;
    let routes = nl
        .routes(family, u32::from(RouteHeader::RT_TABLE_MAIN))
        .await?;
    Ok(routes.iter().any(|r| {
        r.header.destination_prefix_length == 0
            && links
                .iter()
                .any(|(name, link)| name != "lo" && netlink::route_interface(r) == Some(link.index))
    }))
}

/// The node's addresses (link-local ones left out) and main-table default routes of
/// both families, by interface name.
pub async fn node_view(nl: &Netlink) -> Result<(Vec<HostAddress>, Vec<HostDefault>)> {
    let links = nl.links().await?;
    let name_of = |index: u32| {
        links
            .iter()
            .find(|(_, l)| l.index == index)
            .map(|(name, _)| name.clone())
    };
    let addresses = nl
        .addresses()
        .await?
        .into_iter()
        .filter(|(_, address, _)| !is_link_local_v6(*address))
        .filter_map(|(index, address, prefix)| {
            Some(HostAddress {
                interface: name_of(index)?,
                net: IpNet::new(address, prefix).ok()?,
            })
        })
        .collect();
    let mut defaults = Vec::new();
    for family in [Family::V4, Family::V6] {
        let routes = nl
            .routes(family, u32::from(RouteHeader::RT_TABLE_MAIN))
            .await?;
        defaults.extend(
            routes
                .iter()
                .filter(|r| r.header.destination_prefix_length == 0)
                .filter_map(|r| {
                    Some(HostDefault {
                        interface: name_of(netlink::route_interface(r)?)?,
                        gateway: netlink::route_gateway(r),
                    })
                }),
        );
    }
    Ok((addresses, defaults))
}

/// Creates the interface on `master` under the container's temporary name, marked with
/// its `owner`, and returns its index.
async fn create_link(nl: &Netlink, config: &NetConf, master: &str, owner: &Owner) -> Result<u32> {
    let master_index = nl.link(master).await?.index;
    let name = host::temporary_name(&owner.container);
    let mut message = match config.interface.kind {
        InterfaceKind::Macvlan(mode) => {
            let mode = match mode {
                MacvlanMode::Bridge => MacVlanMode::Bridge,
                MacvlanMode::Private => MacVlanMode::Private,
                MacvlanMode::Vepa => MacVlanMode::Vepa,
                MacvlanMode::Passthru => MacVlanMode::Passthrough,
            };
            LinkMacVlan::new(&name, master_index, mode).build()
        }
        InterfaceKind::Ipvlan(mode) => {
            let mode = match mode {
                IpvlanMode::L2 => IpVlanMode::L2,
                IpvlanMode::L3 => IpVlanMode::L3,
                IpvlanMode::L3s => IpVlanMode::L3S,
            };
            LinkIpVlan::new(&name, master_index, mode).build()
        }
        InterfaceKind::Routed | InterfaceKind::AwsElasticIp => {
            return Err(Error::State(format!(
                "interfaceType {}: a veth pair, not made here",
                config.interface.kind.type_name()
            )));
        }
    };
    if let Some(mtu) = config.interface.mtu {
        message.attributes.push(LinkAttribute::Mtu(u32::from(mtu)));
    }
    let index = nl
        .add_link(message, &name)
        .await
        .map_err(|e| host::creation_failure(config.interface.kind.type_name(), master, e))?;
    if let Err(e) = nl.set_alias(index, &owner.alias()).await {
        let _ = nl.delete_link(index).await;
        return Err(e);
    }
    Ok(index)
}

/// What differs between the interface in the pod and the one `prev` (the ADD result
/// the runtime kept) lists: its presence and hardware address.
pub async fn differs_from_previous(
    prev: &serde_json::Value,
    ns: &Namespace,
    ifname: &str,
) -> Result<Vec<String>> {
    let listed = prev["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == ifname);
    let Some(listed) = listed else {
        return Ok(vec![format!("prevResult does not list interface {ifname}")]);
    };
    let Some((link, _)) = ns.nl.find_link(ifname).await? else {
        return Ok(Vec::new());
    };
    let mac = Interface::new(ifname, link.mac, ns.netns.path()).mac;
    Ok(match listed["mac"].as_str() {
        Some(was) if !was.eq_ignore_ascii_case(&mac) => {
            vec![format!("{ifname} has MAC {mac}, prevResult says {was}")]
        }
        _ => Vec::new(),
    })
}
