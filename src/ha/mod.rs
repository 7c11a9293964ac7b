//! The high-availability role (SPEC section 12): VRRP version 3 on `macvlan0`, one
//! instance a family, run on a thread of its own (with a runtime of its own, so that
//! the setup checks, the metrics endpoint and the iptables tools they wait for never
//! delay an advertisement). It starts as backup after removing whatever source a
//! killed run left; a master holds the source, its routes and its announcements; at
//! shutdown a master sends priority 0, then gives the source up. `redirect`, `legacy`
//! and the proxies' sidecar (`egress-router ha`) run it beside their checks.

mod hold;
mod instance;
mod shared;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;
use tracing::{info, warn};

pub use shared::HaShared;

use crate::config::address::is_link_local_v6;
use crate::config::family::Family;
use crate::config::ha::{HaConfig, VRID};
use crate::config::router::{EgressPair, MACVLAN, RouterConfig};
use crate::error::{Error, Result};
use crate::serve::shutdown::{self, Shutdown};
use crate::setup::{Intent, Namespace};
use crate::sys::netns::Netns;
use crate::sys::vrrp::{VrrpSocket, group};
use crate::vrrp::machine::{Machine, State};
use instance::Instance;

/// How long an IPv6 instance waits for `macvlan0`'s link-local address to be usable.
const LINK_LOCAL_WAIT: Duration = Duration::from_secs(5);

/// VRRP running on its thread.
pub struct Ha {
    /// The instances' states and metrics.
    pub shared: Arc<HaShared>,
    finished: oneshot::Receiver<()>,
}

impl Ha {
    /// Starts VRRP for `config` (whose `ha` is set) in this network namespace: the
    /// leftover source removed, every instance started as backup. Returns once started,
    /// or the startup error (no address of the pod's own on `macvlan0`: exit 2).
    pub async fn start(config: &RouterConfig, shutdown: Shutdown) -> Result<Ha> {
        let ha = config
            .ha
            .clone()
            .ok_or_else(|| Error::config(VRID, "is required but not set"))?;
        let families: Vec<Family> = config.egress.iter().map(EgressPair::family).collect();
        let shared = Arc::new(HaShared::new(ha.vrid, &families));
        let (started, on_start) = oneshot::channel();
        let (done, finished) = oneshot::channel();
        let config = config.clone();
        let ours = shared.clone();
        std::thread::Builder::new()
            .name("vrrp".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started.send(Err(Error::io("starting the VRRP runtime", e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match prepare(&config, &ha, &ours).await {
                        Err(e) => {
                            let _ = started.send(Err(e));
                        }
                        Ok((ns, intent, instances)) => {
                            let _ = started.send(Ok(()));
                            run(&ns, &intent, instances, &ours, shutdown).await;
                            let _ = done.send(());
                        }
                    }
                });
            })
            .map_err(|e| Error::io("starting the VRRP thread", e))?;
        on_start
            .await
            .map_err(|_| Error::State("the VRRP thread ended while starting".into()))??;
        Ok(Ha { shared, finished })
    }

    /// Waits until, after shutdown, every instance stopped (a master's priority 0
    /// sent and its source given up).
    pub async fn finished(self) {
        let _ = self.finished.await;
    }
}

/// Opens the namespace, removes a leftover source, opens each family's socket and
/// starts its machine (as backup).
async fn prepare(
    config: &RouterConfig,
    ha: &HaConfig,
    shared: &HaShared,
) -> Result<(Namespace, Intent, Vec<Instance>)> {
    let (ns, _) = Namespace::open(Netns::current()?, config.backend)?;
    let intent = Intent::router(config);
    let link = ns.nl.link(MACVLAN).await?;
    let mut instances = Vec::new();
    for pair in &config.egress {
        let family = pair.family();
        let removed = hold::release(&ns, &intent, family).await?;
        if removed > 0 {
            info!(source = %pair.source, steps = removed, "removed the source and routes a previous run left: starting as backup");
        }
        let peers: Vec<IpAddr> = ha
            .peers
            .iter()
            .copied()
            .filter(|p| Family::of(*p) == family)
            .collect();
        let primary = primary_address(&ns, link.index, pair, !peers.is_empty()).await?;
        let mut own = ns.nl.usable_configured_addresses(link.index).await?;
        own.push(pair.source.address);
        own.push(primary);
        let destinations = match peers.is_empty() {
            true => vec![group(family)],
            false => peers.iter().copied().filter(|p| !own.contains(p)).collect(),
        };
        let socket = VrrpSocket::open(&ns.netns, MACVLAN, link.index, primary, peers.is_empty())?;
        // SAFETY: the socket owns its descriptor and neither replaces nor closes it while
        // the `AsyncFd` holds it; it is closed when the `AsyncFd` drops it.
        let socket = unsafe { AsyncFd::register(socket) }
            .map_err(|e| Error::io("registering the VRRP socket", e.into_parts().1))?;
        info!(vrid = ha.vrid, %family, %primary, destinations = ?destinations, priority = ha.priority, "VRRP instance on {MACVLAN}");
        let mut instance = Instance {
            family,
            socket,
            machine: Machine::new(Instance::params(ha, primary)),
            vrid: ha.vrid,
            centis: ha.interval_centis(),
            virtual_address: pair.source.address,
            destinations,
            peers: (!peers.is_empty()).then_some(peers),
            own,
            again: None,
            applied: State::Initialize,
            failing: false,
            heard: None,
            resigned: None,
        };
        let actions = instance.machine.start(std::time::Instant::now());
        instance.act(actions, &ns, &intent, shared).await;
        instances.push(instance);
    }
    Ok((ns, intent, instances))
}

/// Fails (exit 2, nothing changed) when `config` asks for high availability with an
/// IPv4 source but `macvlan0` has no IPv4 address of the pod's own to send VRRP from;
/// init checks it before its first change (IPv6's link-local address comes with the
/// link up).
pub async fn check_own_address(ns: &Namespace, config: &RouterConfig) -> Result<()> {
    let Some(pair) = config.egress.iter().find(|p| p.family() == Family::V4) else {
        return Ok(());
    };
    let Some((link, _)) = ns.nl.find_link(MACVLAN).await? else {
        return Ok(());
    };
    let own = ns
        .nl
        .usable_configured_addresses(link.index)
        .await?
        .into_iter()
        .any(|a| a.is_ipv4() && a != pair.source.address);
    match own {
        true => Ok(()),
        false => Err(no_address(Family::V4)),
    }
}

/// The startup error of an instance with no address to send from.
fn no_address(family: Family) -> Error {
    let what = match family {
        Family::V4 => "IPv4 address of the pod's own (from IPAM) besides EGRESS_SOURCE",
        Family::V6 => "usable IPv6 link-local address",
    };
    Error::config(
        VRID,
        format!("{MACVLAN} has no {what} to send VRRP advertisements from"),
    )
}

/// The address `pair`'s instance sends from: for IPv4 an address of `macvlan0` other
/// than the source (the pod's own, from IPAM); for IPv6 its link-local address (RFC
/// 5798), or with unicast `peers` a global one of its own when it has one.
async fn primary_address(
    ns: &Namespace,
    index: u32,
    pair: &EgressPair,
    peers: bool,
) -> Result<IpAddr> {
    let started = std::time::Instant::now();
    loop {
        let addresses: Vec<IpAddr> = ns
            .nl
            .usable_configured_addresses(index)
            .await?
            .into_iter()
            .filter(|a| Family::of(*a) == pair.family() && *a != pair.source.address)
            .collect();
        let global = addresses.iter().find(|a| !is_link_local_v6(**a)).copied();
        let link_local = addresses.iter().find(|a| is_link_local_v6(**a)).copied();
        let found = match pair.family() {
            Family::V4 => global,
            Family::V6 if peers => global.or(link_local),
            Family::V6 => link_local,
        };
        match found {
            Some(address) => return Ok(address),
            None if pair.family() == Family::V6 && started.elapsed() < LINK_LOCAL_WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None => return Err(no_address(pair.family())),
        }
    }
}

/// The instances' loop until shutdown, then each one's shutdown (a master's priority
/// 0, its source given up).
async fn run(
    ns: &Namespace,
    intent: &Intent,
    mut instances: Vec<Instance>,
    shared: &HaShared,
    mut stop: Shutdown,
) {
    loop {
        let next = instances.iter().filter_map(Instance::deadline).min();
        let timer = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let readable = select_all(instances.iter().enumerate().map(|(i, instance)| {
            Box::pin(async move {
                let _ = instance.socket.readable().await;
                i
            })
        }));
        let event = tokio::select! {
            _ = shutdown::requested(&mut stop) => None,
            (i, _, _) = readable => Some(Some(i)),
            _ = timer => Some(None),
        };
        match event {
            None => break,
            Some(Some(i)) => instances[i].readable(ns, intent, shared).await,
            Some(None) => {
                for instance in &mut instances {
                    instance.due(ns, intent, shared).await;
                }
            }
        }
        let ipv4_backup = instances
            .iter()
            .any(|i| i.family == Family::V4 && i.machine.state() == State::Backup);
        for instance in &mut instances {
            instance.follow_ipv4(ipv4_backup, ns, intent, shared).await;
        }
    }
    for instance in &mut instances {
        let actions = instance.machine.shutdown();
        instance.act(actions, ns, intent, shared).await;
    }
    if instances.is_empty() {
        warn!("no VRRP instance ran");
    }
}
