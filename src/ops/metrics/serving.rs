//! What a proxy records once it serves: its connection cap as a gauge
//! (`connections_active` summed over the role's listeners never goes over it, so their
//! ratio says how near the cap it is), and, at 0, the series whose first increase an
//! alert watches: a series created by its first event starts at 1, and Prometheus
//! never sees that first increase.

use prometheus_client::registry::Registry;

use super::labels::{DecisionLabels, KindLabels, ReasonLabels, RoleLabels};
use super::{HTTP_PROXY, Metrics, Role, UpstreamError};

/// The `reason`s of `tls_sni_cuts_total`.
const SNI_CUTS: [&str; 2] = ["server-name", "tls"];
/// The `reason`s of `report_would_deny_total` known before any request: no rule
/// matched, and a tunnel's TLS server name (the others are the list's `!` rules).
const WOULD_DENY: [&str; 2] = ["default", "tls-server-name"];

impl Metrics {
    /// Records `role`'s connection cap (`*_MAX_CONNECTIONS`, as fitted to the open-file
    /// limit) once it serves.
    pub fn connection_cap(&self, role: Role, max: u32) {
        self.cap
            .get_or_create(&RoleLabels { role })
            .set(i64::from(max));
    }

    /// The HTTP proxy serves on `listener`, at most `max` connections at once, `report`
    /// when the list is not enforced: its cap, and at 0 its refusals at the cap, its
    /// upstream errors of every kind, its SNI cuts and (report mode) its would-be
    /// denials by no rule or by a TLS server name.
    pub fn http_proxy_serving(&self, listener: u16, max: u32, report: bool) {
        let role = HTTP_PROXY;
        self.connection_cap(role, max);
        self.at_cap_from_start(role, listener);
        for kind in [
            UpstreamError::Refused,
            UpstreamError::Timeout,
            UpstreamError::Resolve,
            UpstreamError::Other,
        ] {
            let labels = KindLabels {
                role,
                kind: kind.label(),
            };
            drop(self.upstream_errors.get_or_create_owned(&labels));
        }
        let would_deny: &[&'static str] = if report { &WOULD_DENY } else { &[] };
        let families = [
            (&self.tls_cuts, &SNI_CUTS[..]),
            (&self.would_deny, would_deny),
        ];
        for (family, reasons) in families {
            for &reason in reasons {
                let labels = ReasonLabels {
                    role,
                    reason: reason.into(),
                };
                drop(family.get_or_create_owned(&labels));
            }
        }
    }

    /// Creates at 0 the count of `role`'s connections on `listener` refused at the cap.
    pub(super) fn at_cap_from_start(&self, role: Role, listener: u16) {
        let labels = DecisionLabels {
            role,
            listener,
            decision: "denied",
            reason: "connection-limit".into(),
        };
        drop(self.connections.get_or_create_owned(&labels));
    }

    /// Registers `connections_max` in `registry`.
    pub(super) fn register_cap(&self, registry: &mut Registry) {
        registry.register(
            "connections_max",
            "The connection cap (EGRESS_HTTP_PROXY_MAX_CONNECTIONS, EGRESS_DNS_PROXY_MAX_CONNECTIONS, as fitted to the open-file limit): connections_active summed over the role's listeners stays at or under it",
            self.cap.clone(),
        );
    }
}
