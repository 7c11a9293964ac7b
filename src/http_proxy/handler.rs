//! One proxied request: parse the target, open a checked upstream connection
//! ([`super::upstream`]), then tunnel (CONNECT) or forward (absolute-form). Every
//! request ends in exactly one `decision` log line ([`super::request_log`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::Counted;
use super::idle::Watched;
use super::policy::Host;
use super::request_log::RequestLog;
use super::sni;
use super::tunnel::{Judge, Tunnel};
use super::upstream::{self, Refusal};
use super::{Proxy, Slot};
use crate::ops::metrics::{HTTP_PROXY, METRICS};
use crate::serve::listener::Peer;
use crate::serve::relay::{RelayEnd, Transfer};

/// The body type of every response the proxy sends.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Handles one request from `client`; `slot` is the connection's share of the cap and
/// is kept by a tunnel for as long as it lives.
pub async fn handle(
    proxy: Arc<Proxy>,
    client: Peer,
    slot: Arc<Slot>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let uri = request.uri();
    if uri.authority().is_none() && uri.path() == HEALTH_PATH && request.method() == Method::GET {
        return Ok(health());
    }
    let mut log = RequestLog::new(
        client,
        proxy.config.port,
        request.method().clone(),
        uri.to_string(),
    );
    let result = if request.method() == Method::CONNECT {
        connect(&proxy, request, &mut log, slot).await
    } else {
        forward(&proxy, request, &mut log).await
    };
    Ok(result.unwrap_or_else(|refusal| respond(refusal, log)))
}

/// The error response for `refusal`, after writing its decision line.
fn respond(refusal: Refusal, log: RequestLog) -> Response<ProxyBody> {
    let outcome = match refusal.status {
        StatusCode::FORBIDDEN => "denied",
        StatusCode::BAD_REQUEST => {
            METRICS.decided(HTTP_PROXY, log.listener(), false, "bad-request");
            "rejected"
        }
        _ => "failed",
    };
    log.write(
        outcome,
        refusal.status,
        Transfer::default(),
        &refusal.reason,
    );
    let word = if outcome == "denied" {
        "denied"
    } else {
        "error"
    };
    let body = format!("egress-router: {word}: {}\n", refusal.reason);
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = refusal.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if refusal.status == StatusCode::BAD_REQUEST {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn connect(
    proxy: &Proxy,
    request: Request<Incoming>,
    log: &mut RequestLog,
    slot: Arc<Slot>,
) -> Result<Response<ProxyBody>, Refusal> {
    let authority = request
        .uri()
        .authority()
        .ok_or_else(|| Refusal::new(StatusCode::BAD_REQUEST, "CONNECT needs host:port"))?;
    let host = parse_host(authority)?;
    let port = authority
        .port_u16()
        .ok_or_else(|| Refusal::new(StatusCode::BAD_REQUEST, "CONNECT needs host:port"))?;
    log.target = format!("{host}:{port}");
    let (upstream, allowed_by) = upstream::open(proxy, &host, port, log).await?;
    let idle = proxy.config.idle_timeout;
    let judge = allowed_by
        .filter(|allowed| sni::judged(proxy.config.tls_sni, allowed.rule(), &host))
        .map(|allowed| Judge {
            rules: allowed.rules,
            port,
            mode: proxy.config.list_mode,
        });
    let log = log.hand_off();
    tokio::spawn(async move {
        let mut cut = slot.cut.clone();
        let client = match hyper::upgrade::on(request).await {
            Ok(upgraded) => upgraded
                .downcast::<TokioIo<Watched<TcpStream>>>()
                .map_err(|_| std::io::Error::other("upgraded connection is not TCP")),
            Err(e) => Err(std::io::Error::other(e)),
        };
        match client {
            Ok(hyper::upgrade::Parts { io, read_buf, .. }) => {
                // The read-ahead bytes pin hyper's whole read buffer: copy them out.
                let first = read_buf.to_vec();
                drop(read_buf);
                let client = io.into_inner().into_inner();
                let tunnel = Tunnel {
                    client,
                    first,
                    upstream,
                    idle,
                    judge,
                };
                tunnel.run(log, &mut cut).await;
            }
            Err(e) => log.write(
                "allowed",
                StatusCode::OK,
                Transfer::default(),
                &RelayEnd::Failed(e).describe("tunnel", idle),
            ),
        }
        drop(slot);
    });
    Ok(Response::new(full(Bytes::new())))
}

async fn forward(
    proxy: &Proxy,
    mut request: Request<Incoming>,
    log: &mut RequestLog,
) -> Result<Response<ProxyBody>, Refusal> {
    let uri = request.uri().clone();
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "not a proxy request: expected an absolute URL (http://host/path) or CONNECT",
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("cannot forward {scheme}:// URLs; use CONNECT for TLS"),
        ));
    }
    let host = parse_host(authority)?;
    let port = authority.port_u16().unwrap_or(80);
    log.target = format!("{host}:{port}");
    let (upstream, _) = upstream::open(proxy, &host, port, log).await?;

    let origin_form = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = Uri::try_from(origin_form).unwrap_or_else(|_| Uri::from_static("/"));
    remove_hop_by_hop(request.headers_mut());
    // RFC 9112 3.2.2: a proxy replaces Host with the authority of the target URI.
    let host_value = match authority.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let host_value = HeaderValue::from_str(&host_value)
        .map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "invalid authority"))?;
    request.headers_mut().insert(header::HOST, host_value);

    exchange(upstream, request, log).await
}

/// Sends the rewritten `request` on `upstream` and answers with the response, whose
/// body counts the bytes and writes the decision line when it ends.
async fn exchange(
    upstream: TcpStream,
    request: Request<Incoming>,
    log: &mut RequestLog,
) -> Result<Response<ProxyBody>, Refusal> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(upstream))
        .await
        .map_err(|e| {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                format!("{} handshake: {e}", log.target),
            )
        })?;
    tokio::spawn(connection);
    let up = Arc::new(AtomicU64::new(0));
    let request = request.map(|body| Counted::new(body, up.clone()));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Refusal::new(StatusCode::BAD_GATEWAY, format!("{}: {e}", log.target)))?;

    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    let status = parts.status;
    let down = Arc::new(AtomicU64::new(0));
    let log = log.hand_off();
    let counted = Counted::new(body, down.clone()).on_done(move |complete| {
        let load = |c: &AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let transfer = Transfer {
            up: load(&up),
            down: load(&down),
        };
        let detail = if complete {
            "forwarded"
        } else {
            "forwarded; the response was cut before its end"
        };
        log.write("allowed", status, transfer, detail);
    });
    Ok(Response::from_parts(parts, counted.boxed()))
}

/// Origin-form path answered by the proxy itself, for liveness and readiness probes.
pub const HEALTH_PATH: &str = "/healthz";

fn health() -> Response<ProxyBody> {
    Response::new(full(Bytes::from_static(b"ok\n")))
}

/// A complete body the proxy makes itself.
fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// The host of a request target; 400 when it carries userinfo (`user:password@`,
/// refused rather than passed on) or is neither a valid name nor an IP literal.
fn parse_host(authority: &http::uri::Authority) -> Result<Host, Refusal> {
    if authority.as_str().contains('@') {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "userinfo (user:password@) in the request target is not accepted",
        ));
    }
    let host = authority.host();
    Host::parse(host).ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("{host:?} is not a valid host"),
        )
    })
}

/// Removes the headers that belong to one hop (RFC 9110 section 7.6.1), including
/// those the Connection header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_lists_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("host", "web.example.com"),
            ("accept", "*/*"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        remove_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, vec!["accept", "host"]);
    }
}
