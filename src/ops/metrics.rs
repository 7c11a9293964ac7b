//! The process's metrics (SPEC section 9), recorded where things happen and encoded in
//! the Prometheus text format at each scrape.
//!
//! One process plays one role, so the metrics live in one process-wide [`METRICS`]:
//! the code that accepts, decides, dials and relays records into it without handles
//! threaded through every layer. Recording is an atomic add (histograms: a short
//! uncontended lock); a label set is looked up in a map (read lock) with labels that
//! need no allocation but an HTTP rule's text. No label holds a client address or a
//! requested host name: listeners are ports, reasons are rules of the configured list
//! or fixed words.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

mod labels;
mod listener;
mod serving;

pub use labels::{DNS_PROXY, HTTP_PROXY, Reload, Role, UpstreamError};
use labels::{
    DecisionLabels, DirectionLabels, KindLabels, ListenerLabels, ReasonLabels, ResultLabels,
    RoleLabels, TargetLabels,
};
pub use listener::{Active, ListenerSeries};

/// The most series a name's addresses get (the DNS proxy's `backend_up`, the redirect's
/// `redirect_address`): the lowest addresses, so a long answer bounds the scrape.
pub const MAX_ADDRESS_SERIES: usize = 16;

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// Every metric recorded while serving (scrape-time ones are added by the endpoint).
#[derive(Debug)]
pub struct Metrics {
    connections: Family<DecisionLabels, Counter>,
    active: Family<ListenerLabels, Gauge>,
    duration: Family<RoleLabels, Histogram>,
    bytes: Family<DirectionLabels, Counter>,
    connect: Family<RoleLabels, Histogram>,
    upstream_errors: Family<KindLabels, Counter>,
    would_deny: Family<ReasonLabels, Counter>,
    tls_cuts: Family<ReasonLabels, Counter>,
    resolution_failures: Family<TargetLabels, Counter>,
    resolved_at: Family<TargetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    reloads: Family<ResultLabels, Counter>,
    reloaded_at: Family<RoleLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    in_sync: Family<RoleLabels, Gauge>,
    cap: Family<RoleLabels, Gauge>,
    /// Set by each readiness evaluation: 1 ready, 0 not.
    pub ready: Gauge,
    /// Set by the readiness check, wherever it ran.
    pub setup_healthy: Gauge,
    /// When the process started, for `process_start_time_seconds`.
    pub started: std::time::SystemTime,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: Family::default(),
            active: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 4.0, 10))
            }),
            bytes: Family::default(),
            connect: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 4.0, 10))
            }),
            upstream_errors: Family::default(),
            would_deny: Family::default(),
            tls_cuts: Family::default(),
            resolution_failures: Family::default(),
            resolved_at: Family::default(),
            reloads: Family::default(),
            reloaded_at: Family::default(),
            in_sync: Family::default(),
            cap: Family::default(),
            ready: Gauge::default(),
            setup_healthy: Gauge::default(),
            started: std::time::SystemTime::now(),
        }
    }
}

impl Metrics {
    /// Counts one decided request or connection.
    pub fn decided(
        &self,
        role: Role,
        listener: u16,
        allowed: bool,
        reason: impl Into<Cow<'static, str>>,
    ) {
        let decision = if allowed { "allowed" } else { "denied" };
        self.connections
            .get_or_create(&DecisionLabels {
                role,
                listener,
                decision,
                reason: reason.into(),
            })
            .inc();
    }

    /// Report mode: counts a request let through that the list would have denied.
    pub fn would_deny(&self, role: Role, reason: impl Into<Cow<'static, str>>) {
        self.would_deny
            .get_or_create(&ReasonLabels {
                role,
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts a tunnel closed before relaying because of its TLS ClientHello: `reason`
    /// `server-name` (the list does not allow the name) or `tls` (no readable one).
    pub fn tls_cut(&self, role: Role, reason: &'static str) {
        self.tls_cuts
            .get_or_create(&ReasonLabels {
                role,
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts an open client connection until the returned guard is dropped, which
    /// also records how long it lasted.
    pub fn open(&self, role: Role, listener: u16) -> Active {
        let gauge = self
            .active
            .get_or_create_owned(&ListenerLabels { role, listener });
        gauge.inc();
        let lasted = self.duration.get_or_create_owned(&RoleLabels { role });
        Active {
            gauge,
            lasted,
            since: Instant::now(),
        }
    }

    /// Counts bytes relayed, `up` from the client, `down` to it.
    pub fn transferred(&self, role: Role, up: u64, down: u64) {
        for (direction, bytes) in [("up", up), ("down", down)] {
            if bytes > 0 {
                self.bytes
                    .get_or_create(&DirectionLabels { role, direction })
                    .inc_by(bytes);
            }
        }
    }

    /// Records how long a successful upstream connect took.
    pub fn connected(&self, role: Role, took: Duration) {
        self.connect
            .get_or_create(&RoleLabels { role })
            .observe(took.as_secs_f64());
    }

    /// Counts a failed upstream connect or resolution.
    pub fn upstream_failed(&self, role: Role, kind: UpstreamError) {
        self.upstream_errors
            .get_or_create(&KindLabels {
                role,
                kind: kind.label(),
            })
            .inc();
    }

    /// Records a name target's resolution (DNS proxy, redirect): success (time of it) or
    /// failure.
    pub fn resolved(&self, target: &str, success: bool) {
        let labels = TargetLabels {
            target: target.to_string(),
        };
        if success {
            self.resolved_at.get_or_create(&labels).set(unix_now());
        } else {
            self.resolution_failures.get_or_create(&labels).inc();
        }
    }

    /// Counts a list file's new content by what became of it.
    pub fn reloaded(&self, role: Role, reload: Reload) {
        let result = reload.label();
        self.reloads
            .get_or_create(&ResultLabels { role, result })
            .inc();
        let applied = reload == Reload::Applied;
        if applied {
            self.reloaded_at
                .get_or_create(&RoleLabels { role })
                .set(unix_now());
        }
        self.in_sync
            .get_or_create(&RoleLabels { role })
            .set(i64::from(applied));
    }

    /// A list file is followed from now on, its content at start in use: its series
    /// exist from the start (a first refusal is an increase from 0).
    pub fn list_followed(&self, role: Role) {
        for reload in Reload::ALL {
            let result = reload.label();
            drop(
                self.reloads
                    .get_or_create_owned(&ResultLabels { role, result }),
            );
        }
        self.reloaded_at
            .get_or_create(&RoleLabels { role })
            .set(unix_now());
        self.in_sync.get_or_create(&RoleLabels { role }).set(1);
    }

    /// Drops the series of a DNS proxy target no longer listed.
    pub fn forget_target(&self, target: &str) {
        let labels = TargetLabels {
            target: target.to_string(),
        };
        self.resolution_failures.remove(&labels);
        self.resolved_at.remove(&labels);
    }

    /// Registers every metric above in `registry` (prefix `egress_router`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "connections",
            "Requests (HTTP proxy) and connections (DNS proxy) decided, by listener port, decision and reason (rule or error class)",
            self.connections.clone(),
        );
        registry.register(
            "connections_active",
            "Client connections open",
            self.active.clone(),
        );
        registry.register_with_unit(
            "connection_duration",
            "How long client connections lasted",
            Unit::Seconds,
            self.duration.clone(),
        );
        registry.register(
            "bytes",
            "Bytes relayed: up from clients to servers, down from servers to clients",
            self.bytes.clone(),
        );
        registry.register_with_unit(
            "upstream_connect",
            "Time to connect to the upstream server",
            Unit::Seconds,
            self.connect.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream connects or resolutions that failed, by kind (refused, timeout, resolve, other)",
            self.upstream_errors.clone(),
        );
        registry.register(
            "report_would_deny",
            "Report mode: requests let through that the list would have denied, by rule",
            self.would_deny.clone(),
        );
        registry.register(
            "tls_sni_cuts",
            "HTTP proxy: tunnels closed before relaying because of their TLS ClientHello, by reason (server-name: the list does not allow it; tls: no readable ClientHello)",
            self.tls_cuts.clone(),
        );
        registry.register(
            "resolution_failures",
            "DNS proxy and redirect: failed resolutions (no answer, or no address) of a target name",
            self.resolution_failures.clone(),
        );
        registry.register(
            "resolution_last_success_timestamp_seconds",
            "DNS proxy and redirect: when a target name last resolved (Unix time)",
            self.resolved_at.clone(),
        );
        registry.register(
            "list_reloads",
            "List file changes (and SIGHUPs), by result: applied, invalid, unreadable (the last list stays), failed (tried again)",
            self.reloads.clone(),
        );
        registry.register(
            "list_last_reload_timestamp_seconds",
            "When a list file's content was last applied (Unix time)",
            self.reloaded_at.clone(),
        );
        registry.register(
            "list_file_in_sync",
            "1 while the list in use is the list file's content, 0 while its content is refused or unreadable",
            self.in_sync.clone(),
        );
        registry.register(
            "ready",
            "1 when the last readiness evaluation (/readyz or a scrape) found the role ready",
            self.ready.clone(),
        );
        registry.register(
            "setup_healthy",
            "1 when the last check found the egress setup in place, else 0",
            self.setup_healthy.clone(),
        );
        self.register_cap(registry);
    }
}

/// The current Unix time in seconds.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests;
