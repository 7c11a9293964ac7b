//! What the DNS proxy tells the operations endpoint: readiness (the egress path, and
//! a backend that is up for every target) and each backend's state at scrape time.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::live::Live;
use crate::ops::health::{self, RoleStatus};

/// The DNS proxy's readiness: the egress path is in place and every target has a
/// backend that is up; its backends' states at scrape time.
pub(super) struct DnsStatus {
    pub(super) live: Arc<Live>,
}

#[async_trait::async_trait]
impl RoleStatus for DnsStatus {
    async fn setup_problems(&self) -> Vec<String> {
        health::egress_problems().await
    }

    fn serving_problems(&self) -> Vec<String> {
        let now = Instant::now();
        self.live
            .forwards()
            .iter()
            .filter_map(|forward| {
                let states = forward.backends().states(now);
                let target = &forward.forwarder.target;
                let port = forward.forwarder.port;
                if states.is_empty() {
                    Some(format!("port {port}: {target} has no backend address"))
                } else if states.iter().all(|(_, up)| !up) {
                    Some(format!(
                        "port {port}: every backend of {target} failed its last connect"
                    ))
                } else {
                    None
                }
            })
            .collect()
    }

    async fn collect(&self, registry: &mut Registry) {
        let up: Family<BackendLabels, Gauge> = Family::default();
        let now = Instant::now();
        for forward in &self.live.forwards() {
            for (address, is_up) in forward.backends().states(now) {
                let labels = BackendLabels {
                    listener: forward.forwarder.port,
                    target: forward.forwarder.target.to_string(),
                    address: address.to_string(),
                };
                up.get_or_create(&labels).set(i64::from(is_up));
            }
        }
        registry.register(
            "backend_up",
            "DNS proxy: each current backend of a target, 1 when up (no failed connect within the last 10 s)",
            up,
        );
    }
}

/// `listener`, `target`, `address`: a forwarder's port, its target as configured and
/// one of its backends.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    listener: u16,
    target: String,
    address: String,
}
