//! The DNS proxy role (SPEC section 5): TCP forwarders to fixed addresses or to host
//! names that are re-resolved while running, replacing the haproxy sidecar.
//!
//! - [`destination`]: the forwarder list (pure).
//! - [`backends`]: round-robin over a target's addresses, skipping failed ones (pure).
//! - [`answer`]: optional DNS answers that point the listed names at the router.
//! - [`config`]: the variables; [`startup`]: what each forwarder starts with;
//!   [`forward`]: one connection (pick, connect with retries, relay, one log line)
//!   and which addresses may be backends; [`status`]: readiness and backend states
//!   for the operations endpoint.
//! - this module: listeners, re-resolution, and the accept loops (one per forwarder on
//!   every worker).

pub mod answer;
pub mod backends;
pub mod config;
pub mod destination;
pub mod forward;
pub mod startup;
mod status;

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::Either;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::config::address::{self, OwnSockets};
use crate::error::{Error, Result};
use crate::ops::{
    self,
    metrics::{DNS_PROXY, METRICS},
};
use crate::serve::limits::{self, ConnectionSlots};
use crate::serve::resolver::Resolver;
use crate::serve::shutdown::{self, Shutdown};
use crate::serve::{listener, workers};

use config::{DnsProxyConfig, MAX_CONNECTIONS};
use destination::Target;
use forward::{Forward, dialable, forward_connection};
use status::DnsStatus;

/// Re-resolution happens at most this often, whatever the TTL.
pub const MIN_REFRESH: Duration = Duration::from_secs(2);
/// Re-resolution happens at least this often, whatever the TTL.
pub const MAX_REFRESH: Duration = Duration::from_secs(30);

/// How long to wait before resolving again, given the records' remaining TTL.
pub fn refresh_delay(ttl: Duration) -> Duration {
    ttl.clamp(MIN_REFRESH, MAX_REFRESH)
}

/// Runs the forwarders (and the answering server, when configured) until SIGTERM/SIGINT.
pub async fn run(config: DnsProxyConfig) -> Result<()> {
    let open_files = limits::raise_open_file_limit()?;
    let max_connections = config.max_connections.fit(MAX_CONNECTIONS, open_files)?;
    debug!(open_files, max_connections, "open-file limit");
    let mut role_ports: Vec<u16> = config.forwarders.iter().map(|f| f.port).collect();
    role_ports.extend(config.answer_address.map(|_| config.answer_port));
    let metrics_port = config.metrics.resolve(&role_ports)?.map(|(_, port)| port);
    let own = OwnSockets {
        ports: role_ports.iter().copied().chain(metrics_port).collect(),
        addresses: address::local_addresses()
            .map_err(|e| Error::io("listing this pod's addresses", e))?,
    };
    let resolver = startup::resolver(&config)?;
    let resolved = startup::first_lookups(&config, resolver.as_ref()).await;
    let mut forwards = Vec::new();
    let mut refreshes = Vec::new();
    for (forwarder, lookup) in config.forwarders.iter().zip(resolved) {
        let (backends, first_refresh) = startup::backends(&config, forwarder, lookup, &own)?;
        let forward = Arc::new(Forward {
            forwarder: forwarder.clone(),
            backends: Mutex::new(backends),
            own: own.clone(),
        });
        if let Some(delay) = first_refresh {
            refreshes.push((forward.clone(), delay));
        }
        forwards.push(forward);
    }
    let mut listeners = Vec::new();
    for forward in &forwards {
        listeners.push(listener::bind_all(
            forward.forwarder.port,
            workers::count(),
        )?);
    }
    let shutdown = shutdown::on_signals()?;
    let status = DnsStatus {
        forwards: forwards.clone(),
    };
    ops::start(config.metrics, &role_ports, status, shutdown.clone())?;
    if let Some(address) = config.answer_address {
        let names = config.forwarders.iter().filter_map(|f| match &f.target {
            Target::Name(name) => Some(name.clone()),
            Target::Address(_) => None,
        });
        answer::serve(
            names.collect(),
            address,
            config.answer_port,
            shutdown.clone(),
        )
        .await?;
    }
    if let Some(resolver) = resolver {
        for (forward, delay) in refreshes {
            tokio::spawn(refresh(forward, resolver.clone(), delay, shutdown.clone()));
        }
    }
    serve(
        listeners,
        forwards,
        Arc::new(config),
        max_connections,
        shutdown,
    )
    .await
}

/// Re-resolves the forwarder's name, following TTLs within [MIN_REFRESH, MAX_REFRESH];
/// a failed lookup keeps the last good addresses.
async fn refresh(
    forward: Arc<Forward>,
    resolver: Resolver,
    mut delay: Duration,
    mut shutdown: Shutdown,
) {
    let Target::Name(name) = &forward.forwarder.target else {
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown::requested(&mut shutdown) => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = match resolver.lookup(name).await {
            Ok(found) => {
                METRICS.resolved(name, true);
                let addresses = dialable(
                    &found.addresses,
                    forward.forwarder.target_port,
                    &forward.own,
                );
                if addresses.len() < found.addresses.len() {
                    warn!(port = forward.forwarder.port, target = %name, answer = ?found.addresses, "skipping addresses never dialed (loopback, special or this proxy's own listener)");
                }
                if forward.backends().replace(&addresses) {
                    info!(port = forward.forwarder.port, target = %name, ?addresses, "backends changed");
                }
                refresh_delay(found.valid_until.saturating_duration_since(Instant::now()))
            }
            Err(reason) => {
                METRICS.resolved(name, false);
                let kept = forward.backends().addresses();
                warn!(port = forward.forwarder.port, target = %name, %reason, ?kept, "re-resolution failed; keeping the last addresses");
                MIN_REFRESH
            }
        };
    }
}

/// Accepts on every listener until shutdown, then drains like the HTTP proxy.
/// `listeners` holds, for each forwarder, one socket per worker (see [`workers`]): each
/// worker accepts for every forwarder.
async fn serve(
    listeners: Vec<Vec<StdListener>>,
    forwards: Vec<Arc<Forward>>,
    config: Arc<DnsProxyConfig>,
    max_connections: u32,
    shutdown: Shutdown,
) -> Result<()> {
    let slots = ConnectionSlots::new(max_connections);
    for (sockets, forward) in listeners.iter().zip(&forwards) {
        if let Some(first) = sockets.first() {
            let address = first
                .local_addr()
                .map_err(|e| Error::io("reading the listening address", e))?;
            let (target, target_port) = (&forward.forwarder.target, forward.forwarder.target_port);
            info!(%address, %target, target_port, workers = sockets.len(), "dns proxy listening");
        }
    }
    let grace = config.grace_period;
    let accept = {
        let slots = slots.clone();
        let forwards = Arc::new(forwards);
        move |listeners: Vec<TcpListener>| {
            let loops = listeners.into_iter().zip(forwards.iter().cloned()).map(|(listener, forward)| {
                let (config, cut) = (config.clone(), slots.cut_notice());
                listener::accept_until_shutdown(listener, slots.clone(), shutdown.clone(), move |client, peer, slot| {
                    // Either, not an async block: a block would keep a second copy of what it
                    // captures beside the connection's future, in every connection's task.
                    let port = forward.forwarder.port;
                    match slot {
                        Some(slot) => {
                            let active = METRICS.open(DNS_PROXY, port);
                            Either::Left(forward_connection(forward.clone(), config.clone(), client, peer, (slot, active, cut.clone())))
                        }
                        None => {
                            METRICS.decided(DNS_PROXY, port, false, "connection-limit");
                            warn!(connection = peer.connection, client = %peer.address, port = forward.forwarder.port, "connection limit reached: closed");
                            Either::Right(std::future::ready(()))
                        }
                    }
                })
            });
            let loops: Vec<_> = loops.collect();
            async move {
                futures::future::join_all(loops).await;
            }
        }
    };
    workers::serve_on_every_core(by_worker(listeners), accept, slots.drain(grace)).await
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
