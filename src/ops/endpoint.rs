//! The operations endpoint: `/metrics` (Prometheus text format 0.0.4), `/healthz`
//! (the process answers) and `/readyz` (200, or 503 with one reason a line), on its
//! own listener. It keeps answering while the role drains, so that readiness says so.
//!
//! It serves the cluster side only: a connection to one of the egress interface's
//! addresses (the outside network's side) is closed unanswered. One request a
//! connection, its head within [`HEADER_TIMEOUT`]. Connections hold [`slots`]: at most
//! [`MAX_CONNECTIONS`], [`MAX_PER_SOURCE`] of one source, and a new connection over
//! either cap displaces the oldest one still waiting for its request, so that idle or
//! slow clients never keep a probe out, nor waiting in the backlog.

mod slots;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::health::Health;
use super::metrics::METRICS;
use super::process;
use crate::config::address::interface_addresses;
use crate::serve::egress;
use slots::{Admission, MAX_CONNECTIONS, MAX_PER_SOURCE, Shed, Slots};

/// A request's head must arrive within this of the connection's start.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// The `reason` of a connection whose request head did not come within [`HEADER_TIMEOUT`].
const HEAD_TIMEOUT: &str = "head-timeout";

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The slots, each with the sender that closes its connection.
type Table = Arc<Mutex<Slots<oneshot::Sender<()>>>>;

/// The shed reason of a connection made to an address of the egress interface.
const EGRESS_SIDE: &str = "egress-side";

/// `reason`: why the endpoint closed a connection unanswered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    reason: &'static str,
}

/// Connections closed unanswered, by reason (`endpoint_connections_shed_total`).
static SHED: LazyLock<Family<ShedLabels, Counter>> = LazyLock::new(Family::default);

fn shed(reason: &'static str) {
    SHED.get_or_create(&ShedLabels { reason }).inc();
}

fn lock(table: &Table) -> MutexGuard<'_, Slots<oneshot::Sender<()>>> {
    table.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves the endpoint on `listener` for as long as the runtime runs; with
/// `cluster_side_only`, a connection to an address of the egress interface (looked up
/// at each connection; when they cannot be listed, every connection) is closed
/// unanswered.
pub async fn serve(listener: TcpListener, health: Arc<Health>, cluster_side_only: bool) {
    let table: Table = Arc::new(Mutex::new(Slots::new(MAX_CONNECTIONS, MAX_PER_SOURCE)));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%error, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if cluster_side_only && !on_cluster_side(&stream) {
            warn!(%peer, "metrics endpoint: refused a connection made to an address of the egress interface (from the outside network)");
            shed(EGRESS_SIDE);
            continue;
        }
        let (close, closed) = oneshot::channel();
        let admission = lock(&table).admit(peer.ip(), close, std::time::Instant::now());
        let id = match admission {
            Admission::Admitted { id, evicted } => {
                if let Some((close, why)) = evicted {
                    let _ = close.send(());
                    shed(why.label());
                }
                id
            }
            Admission::Refused(why) => {
                debug!(%peer, reason = why.label(), "metrics endpoint: no slot, closed");
                shed(why.label());
                continue;
            }
        };
        tokio::spawn(connection(
            stream,
            peer,
            Held(table.clone(), id),
            closed,
            health.clone(),
        ));
    }
}

/// A connection's slot, freed when the connection ends.
struct Held(Table, u64);

impl Drop for Held {
    fn drop(&mut self) {
        lock(&self.0).release(self.1);
    }
}

/// Serves one connection until it ends or is displaced (`closed`).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Held,
    closed: oneshot::Receiver<()>,
    health: Arc<Health>,
) {
    let (table, id) = (slot.0.clone(), slot.1);
    let service = service_fn(move |request| {
        lock(&table).answering(id);
        answer(health.clone(), request)
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .half_close(true)
        .keep_alive(false)
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        served = served => match served {
            Err(error) if error.is_timeout() => shed(HEAD_TIMEOUT),
            Err(error) => debug!(%peer, %error, "metrics endpoint: connection ended with an error"),
            Ok(()) => {}
        },
        _ = closed => debug!(%peer, "metrics endpoint: waiting connection displaced by a newer one"),
    }
    drop(slot);
}

/// Registers the endpoint's own counter in `registry`.
fn register(registry: &mut Registry) {
    let reasons = Shed::ALL.iter().map(|why| why.label()).chain([EGRESS_SIDE]);
    for reason in reasons.chain([HEAD_TIMEOUT]) {
        drop(SHED.get_or_create(&ShedLabels { reason }));
    }
    registry.register(
        "endpoint_connections_shed",
        "Operations endpoint: connections closed unanswered, by reason (source-evicted, evicted: a waiting one displaced by a newer; source-refused, refused: no slot; head-timeout: no request in time)",
        SHED.clone(),
    );
}

async fn answer(
    health: Arc<Health>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET or HEAD only\n".into(),
        ));
    }
    Ok(match request.uri().path() {
        "/metrics" => {
            let mut registry = Registry::with_prefix("egress_router");
            METRICS.register(&mut registry);
            process::register(&mut registry);
            register(&mut registry);
            health.collect(&mut registry).await;
            let mut body = String::new();
            match prometheus_text::encode(&mut body, &registry) {
                Ok(()) => {
                    let mut response = text(StatusCode::OK, body);
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static(CONTENT_TYPE),
                    );
                    response
                }
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "encoding failed\n".into(),
                ),
            }
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => {
            let problems = health.problems().await;
            if problems.is_empty() {
                text(StatusCode::OK, "ready\n".into())
            } else {
                let lines: String = problems.iter().map(|p| format!("{p}\n")).collect();
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready:\n{lines}"),
                )
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "/metrics, /healthz or /readyz\n".into(),
        ),
    })
}

/// Whether `stream` was made to an address that is not the egress interface's (fails
/// closed when the addresses cannot be read).
fn on_cluster_side(stream: &tokio::net::TcpStream) -> bool {
    match (stream.local_addr(), interface_addresses()) {
        (Ok(local), Ok(addresses)) => !egress::on_egress_side(local.ip(), &addresses),
        _ => false,
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
