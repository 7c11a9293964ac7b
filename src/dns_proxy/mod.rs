//! The DNS proxy role (SPEC section 5): TCP forwarders to fixed addresses or to host
//! names that are re-resolved while running, replacing the haproxy sidecar.
//!
//! - [`destination`]: the forwarder list (pure).
//! - [`backends`]: round-robin over a target's addresses, skipping failed ones (pure).
//! - [`answer`]: optional DNS answers that point the listed names at the router.
//! - [`config`]: the variables; [`startup`]: what each forwarder starts with;
//!   [`forward`]: one connection (pick, connect with retries, relay, one log line);
//!   [`reach`]: which addresses may be backends; `refresh`: following a name's
//!   addresses.
//! - `live`: the ports in service and what a new list changes (the plan is pure);
//!   `reload`: applying a new list file; `status`: readiness and backend states.
//! - this module: listeners and the accept loops (each worker accepts on every port,
//!   and takes the listeners of ports a reload adds).

pub mod answer;
pub mod backends;
pub mod config;
pub mod destination;
pub mod forward;
mod live;
pub mod reach;
mod refresh;
mod reload;
pub mod startup;
mod status;

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::future::Either;
use futures::stream::FuturesUnordered;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::ops::{
    self,
    metrics::{DNS_PROXY, METRICS},
};
use crate::serve::limits::{self, ConnectionSlots};
use crate::serve::list_watch::{self, ListFile};
use crate::serve::listener::Admission;
use crate::serve::pod_addresses::PodAddresses;
use crate::serve::shutdown::{self, Shutdown, requested};
use crate::serve::{listener, workers};

use config::{DnsProxyConfig, MAX_CONNECTIONS};
use forward::forward_connection;
use live::Slot;
use reload::{Added, Reloader};
use status::DnsStatus;

/// Re-resolution happens at most this often, whatever the TTL.
pub const MIN_REFRESH: Duration = Duration::from_secs(2);
/// Re-resolution happens at least this often, whatever the TTL.
pub const MAX_REFRESH: Duration = Duration::from_secs(30);

/// How long to wait before resolving again, given the records' remaining TTL.
pub fn refresh_delay(ttl: Duration) -> Duration {
    ttl.clamp(MIN_REFRESH, MAX_REFRESH)
}

/// Runs the forwarders (and the answering server, when configured) until SIGTERM/SIGINT;
/// with a list file, follows it.
pub async fn run(config: DnsProxyConfig) -> Result<()> {
    let config = Arc::new(config);
    let open_files = limits::raise_open_file_limit()?;
    let max_connections = config.max_connections.fit(MAX_CONNECTIONS, open_files)?;
    debug!(open_files, max_connections, "open-file limit");
    let mut role_ports: Vec<u16> = config.forwarders.iter().map(|f| f.port).collect();
    role_ports.extend(config.answer_address.map(|_| config.answer_port));
    let metrics_port = config.metrics.resolve(&role_ports)?.map(|(_, port)| port);
    let fixed_ports: Vec<u16> = role_ports[config.forwarders.len()..]
        .iter()
        .copied()
        .chain(metrics_port)
        .collect();
    crate::serve::egress::pin(config.ha_sources.as_deref());
    let pod = PodAddresses::follow()?;
    let egress = pod.now().egress;
    info!(ipv4 = ?egress.v4, ipv6 = ?egress.v6, "egress addresses on {}", crate::setup::MACVLAN);
    let reloader = Reloader::new(config.clone(), fixed_ports, pod);
    let reach = reloader.reach(&config.forwarders);
    let forwards = reloader.build(&config.forwarders, &reach).await?;
    let resolver = reloader.resolver().await;
    let mut listeners = Vec::new();
    for forwarder in &config.forwarders {
        listeners.push(listener::bind_all(forwarder.port, workers::count())?);
    }
    let list_file = match &config.list_file {
        Some((path, text)) => Some((
            ListFile::watch(config::LIST.file, path.clone(), text.clone())?,
            text.clone(),
        )),
        None => None,
    };
    let shutdown = shutdown::on_signals()?;
    let live = reloader.live.clone();
    let mut ports = Vec::new();
    for (forward, first_refresh) in forwards {
        let started = live.start(forward.clone());
        reload::follow_name(resolver.as_ref(), forward, first_refresh, started.resolving);
        ports.push((started.slot, started.listening));
    }
    ops::start(
        config.metrics,
        &role_ports,
        DnsStatus { live: live.clone() },
        shutdown.clone(),
    )?;
    let mut answered = None;
    if let Some(address) = config.answer_address {
        let names: answer::Names = Arc::new(RwLock::new(answer::names_of(&config.forwarders)));
        answer::serve(names.clone(), address, config.answer_port, shutdown.clone()).await?;
        answered = Some(names);
    }
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers::count())
        .map(|_| mpsc::unbounded_channel())
        .unzip();
    let reloader = Arc::new(reloader.with_workers(senders, answered));
    match list_file {
        Some((file, initial)) => {
            tokio::spawn(reloader.follow(file, initial, shutdown.clone()));
        }
        None => list_watch::log_hangups()?,
    }
    tokio::spawn(stop_on_shutdown(live, shutdown.clone()));
    serve(
        listeners,
        ports,
        receivers,
        config,
        max_connections,
        shutdown,
    )
    .await
}

/// Stops every port's accept loops and re-resolution once shutdown is requested.
async fn stop_on_shutdown(live: Arc<live::Live>, mut shutdown: Shutdown) {
    requested(&mut shutdown).await;
    live.stop_all();
}

/// Accepts on every listener until shutdown, then drains like the HTTP proxy.
/// `listeners` holds, for each port of `ports`, one socket per worker (see [`workers`]):
/// each worker accepts for every port, and for each port a reload sends it.
async fn serve(
    listeners: Vec<Vec<StdListener>>,
    ports: Vec<(Arc<Slot>, Shutdown)>,
    added: Vec<mpsc::UnboundedReceiver<Added>>,
    config: Arc<DnsProxyConfig>,
    max_connections: u32,
    shutdown: Shutdown,
) -> Result<()> {
    let slots = ConnectionSlots::new(max_connections);
    METRICS.connection_cap(DNS_PROXY, max_connections);
    for (sockets, (slot, _)) in listeners.iter().zip(&ports) {
        if let Some(first) = sockets.first() {
            let address = first
                .local_addr()
                .map_err(|e| Error::io("reading the listening address", e))?;
            let forward = slot.current();
            let (target, target_port) = (&forward.forwarder.target, forward.forwarder.target_port);
            info!(%address, %target, target_port, workers = sockets.len(), "dns proxy listening");
        }
    }
    let grace = config.grace_period;
    let added = Arc::new(Mutex::new(added.into_iter().map(Some).collect::<Vec<_>>()));
    let accept = {
        let slots = slots.clone();
        move |worker: usize, listeners: Vec<TcpListener>| {
            let initial = listeners.into_iter().zip(ports.iter().cloned());
            let initial: Vec<_> = initial.map(|(l, (slot, stop))| (l, slot, stop)).collect();
            let added = added
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(worker)
                .and_then(Option::take);
            let context = (slots.clone(), config.clone());
            worker_loop(initial, added, context, shutdown.clone())
        }
    };
    workers::serve_on_every_core(by_worker(listeners), accept, slots.drain(grace)).await
}

/// One worker: an accept loop per port, more as reloads add ports, until shutdown; then
/// waits for its loops to end (each port's notice turns at shutdown too).
async fn worker_loop(
    initial: Vec<(TcpListener, Arc<Slot>, Shutdown)>,
    added: Option<mpsc::UnboundedReceiver<Added>>,
    (slots, config): (ConnectionSlots, Arc<DnsProxyConfig>),
    mut shutdown: Shutdown,
) {
    let mut loops = FuturesUnordered::new();
    for (listener, slot, stop) in initial {
        loops.push(accept_port(
            listener,
            slot,
            stop,
            slots.clone(),
            config.clone(),
        ));
    }
    let mut added = added;
    loop {
        tokio::select! {
            _ = requested(&mut shutdown) => break,
            Some(port) = async { added.as_mut()?.recv().await } => {
                match TcpListener::from_std(port.listener) {
                    Ok(listener) => loops.push(accept_port(listener, port.slot, port.stop, slots.clone(), config.clone())),
                    Err(error) => warn!(%error, "registering a new listening socket"),
                }
            }
            Some(()) = loops.next(), if !loops.is_empty() => {}
        }
    }
    while loops.next().await.is_some() {}
}

/// Accepts on one port until its notice `stop` turns (the port was removed, or the
/// proxy stops); each connection goes to the forward in `slot` at that moment.
async fn accept_port(
    listener: TcpListener,
    slot: Arc<Slot>,
    stop: Shutdown,
    slots: ConnectionSlots,
    config: Arc<DnsProxyConfig>,
) {
    let cut = slots.cut_notice();
    let pod = slot.current().reach.pod.clone();
    listener::accept_until_shutdown(listener, slots, pod, stop, move |client, peer, admission| {
        let forward = slot.current();
        let port = forward.forwarder.port;
        // Either, not an async block: a block would keep a second copy of what it
        // captures beside the connection's future, in every connection's task.
        match admission {
            Admission::Slot(permit) => {
                let active = forward.series.open();
                let held = (permit, active, cut.clone());
                Either::Left(forward_connection(forward, config.clone(), client, peer, held))
            }
            Admission::Busy => {
                METRICS.decided(DNS_PROXY, port, false, "connection-limit");
                warn!(connection = peer.connection, client = %peer.address, port, "connection limit reached: closed");
                Either::Right(std::future::ready(()))
            }
            Admission::EgressSide => {
                METRICS.decided(DNS_PROXY, port, false, "egress-side");
                Either::Right(std::future::ready(()))
            }
        }
    })
    .await;
}

/// Regroups sockets from per forwarder (each with one per worker) to per worker (each
/// with one per forwarder, in the forwarders' order).
fn by_worker<T>(per_forwarder: Vec<Vec<T>>) -> Vec<Vec<T>> {
    let mut per_worker: Vec<Vec<T>> = Vec::new();
    for sockets in per_forwarder {
        for (worker, socket) in sockets.into_iter().enumerate() {
            if per_worker.len() <= worker {
                per_worker.push(Vec::new());
            }
            per_worker[worker].push(socket);
        }
    }
    per_worker
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_gets_one_socket_of_every_forwarder() {
        let per_forwarder = vec![vec!["a0", "a1"], vec!["b0", "b1"], vec!["c0", "c1"]];
        assert_eq!(
            by_worker(per_forwarder),
            vec![vec!["a0", "b0", "c0"], vec!["a1", "b1", "c1"]]
        );
    }

    #[test]
    fn refresh_follows_the_ttl_within_bounds() {
        assert_eq!(refresh_delay(Duration::ZERO), MIN_REFRESH);
        assert_eq!(
            refresh_delay(Duration::from_secs(7)),
            Duration::from_secs(7)
        );
        assert_eq!(refresh_delay(Duration::from_secs(3600)), MAX_REFRESH);
    }
}
