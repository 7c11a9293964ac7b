//! One forwarded connection: pick a backend (up to [`MAX_TRIES`] attempts, each judged
//! again by [`Reach`] just before it is dialed), relay, and one access-log line, also
//! when the connection is cut at the end of the grace period.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::backends::Backends;
use super::config::DnsProxyConfig;
use super::destination::Forwarder;
use super::reach::Reach;
use crate::ops::metrics::{Active, DNS_PROXY, ListenerSeries, METRICS, UpstreamError};
use crate::serve::access_log::{self, Line};
use crate::serve::egress;
use crate::serve::listener::Peer;
use crate::serve::relay::{self, Counters, Transfer};
use crate::serve::shutdown::{Shutdown, requested};

/// Connect attempts per client connection, each to a different backend when there are several.
pub const MAX_TRIES: usize = 3;

/// A forwarder at run time: its line, its current backends, the proxy's own
/// listeners (never a backend), and its port's metrics.
pub(super) struct Forward {
    pub(super) forwarder: Forwarder,
    pub(super) backends: Mutex<Backends>,
    pub(super) reach: Reach,
    pub(super) series: ListenerSeries,
}

impl Forward {
    /// A forward of `forwarder` to `backends`, which may dial what `reach` allows.
    pub(super) fn new(forwarder: Forwarder, backends: Backends, reach: Reach) -> Arc<Self> {
        Arc::new(Forward {
            series: METRICS.listener(DNS_PROXY, forwarder.port),
            forwarder,
            backends: Mutex::new(backends),
            reach,
        })
    }

    pub(super) fn backends(&self) -> std::sync::MutexGuard<'_, Backends> {
        self.backends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Connects to a backend (up to [`MAX_TRIES`] attempts), relays, and logs one line,
/// also when the connection is cut at the end of the grace period.
pub(super) async fn forward_connection(
    forward: Arc<Forward>,
    config: Arc<DnsProxyConfig>,
    client: TcpStream,
    peer: Peer,
    (_slot, _active, mut cut): (OwnedSemaphorePermit, Active, Shutdown),
) {
    let started = Instant::now();
    let port = forward.forwarder.target_port;
    let target = forward.forwarder.target.to_string();
    let log = |outcome: &str, backend: Option<&str>, transfer: Transfer, detail: &str| {
        access_log::write(&Line {
            kind: "connection",
            client: peer,
            listener: Some(forward.forwarder.port),
            method: None,
            target: &target,
            rule: None,
            backend,
            outcome,
            status: None,
            transfer,
            duration: started.elapsed(),
            detail,
        });
    };
    let attempt = tokio::select! {
        attempt = connect_backend(&forward, config.connect_timeout) => attempt,
        _ = requested(&mut cut) => Err(vec!["cut at the end of the shutdown grace period while connecting".into()]),
    };
    let (address, upstream, failures) = match attempt {
        Ok(connected) => connected,
        Err(failures) => {
            forward.series.not_forwarded(failures.is_empty());
            let detail = if failures.is_empty() {
                "no backend address".to_string()
            } else {
                failures.join("; ")
            };
            log("failed", None, Transfer::default(), &detail);
            return;
        }
    };
    forward.series.forwarded();
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let counters = Counters::default();
    let end = relay::relay(client, upstream, config.idle_timeout, &counters, &mut cut).await;
    let transfer = counters.transfer();
    forward.series.transferred(transfer.up, transfer.down);
    let mut detail = end.describe("connection", config.idle_timeout);
    if !failures.is_empty() {
        detail = format!("{detail}; skipped {}", failures.join("; "));
    }
    let backend = format!("{address}:{port}");
    log("forwarded", Some(&backend), transfer, &detail);
}

/// A connected backend and the failures of the attempts before it; or every failure.
type Attempt = std::result::Result<(IpAddr, TcpStream, Vec<String>), Vec<String>>;

/// Tries up to [`MAX_TRIES`] backends, marking each up or down.
async fn connect_backend(forward: &Forward, timeout: Duration) -> Attempt {
    let port = forward.forwarder.target_port;
    let mut tried = Vec::new();
    let mut failures = Vec::new();
    while tried.len() < MAX_TRIES {
        let Some(address) = forward.backends().pick(Instant::now(), &tried) else {
            break;
        };
        tried.push(address);
        let started = Instant::now();
        let route = match forward.reach.route(address, port) {
            Ok(route) => route,
            Err(reason) => {
                // Judged again at each dial: the pod's addresses may have changed.
                forward.series.upstream_failed(UpstreamError::Other);
                failures.push(format!("{address}:{port}: {reason}"));
                continue;
            }
        };
        let connecting = egress::connect(SocketAddr::new(address, port), route);
        match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(stream)) => {
                forward.series.connected(started.elapsed());
                forward.backends().mark_up(address);
                return Ok((address, stream, failures));
            }
            Ok(Err(e)) => {
                forward.series.upstream_failed(UpstreamError::of(&e));
                failures.push(format!("{address}:{port}: {e}"));
            }
            Err(_) => {
                forward.series.upstream_failed(UpstreamError::Timeout);
                failures.push(format!(
                    "{address}:{port}: no connection within {timeout:?}"
                ));
            }
        }
        forward.backends().mark_down(address, Instant::now());
    }
    Err(failures)
}
