//! One forwarded connection: pick a backend (up to [`MAX_TRIES`] attempts), relay, and
//! one access-log line, also when the connection is cut at the end of the grace
//! period; and which resolved addresses may be backends at all.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::backends::Backends;
use super::config::DnsProxyConfig;
use super::destination::Forwarder;
use crate::config::address::{self, Class, OwnSockets};
use crate::ops::metrics::{Active, DNS_PROXY, ListenerSeries, METRICS, UpstreamError};
use crate::serve::access_log::{self, Line};
use crate::serve::egress::{self, EgressSources};
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

/// The addresses of `found` that may be backends for `target_port`, canonical: none
/// that is never dialed, loopback, or one of the proxy's own listeners (a DNS answer
/// must not turn the forwarder onto the pod itself).
pub fn dialable(found: &[IpAddr], target_port: u16, reach: &Reach) -> Vec<IpAddr> {
    found
        .iter()
        .map(|a| address::canonical(*a))
        .filter(|a| {
            !matches!(address::class(*a), Class::Never(_))
                && !a.is_loopback()
                && !reach.own.contains(*a, target_port)
                && reach.egress.route(*a).is_ok()
        })
        .collect()
}

/// What the forwarders may dial: not the proxy's own listeners, and only addresses of
/// a family that has an egress address (SPEC section 10).
#[derive(Debug, Clone)]
pub struct Reach {
    /// The proxy's own listeners.
    pub own: OwnSockets,
    /// The egress address of each family.
    pub egress: EgressSources,
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
        let route = match forward.reach.egress.route(address) {
            Ok(route) => route,
            Err(reason) => {
                // Backends are dialable ones; one that is not is never dialed.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_that_point_at_the_pod_itself_are_no_backends() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let own = OwnSockets {
            ports: vec![5432],
            addresses: vec![ip("192.0.2.70")],
        };
        let reach = Reach {
            own,
            egress: EgressSources {
                v4: Some("198.51.100.99".parse().unwrap()),
                v6: None,
            },
        };
        let found = [
            "203.0.113.5",
            "::ffff:203.0.113.6",
            "0.0.0.0",
            "127.0.0.1",
            "::1",
            "224.0.0.1",
            "192.0.2.70",
            "2002:cb00:7105::1",
            "2001:db8:2::5",
        ]
        .map(ip);
        assert_eq!(
            dialable(&found, 5432, &reach),
            vec![ip("203.0.113.5"), ip("203.0.113.6")],
            "nor an IPv6 address without an IPv6 egress address"
        );
        assert_eq!(
            dialable(&[ip("192.0.2.70")], 80, &reach),
            vec![ip("192.0.2.70")],
            "another port of the pod is not the proxy"
        );
    }
}
