//! The DNS proxy role (SPEC section 5): TCP forwarders to fixed addresses or to host
//! names that are re-resolved while running, replacing the haproxy sidecar.
//!
//! - [`destination`]: the forwarder list (pure).
//! - [`backends`]: round-robin over a target's addresses, skipping failed ones (pure).
//! - [`answer`]: optional DNS answers that point the listed names at the router.
//! - this module: configuration, listeners, re-resolution and the per-connection
//!   forwarding (pick, connect with retries, relay, one log line).

pub mod answer;
pub mod backends;
pub mod destination;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, info, warn};

use crate::config::address::{self, Class, OwnSockets};
use crate::config::vars::{DurationRange, Vars};
use crate::error::{Error, Result};
use crate::serve::process::{self, ConnectionCap, ConnectionSlots, Shutdown};
use crate::serve::relay::{self, Counters};
use crate::serve::resolver::{Families, Resolver};
use backends::Backends;
use destination::{Forwarder, Target};

/// Re-resolution happens at most this often, whatever the TTL.
pub const MIN_REFRESH: Duration = Duration::from_secs(2);
/// Re-resolution happens at least this often, whatever the TTL.
pub const MAX_REFRESH: Duration = Duration::from_secs(30);
/// Connect attempts per client connection, each to a different backend when there are several.
pub const MAX_TRIES: usize = 3;

/// `EGRESS_DNS_PROXY_CONNECT_TIMEOUT`: 10 s, from 100 ms to 5 min.
pub const CONNECT_TIMEOUT: DurationRange = DurationRange::seconds(10, 100, 300);
/// `EGRESS_DNS_PROXY_IDLE_TIMEOUT`: 1 min, from 1 s to 24 h.
pub const IDLE_TIMEOUT: DurationRange = DurationRange::seconds(60, 1000, 86_400);
/// `EGRESS_DNS_PROXY_GRACE_PERIOD`: 25 s, from 1 s to 1 h.
pub const GRACE_PERIOD: DurationRange = DurationRange::seconds(25, 1000, 3600);
/// The variable of the connection cap.
pub const MAX_CONNECTIONS: &str = "EGRESS_DNS_PROXY_MAX_CONNECTIONS";
const LIST: &str = "EGRESS_DNS_PROXY_DESTINATION";

/// Validated DNS proxy configuration.
#[derive(Debug, Clone)]
pub struct DnsProxyConfig {
    /// `EGRESS_DNS_PROXY_DESTINATION`.
    pub forwarders: Vec<Forwarder>,
    /// `EGRESS_DNS_PROXY_CONNECT_TIMEOUT` (10 s), per attempt.
    pub connect_timeout: Duration,
    /// `EGRESS_DNS_PROXY_IDLE_TIMEOUT` (1 min): a connection with no byte either way is closed.
    pub idle_timeout: Duration,
    /// `EGRESS_DNS_PROXY_MAX_CONNECTIONS` (4000, from 1 to 1,000,000), over all forwarders.
    pub max_connections: ConnectionCap,
    /// `EGRESS_DNS_PROXY_GRACE_PERIOD` (25 s).
    pub grace_period: Duration,
    /// `EGRESS_DNS_PROXY_ALLOW_UNRESOLVED`: start even when a name does not resolve yet.
    pub allow_unresolved: bool,
    /// `EGRESS_DNS_PROXY_ANSWER_ADDRESS`: answer A queries for the listed names with it.
    pub answer_address: Option<Ipv4Addr>,
    /// `EGRESS_DNS_PROXY_ANSWER_PORT` (53).
    pub answer_port: u16,
}

impl DnsProxyConfig {
    /// Reads and validates the DNS proxy variables.
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        const ALLOW: &str = "EGRESS_DNS_PROXY_ALLOW_UNRESOLVED";
        const ANSWER: &str = "EGRESS_DNS_PROXY_ANSWER_ADDRESS";
        let list = vars
            .get(LIST)
            .ok_or_else(|| Error::config(LIST, "is required but not set"))?;
        let allow_unresolved = match vars.get(ALLOW).map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if ["1", "true", "yes"].contains(&v.as_str()) => true,
            Some(v) if ["0", "false", "no"].contains(&v.as_str()) => false,
            Some(v) => return Err(Error::config(ALLOW, format!("{v:?} is not true or false"))),
        };
        let answer_address = match vars.get(ANSWER).map(str::trim) {
            None => None,
            Some(text) => match text.parse::<Ipv4Addr>() {
                Ok(ip) if address::is_unicast(ip) => Some(ip),
                _ => {
                    return Err(Error::config(
                        ANSWER,
                        format!("{text:?} is not a unicast IPv4 address"),
                    ));
                }
            },
        };
        Ok(DnsProxyConfig {
            forwarders: destination::parse_forwarders(list)?,
            connect_timeout: vars.duration("EGRESS_DNS_PROXY_CONNECT_TIMEOUT", CONNECT_TIMEOUT)?,
            idle_timeout: vars.duration("EGRESS_DNS_PROXY_IDLE_TIMEOUT", IDLE_TIMEOUT)?,
            max_connections: ConnectionCap::from_vars(vars, MAX_CONNECTIONS, 4000)?,
            grace_period: vars.duration("EGRESS_DNS_PROXY_GRACE_PERIOD", GRACE_PERIOD)?,
            allow_unresolved,
            answer_address,
            answer_port: vars.number("EGRESS_DNS_PROXY_ANSWER_PORT", 53, 1, 65535)?,
        })
    }
}

/// A forwarder at run time: its line, its current backends, and the proxy's own
/// listeners (never a backend).
struct Forward {
    forwarder: Forwarder,
    backends: Mutex<Backends>,
    own: OwnSockets,
}

impl Forward {
    fn backends(&self) -> std::sync::MutexGuard<'_, Backends> {
        self.backends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The addresses of `found` that may be backends for `target_port`, canonical: none
/// that is never dialed, loopback, or one of the proxy's own listeners (a DNS answer
/// must not turn the forwarder onto the pod itself).
pub fn dialable(found: &[IpAddr], target_port: u16, own: &OwnSockets) -> Vec<IpAddr> {
    found
        .iter()
        .map(|a| address::canonical(*a))
        .filter(|a| {
            !matches!(address::class(*a), Class::Never(_))
                && !a.is_loopback()
                && !own.contains(*a, target_port)
        })
        .collect()
}

/// How long to wait before resolving again, given the records' remaining TTL.
pub fn refresh_delay(ttl: Duration) -> Duration {
    ttl.clamp(MIN_REFRESH, MAX_REFRESH)
}

/// Runs the forwarders (and the answering server, when configured) until SIGTERM/SIGINT.
pub async fn run(config: DnsProxyConfig) -> Result<()> {
    let open_files = process::raise_open_file_limit()?;
    let max_connections = config.max_connections.fit(MAX_CONNECTIONS, open_files)?;
    debug!(open_files, max_connections, "open-file limit");
    let own = OwnSockets {
        ports: config.forwarders.iter().map(|f| f.port).collect(),
        addresses: address::local_addresses()
            .map_err(|e| Error::io("listing this pod's addresses", e))?,
    };
    let needs_resolver = config
        .forwarders
        .iter()
        .any(|f| matches!(f.target, Target::Name(_)));
    let resolver = needs_resolver
        .then(|| Resolver::from_system(Families::Ipv4Preferred))
        .transpose()?;
    // All names are looked up at once. When unresolved names are allowed, startup
    // waits at most MIN_REFRESH for them (a DNS outage must not hold the listeners
    // back); the refresher takes over from there.
    let lookups = config.forwarders.iter().map(|forwarder| async {
        let (Target::Name(name), Some(resolver)) = (&forwarder.target, &resolver) else {
            return None;
        };
        let lookup = resolver.lookup(name);
        Some(if config.allow_unresolved {
            tokio::time::timeout(MIN_REFRESH, lookup)
                .await
                .unwrap_or_else(|_| Err(format!("no answer for {name} within {MIN_REFRESH:?}")))
        } else {
            lookup.await
        })
    });
    let resolved = futures::future::join_all(lookups).await;
    let mut forwards = Vec::new();
    let mut refreshes = Vec::new();
    for (forwarder, lookup) in config.forwarders.iter().zip(resolved) {
        // A name whose every address is one never dialed counts as not resolved.
        let lookup = lookup.map(|found| {
            let found = found?;
            let addresses = dialable(&found.addresses, forwarder.target_port, &own);
            if addresses.is_empty() {
                return Err(format!(
                    "resolves only to addresses never dialed (loopback, special or this proxy's own listener): {:?}",
                    found.addresses
                ));
            }
            Ok((addresses, found.valid_until.saturating_duration_since(Instant::now())))
        });
        let (backends, first_refresh) = match (&forwarder.target, lookup) {
            (Target::Address(ip), _) => {
                if own.contains(IpAddr::V4(*ip), forwarder.target_port) {
                    return Err(Error::config(
                        LIST,
                        format!(
                            "port {}: target {ip}:{} is this proxy's own listener",
                            forwarder.port, forwarder.target_port
                        ),
                    ));
                }
                (Backends::new(&[IpAddr::V4(*ip)]), None)
            }
            (Target::Name(name), Some(Ok((addresses, ttl)))) => {
                info!(port = forwarder.port, target = %name, ?addresses, "resolved");
                (Backends::new(&addresses), Some(refresh_delay(ttl)))
            }
            (Target::Name(name), Some(Err(reason))) if config.allow_unresolved => {
                warn!(port = forwarder.port, target = %name, %reason, "not resolved yet; retrying");
                (Backends::default(), Some(MIN_REFRESH))
            }
            (Target::Name(name), Some(Err(reason))) => {
                return Err(Error::State(format!(
                    "EGRESS_DNS_PROXY_DESTINATION: port {} target {name:?}: {reason} \
                     (set EGRESS_DNS_PROXY_ALLOW_UNRESOLVED=true to start anyway)",
                    forwarder.port
                )));
            }
            (Target::Name(_), None) => unreachable!("every name was looked up"),
        };
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
        listeners.push(process::bind_all(forward.forwarder.port).await?);
    }
    let shutdown = process::on_signals()?;
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
            _ = process::requested(&mut shutdown) => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = match resolver.lookup(name).await {
            Ok(found) => {
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
                let kept = forward.backends().addresses();
                warn!(port = forward.forwarder.port, target = %name, %reason, ?kept, "re-resolution failed; keeping the last addresses");
                MIN_REFRESH
            }
        };
    }
}

/// Accepts on every listener until shutdown, then drains like the HTTP proxy.
async fn serve(
    listeners: Vec<TcpListener>,
    forwards: Vec<Arc<Forward>>,
    config: Arc<DnsProxyConfig>,
    max_connections: u32,
    shutdown: Shutdown,
) -> Result<()> {
    let slots = ConnectionSlots::new(max_connections);
    let mut acceptors = tokio::task::JoinSet::new();
    for (listener, forward) in listeners.into_iter().zip(forwards) {
        let address = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listening address", e))?;
        let (target, target_port) = (&forward.forwarder.target, forward.forwarder.target_port);
        info!(%address, %target, target_port, "dns proxy listening");
        let config = config.clone();
        let cut = slots.cut_notice();
        acceptors.spawn(process::accept_until_shutdown(listener, slots.clone(), shutdown.clone(), move |client, peer, slot| {
            match slot {
                Some(slot) => drop(tokio::spawn(forward_connection(forward.clone(), config.clone(), client, peer, (slot, cut.clone())))),
                None => warn!(client = %peer, port = forward.forwarder.port, "connection limit reached: closed"),
            }
        }));
    }
    acceptors.join_all().await;
    slots.drain(config.grace_period).await;
    Ok(())
}

/// Connects to a backend (up to [`MAX_TRIES`] attempts), relays, and logs one line,
/// also when the connection is cut at the end of the grace period.
async fn forward_connection(
    forward: Arc<Forward>,
    config: Arc<DnsProxyConfig>,
    client: TcpStream,
    peer: SocketAddr,
    (_slot, mut cut): (OwnedSemaphorePermit, Shutdown),
) {
    let started = Instant::now();
    let port = forward.forwarder.target_port;
    let log = |outcome: &str, backend: String, transfer: relay::Transfer, detail: &str| {
        info!(
            client = %peer,
            listener = forward.forwarder.port,
            target = %forward.forwarder.target,
            backend = %backend,
            outcome = %outcome,
            bytes_up = transfer.up,
            bytes_down = transfer.down,
            duration_ms = started.elapsed().as_millis() as u64,
            detail = %detail,
            "connection"
        );
    };
    let attempt = tokio::select! {
        attempt = connect_backend(&forward, config.connect_timeout) => attempt,
        _ = process::requested(&mut cut) => Err(vec!["cut at the end of the shutdown grace period while connecting".into()]),
    };
    let (address, upstream, failures) = match attempt {
        Ok(connected) => connected,
        Err(failures) => {
            let detail = if failures.is_empty() {
                "no backend address".to_string()
            } else {
                failures.join("; ")
            };
            log("failed", "-".into(), relay::Transfer::default(), &detail);
            return;
        }
    };
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let counters = Counters::default();
    let end = relay::relay(&client, &upstream, config.idle_timeout, &counters, &mut cut).await;
    let mut detail = end.describe("connection", config.idle_timeout);
    if !failures.is_empty() {
        detail = format!("{detail}; skipped {}", failures.join("; "));
    }
    log(
        "forwarded",
        format!("{address}:{port}"),
        counters.transfer(),
        &detail,
    );
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
        match tokio::time::timeout(timeout, TcpStream::connect((address, port))).await {
            Ok(Ok(stream)) => {
                forward.backends().mark_up(address);
                return Ok((address, stream, failures));
            }
            Ok(Err(e)) => failures.push(format!("{address}:{port}: {e}")),
            Err(_) => failures.push(format!(
                "{address}:{port}: no connection within {timeout:?}"
            )),
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
        let found = [
            "203.0.113.5",
            "::ffff:203.0.113.6",
            "0.0.0.0",
            "127.0.0.1",
            "::1",
            "224.0.0.1",
            "192.0.2.70",
            "2002:cb00:7105::1",
        ]
        .map(ip);
        assert_eq!(
            dialable(&found, 5432, &own),
            vec![ip("203.0.113.5"), ip("203.0.113.6")]
        );
        assert_eq!(
            dialable(&[ip("192.0.2.70")], 80, &own),
            vec![ip("192.0.2.70")],
            "another port of the pod is not the proxy"
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

    #[test]
    fn defaults_match_the_image_it_replaces() {
        let config = DnsProxyConfig::from_vars(&Vars::from_pairs([(
            "EGRESS_DNS_PROXY_DESTINATION",
            "80 203.0.113.5",
        )]))
        .unwrap();
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.max_connections.max, 4000);
        assert_eq!(config.grace_period, Duration::from_secs(25));
        assert!(!config.allow_unresolved);
        assert_eq!(config.answer_address, None);
        assert_eq!(config.answer_port, 53);
    }

    #[test]
    fn every_knob_is_validated_with_its_name() {
        for (var, value) in [
            ("EGRESS_DNS_PROXY_CONNECT_TIMEOUT", "fast"),
            ("EGRESS_DNS_PROXY_IDLE_TIMEOUT", "0"),
            ("EGRESS_DNS_PROXY_MAX_CONNECTIONS", "0"),
            ("EGRESS_DNS_PROXY_GRACE_PERIOD", "2h"),
            ("EGRESS_DNS_PROXY_IDLE_TIMEOUT", "10000000000000000000"),
            ("EGRESS_DNS_PROXY_ANSWER_PORT", "+53"),
            ("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "maybe"),
            ("EGRESS_DNS_PROXY_ANSWER_ADDRESS", "192.0.2.300"),
            ("EGRESS_DNS_PROXY_ANSWER_PORT", "70000"),
        ] {
            let vars = Vars::from_pairs([
                ("EGRESS_DNS_PROXY_DESTINATION", "80 203.0.113.5"),
                (var, value),
            ]);
            let err = DnsProxyConfig::from_vars(&vars).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{var}: ")) && err.contains(&format!("{value:?}")),
                "{err}"
            );
        }
        let allow = Vars::from_pairs([
            ("EGRESS_DNS_PROXY_DESTINATION", "80 203.0.113.5"),
            ("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "True"),
        ]);
        assert!(DnsProxyConfig::from_vars(&allow).unwrap().allow_unresolved);
    }
}
