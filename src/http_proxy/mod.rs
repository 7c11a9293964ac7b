//! The HTTP proxy role (SPEC section 4): CONNECT tunnels and plain forward requests,
//! decided by the allow/deny list of `EGRESS_HTTP_PROXY_DESTINATION`.
//!
//! - [`rules`]: the list, parsed whole.
//! - [`policy`]: the pure decision function (with the screening of addresses never dialed).
//! - [`handler`]: one request: parse the target, then tunnel or forward.
//! - [`upstream`]: decide, resolve once, dial exactly a checked address.
//! - [`request_log`]: the decision log line, exactly one per request.
//! - [`body`]: a body wrapper that counts bytes and logs when the response is done.
//! - [`idle`]: closing client connections on which nothing moved for the idle timeout.
//! - [`config`]: the variables, read and validated; `reload`: following the list file.
//! - this module: the accept loop (connection cap, drain on shutdown).

pub mod body;
pub mod client_hello;
pub mod config;
pub mod handler;
pub mod idle;
pub mod policy;
mod reload;
pub mod request_log;
pub mod rules;
pub mod sni;
pub mod tunnel;
pub mod upstream;

use std::net::TcpListener as StdListener;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::Either;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::ops::{
    self,
    health::{self, RoleStatus},
    metrics::{Active, HTTP_PROXY, METRICS},
};
use crate::serve::limits::{self, ConnectionSlots};
use crate::serve::list_watch::{self, ListFile};
use crate::serve::listener::{self, Admission, Peer};
use crate::serve::pod_addresses::PodAddresses;
use crate::serve::resolver::Resolver;
use crate::serve::shutdown::{self, Shutdown};
use crate::serve::workers;
pub use config::{MAX_CONNECTIONS, ProxyConfig};
use policy::ListMode;
use rules::Rule;

/// What every request handler shares.
pub struct Proxy {
    /// The configuration; its `rules` are those at start, [`Proxy::rules`] the current.
    pub config: ProxyConfig,
    rules: RwLock<Arc<Vec<Rule>>>,
    /// The resolver of `/etc/resolv.conf`.
    pub resolver: Resolver,
    /// The ports the pod itself listens on (the proxy's, the metrics endpoint's):
    /// never dialed on loopback either.
    pub own_ports: Vec<u16>,
    /// The pod's addresses (never dialed) and each family's egress address
    /// (destinations are dialed from them), kept current.
    pub pod: Arc<PodAddresses>,
}

impl Proxy {
    /// A proxy deciding with `config`'s rules, dialing from the egress addresses of
    /// `pod`.
    pub fn new(
        config: ProxyConfig,
        resolver: Resolver,
        own_ports: Vec<u16>,
        pod: Arc<PodAddresses>,
    ) -> Self {
        Proxy {
            rules: RwLock::new(Arc::new(config.rules.clone())),
            config,
            resolver,
            own_ports,
            pod,
        }
    }

    /// The rules in use now (a request decides with one list from start to end).
    pub fn rules(&self) -> Arc<Vec<Rule>> {
        self.rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts `rules` in use for the requests that come next.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self
            .rules
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(rules);
    }
}

/// The HTTP proxy's readiness: the egress path is in place.
struct ProxyStatus;

#[async_trait::async_trait]
impl RoleStatus for ProxyStatus {
    async fn setup_problems(&self) -> Vec<String> {
        health::egress_problems().await
    }
}

/// Runs the proxy on its configured port until SIGTERM/SIGINT.
pub async fn run(config: ProxyConfig) -> Result<()> {
    let open_files = limits::raise_open_file_limit()?;
    let max_connections = config.max_connections.fit(MAX_CONNECTIONS, open_files)?;
    debug!(open_files, max_connections, "open-file limit");
    let listeners = listener::bind_all(config.port, workers::count())?;
    let shutdown = shutdown::on_signals()?;
    let metrics = ops::start(
        config.metrics,
        &[config.port],
        ProxyStatus,
        shutdown.clone(),
    )?;
    let own_ports = [Some(config.port), metrics].into_iter().flatten().collect();
    let resolver = Resolver::from_system()?;
    crate::serve::egress::pin(config.ha_sources.as_deref());
    let pod = PodAddresses::follow()?;
    let egress = pod.now().egress;
    info!(ipv4 = ?egress.v4, ipv6 = ?egress.v6, "egress addresses on {}", crate::setup::MACVLAN);
    let proxy = Arc::new(Proxy::new(config, resolver, own_ports, pod));
    match &proxy.config.list_file {
        Some((path, text)) => {
            let file = ListFile::watch(config::LIST.file, path.clone(), text.clone())?;
            tokio::spawn(reload::follow(
                file,
                proxy.clone(),
                text.clone(),
                shutdown.clone(),
            ));
        }
        None => list_watch::log_hangups()?,
    }
    serve(listeners, proxy, max_connections, shutdown).await
}

/// Serves connections from `listeners` (one per worker, see [`workers`]) until
/// `shutdown`, at most `max_connections` at once, then stops accepting, lets open
/// connections finish for the grace period and cuts the rest.
pub async fn serve(
    listeners: Vec<StdListener>,
    proxy: Arc<Proxy>,
    max_connections: u32,
    shutdown: Shutdown,
) -> Result<()> {
    let slots = ConnectionSlots::new(max_connections);
    let report = proxy.config.list_mode == ListMode::Report;
    METRICS.http_proxy_serving(proxy.config.port, max_connections, report);
    if let Some(first) = listeners.first() {
        let address = first
            .local_addr()
            .map_err(|e| Error::io("reading the listening address", e))?;
        info!(%address, workers = listeners.len(), rules = proxy.rules().len(), max_connections, "http proxy listening");
        if report {
            warn!(
                "EGRESS_HTTP_PROXY_MODE=report: the list is not enforced; what it would deny is let through and logged as outcome=reported"
            );
        }
    }
    let grace = proxy.config.grace_period;
    let accept = {
        let slots = slots.clone();
        move |_worker: usize, listeners: Vec<TcpListener>| {
            let (proxy, slots, shutdown) = (proxy.clone(), slots.clone(), shutdown.clone());
            let loops = listeners.into_iter().map(move |listener| {
                accept_until_shutdown(listener, proxy.clone(), slots.clone(), shutdown.clone())
            });
            async move {
                futures::future::join_all(loops).await;
            }
        }
    };
    let per_worker = listeners.into_iter().map(|l| vec![l]).collect();
    workers::serve_on_every_core(per_worker, accept, slots.drain(grace)).await
}

/// One worker's accept loop: each connection on a task of its own.
async fn accept_until_shutdown(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    slots: ConnectionSlots,
    shutdown: Shutdown,
) {
    listener::accept_until_shutdown(
        listener,
        slots.clone(),
        proxy.pod.clone(),
        shutdown.clone(),
        // Either, not an async block: a block would keep a second copy of what it
        // captures beside the connection's future, in every connection's task.
        |stream, peer, admission| match admission {
            Admission::Slot(permit) => {
                let slot = Slot {
                    _permit: permit,
                    _active: METRICS.open(HTTP_PROXY, proxy.config.port),
                    cut: slots.cut_notice(),
                };
                Either::Left(serve_connection(
                    proxy.clone(),
                    stream,
                    peer,
                    slot,
                    shutdown.clone(),
                ))
            }
            Admission::Busy => {
                METRICS.decided(HTTP_PROXY, proxy.config.port, false, "connection-limit");
                Either::Right(refuse(stream, peer, true))
            }
            Admission::EgressSide => {
                METRICS.decided(HTTP_PROXY, proxy.config.port, false, "egress-side");
                Either::Right(refuse(stream, peer, false))
            }
        },
    )
    .await;
}

/// A connection's share of the cap, and the notice that cuts it after the grace period.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _active: Active,
    /// Turns `true` when the grace period is over.
    pub cut: Shutdown,
}

async fn serve_connection(
    proxy: Arc<Proxy>,
    stream: TcpStream,
    peer: Peer,
    slot: Slot,
    mut shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    let mut cut = slot.cut.clone();
    let slot = Arc::new(slot);
    let config = &proxy.config;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .half_close(true)
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.max_header_bytes);
    let service = {
        let proxy = proxy.clone();
        service_fn(move |request| handler::handle(proxy.clone(), peer, slot.clone(), request))
    };
    let stream = idle::Watched::new(stream);
    let activity = stream.activity();
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = activity.idle_for(config.idle_timeout) => {
            debug!(connection = peer.connection, client = %peer.address, "client connection idle, closed");
            return;
        }
        _ = shutdown::requested(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection.as_mut() => result,
                // Dropping the connection drops its requests: each writes its log line.
                _ = shutdown::requested(&mut cut) => return,
            }
        }
    };
    if let Err(e) = result {
        debug!(connection = peer.connection, client = %peer.address, error = %e, "client connection ended with an error");
    }
}

/// The body of the 503 sent to connections over the cap.
pub const BUSY_BODY: &str = "egress-router: too many connections, try again later\n";

/// Closes a refused connection without reading the request: one over the cap (`busy`)
/// after a 503; one from the egress side at once.
async fn refuse(mut stream: TcpStream, peer: Peer, busy: bool) {
    if !busy {
        return;
    }
    warn!(connection = peer.connection, client = %peer.address, "connection limit reached: 503");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(response.as_bytes()),
    )
    .await;
}
