//! The series one forwarder port records into, looked up once when the port is put in
//! service: on a connection's path, recording is then an atomic add (a histogram: a
//! short lock), with no map lookup and no lock shared by every port. And [`Active`],
//! what an open client connection holds.

use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::labels::{DecisionLabels, DirectionLabels, KindLabels, ListenerLabels, RoleLabels};
use super::{Metrics, Role, UpstreamError};

/// One port's series (they exist from the moment the port is in service).
#[derive(Debug, Clone)]
pub struct ListenerSeries {
    forwarded: Counter,
    connect_failed: Counter,
    no_backend: Counter,
    active: Gauge,
    lasted: Histogram,
    up: Counter,
    down: Counter,
    connect: Histogram,
    refused: Counter,
    timeout: Counter,
    other: Counter,
    resolve: Counter,
}

impl Metrics {
    /// The series of `role`'s port `listener`.
    pub fn listener(&self, role: Role, listener: u16) -> ListenerSeries {
        let decided = |reason: &'static str| {
            let labels = DecisionLabels {
                role,
                listener,
                decision: "allowed",
                reason: reason.into(),
            };
            self.connections.get_or_create_owned(&labels)
        };
        let bytes = |direction| {
            self.bytes
                .get_or_create_owned(&DirectionLabels { role, direction })
        };
        let failed = |kind: UpstreamError| {
            let labels = KindLabels {
                role,
                kind: kind.label(),
            };
            self.upstream_errors.get_or_create_owned(&labels)
        };
        self.at_cap_from_start(role, listener);
        ListenerSeries {
            forwarded: decided("forwarded"),
            connect_failed: decided("connect-failed"),
            no_backend: decided("no-backend"),
            active: self
                .active
                .get_or_create_owned(&ListenerLabels { role, listener }),
            lasted: self.duration.get_or_create_owned(&RoleLabels { role }),
            up: bytes("up"),
            down: bytes("down"),
            connect: self.connect.get_or_create_owned(&RoleLabels { role }),
            refused: failed(UpstreamError::Refused),
            timeout: failed(UpstreamError::Timeout),
            other: failed(UpstreamError::Other),
            resolve: failed(UpstreamError::Resolve),
        }
    }
}

impl ListenerSeries {
    /// Counts an open client connection until the returned guard is dropped.
    pub fn open(&self) -> Active {
        self.active.inc();
        Active {
            gauge: self.active.clone(),
            lasted: self.lasted.clone(),
            since: Instant::now(),
        }
    }

    /// Counts a connection forwarded (its backend connected).
    pub fn forwarded(&self) {
        self.forwarded.inc();
    }

    /// Counts the bytes a connection relayed: `up` from the client, `down` to it.
    pub fn transferred(&self, up: u64, down: u64) {
        self.up.inc_by(up);
        self.down.inc_by(down);
    }

    /// Counts a connection no backend took: none was there, or every attempt failed.
    pub fn not_forwarded(&self, no_backend: bool) {
        if no_backend {
            self.no_backend.inc();
            self.resolve.inc();
        } else {
            self.connect_failed.inc();
        }
    }

    /// Records a successful upstream connect.
    pub fn connected(&self, took: Duration) {
        self.connect.observe(took.as_secs_f64());
    }

    /// Counts a failed upstream connect.
    pub fn upstream_failed(&self, kind: UpstreamError) {
        match kind {
            UpstreamError::Refused => &self.refused,
            UpstreamError::Timeout => &self.timeout,
            UpstreamError::Resolve => &self.resolve,
            UpstreamError::Other => &self.other,
        }
        .inc();
    }
}

/// An open client connection, counted in `connections_active` until dropped.
#[derive(Debug)]
pub struct Active {
    pub(super) gauge: Gauge,
    pub(super) lasted: Histogram,
    pub(super) since: Instant,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.gauge.dec();
        self.lasted.observe(self.since.elapsed().as_secs_f64());
    }
}
