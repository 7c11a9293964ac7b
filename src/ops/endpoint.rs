//! The operations endpoint: `/metrics` (Prometheus text format 0.0.4), `/healthz`
//! (the process answers) and `/readyz` (200, or 503 with one reason a line), on its
//! own listener. It keeps answering while the role drains, so that readiness says so.
//!
//! It serves the cluster side only: a connection to one of the egress interface's
//! addresses (the outside network's side) is closed unanswered. One request a
//! connection, its head within [`HEADER_TIMEOUT`]; over [`MAX_CONNECTIONS`] a new
//! connection is closed at once, so that slow clients never keep a probe waiting in
//! the backlog.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::debug;

use super::health::Health;
use super::metrics::METRICS;
use super::process;
use crate::config::address::interface_addresses;
use crate::serve::egress;

/// Connections the endpoint serves at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// A request's head must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves the endpoint on `listener` for as long as the runtime runs; with
/// `cluster_side_only`, a connection to an address of the egress interface (looked up
/// at each connection; when they cannot be listed, every connection) is closed
/// unanswered.
pub async fn serve(listener: TcpListener, health: Arc<Health>, cluster_side_only: bool) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
            debug!(%peer, "metrics endpoint: connection from the egress side closed");
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "metrics endpoint: too many connections, closed");
            continue;
        };
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(health.clone(), request));
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .half_close(true)
                .keep_alive(false)
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                debug!(%peer, %error, "metrics endpoint: connection ended with an error");
            }
            drop(slot);
        });
    }
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
