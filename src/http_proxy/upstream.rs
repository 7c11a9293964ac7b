//! From a parsed target to a connected socket: decide, resolve only when the decision
//! needs it, and dial exactly one of the addresses that were checked.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::net::TcpStream;

use super::Proxy;
use super::policy::{self, Decision, Host};
use super::request_log::RequestLog;
use super::rules::Rule;
use crate::config::address::OwnSockets;
use crate::ops::metrics::{HTTP_PROXY, METRICS, UpstreamError};
use crate::serve::egress::{self, EgressSources, Route};
use crate::serve::resolver::Families;

/// Why a request gets an error response instead of being proxied.
#[derive(Debug)]
pub struct Refusal {
    /// The status sent.
    pub status: StatusCode,
    /// A short reason, for the body and the log.
    pub reason: String,
}

impl Refusal {
    /// A refusal with `status`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }
}

/// The list a connection was allowed by, and which of its rules allowed it.
pub struct AllowedBy {
    /// The list (as it was when the request was decided).
    pub rules: Arc<Vec<Rule>>,
    /// Index of the allowing rule.
    pub rule: usize,
}

impl AllowedBy {
    /// The allowing rule.
    pub fn rule(&self) -> &Rule {
        &self.rules[self.rule]
    }
}

/// Decides on `host`:`port` (in the configured list mode), resolving it only when the
/// decision needs its addresses, and connects to one of the addresses that were
/// checked; returns the connection and what allowed it (nothing when report mode let
/// through what the list denies). Records the deciding rule in `log`, and in report
/// mode what the list would have denied.
pub async fn open(
    proxy: &Proxy,
    host: &Host,
    port: u16,
    log: &mut RequestLog,
) -> Result<(TcpStream, Option<AllowedBy>), Refusal> {
    let list = proxy.rules();
    let (rules, mode) = (list.as_slice(), proxy.config.list_mode);
    let listener = proxy.config.port;
    let pod = proxy.pod.now();
    let own = OwnSockets {
        ports: proxy.own_ports.clone(),
        addresses: pod.addresses.clone(),
    };
    let mut decision = policy::decide_in(mode, rules, host, port, None, &own);
    let mut unresolved = None;
    if let (Decision::NeedAddresses, Host::Name(name)) = (&decision, host) {
        let addresses = match proxy.resolver.lookup(name, Families::Both).await {
            Ok(found) => found.addresses,
            Err(reason) => {
                unresolved = Some(reason);
                Vec::new()
            }
        };
        decision = policy::decide_in(mode, rules, host, port, Some(&addresses), &own);
    }
    let (addresses, allowed_by) = match decision {
        Decision::Allow { rule, addresses } => {
            log.rule = rules[rule].text.clone();
            METRICS.decided(HTTP_PROXY, listener, true, log.rule.clone());
            (
                addresses,
                Some(AllowedBy {
                    rules: list.clone(),
                    rule,
                }),
            )
        }
        Decision::Report { denial, addresses } => {
            log.rule = denial.log_rule(rules);
            log.would_deny = Some(denial.reason(rules, host));
            METRICS.decided(HTTP_PROXY, listener, true, log.rule.clone());
            METRICS.would_deny(HTTP_PROXY, log.rule.clone());
            (addresses, None)
        }
        Decision::Deny(denial) => {
            log.rule = denial.log_rule(rules);
            METRICS.decided(HTTP_PROXY, listener, false, log.rule.clone());
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                denial.reason(rules, host),
            ));
        }
        Decision::NeedAddresses => {
            log.rule = "default".into();
            METRICS.decided(HTTP_PROXY, listener, false, "default");
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!("no rule allows {host}"),
            ));
        }
    };
    if addresses.is_empty() {
        METRICS.upstream_failed(HTTP_PROXY, UpstreamError::Resolve);
        let reason = unresolved.unwrap_or_else(|| format!("{host} has no address"));
        return Err(Refusal::new(StatusCode::BAD_GATEWAY, reason));
    }
    let routes = routes(&pod.egress, &addresses).map_err(|reason| {
        METRICS.upstream_failed(HTTP_PROXY, UpstreamError::Other);
        Refusal::new(StatusCode::BAD_GATEWAY, format!("{host}: {reason}"))
    })?;
    let stream = dial(&routes, port, proxy.config.connect_timeout, host).await?;
    Ok((stream, allowed_by))
}

/// How to dial each of `addresses` whose family has an egress address; when none has,
/// why the first could not be dialed.
fn routes(egress: &EgressSources, addresses: &[IpAddr]) -> Result<Vec<(IpAddr, Route)>, String> {
    let mut refused = None;
    let routes: Vec<_> = addresses
        .iter()
        .filter_map(|address| match egress.route(*address) {
            Ok(route) => Some((*address, route)),
            Err(reason) => {
                refused.get_or_insert(reason);
                None
            }
        })
        .collect();
    match refused {
        Some(reason) if routes.is_empty() => Err(reason),
        _ => Ok(routes),
    }
}

/// Tries `addresses` in order, each by its route, within one overall `timeout`.
async fn dial(
    addresses: &[(IpAddr, Route)],
    port: u16,
    timeout: Duration,
    host: &Host,
) -> Result<TcpStream, Refusal> {
    let started = Instant::now();
    let attempts = async {
        let mut last = None;
        for (address, route) in addresses {
            match egress::connect(SocketAddr::new(*address, port), *route).await {
                Ok(stream) => return Ok(stream),
                Err(e) => {
                    METRICS.upstream_failed(HTTP_PROXY, UpstreamError::of(&e));
                    last = Some(format!("{address}:{port}: {e}"));
                }
            }
        }
        Err(last.unwrap_or_else(|| format!("{host} has no address")))
    };
    match tokio::time::timeout(timeout, attempts).await {
        Ok(Ok(stream)) => {
            METRICS.connected(HTTP_PROXY, started.elapsed());
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(reason)) => Err(Refusal::new(
            StatusCode::BAD_GATEWAY,
            format!("cannot connect to {reason}"),
        )),
        Err(_) => Err({
            METRICS.upstream_failed(HTTP_PROXY, UpstreamError::Timeout);
            Refusal::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("connecting to {host}:{port} timed out after {timeout:?}"),
            )
        }),
    }
}
