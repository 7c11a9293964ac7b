//! What the DNS proxy tells the operations endpoint: readiness (the egress path, and
//! a backend that is up for every target) and each backend's state at scrape time.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::backends::MAX_BACKENDS;
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
        let omitted: Family<TargetLabels, Gauge> = Family::default();
        let now = Instant::now();
        for forward in &self.live.forwards() {
            let (states, left_out) = {
                let backends = forward.backends();
                (backends.states(now), backends.left_out())
            };
            let (shown, without) = with_series(states);
            let target = TargetLabels {
                listener: forward.forwarder.port,
                target: forward.forwarder.target.to_string(),
            };
            for (address, is_up) in shown {
                let labels = BackendLabels {
                    listener: target.listener,
                    target: target.target.clone(),
                    address: address.to_string(),
                };
                up.get_or_create(&labels).set(i64::from(is_up));
            }
            let left_out = i64::try_from(without + left_out).unwrap_or(i64::MAX);
            omitted.get_or_create(&target).set(left_out);
        }
        registry.register(
            "backend_up",
            format!("DNS proxy: each current backend of a target, 1 when up (no failed connect within the last 10 s); at most {MAX_BACKEND_SERIES} a target, the lowest addresses"),
            up,
        );
        registry.register(
            "backend_series_omitted",
            format!("DNS proxy: addresses of a target's last resolution without a backend_up series (over {MAX_BACKEND_SERIES}; over {MAX_BACKENDS} are not backends either)"),
            omitted,
        );
    }
}

/// The most `backend_up` series of one target.
pub const MAX_BACKEND_SERIES: usize = crate::ops::metrics::MAX_ADDRESS_SERIES;

/// Of one target's backend `states`, those that get a `backend_up` series: the lowest
/// [`MAX_BACKEND_SERIES`] in address order (the same ones whichever order a server
/// rotates its answer into), in that order; and how many do not.
fn with_series(mut states: Vec<(IpAddr, bool)>) -> (Vec<(IpAddr, bool)>, usize) {
    states.sort_by_key(|(address, _)| *address);
    let without = states.len().saturating_sub(MAX_BACKEND_SERIES);
    states.truncate(MAX_BACKEND_SERIES);
    (states, without)
}

/// `listener`, `target`, `address`: a forwarder's port, its target as configured and
/// one of its backends.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    listener: u16,
    target: String,
    address: String,
}

/// `listener`, `target`: a forwarder's port and its target as configured.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    listener: u16,
    target: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(last_octets: &[u8]) -> Vec<(IpAddr, bool)> {
        last_octets
            .iter()
            .map(|&i| (IpAddr::from([203, 0, 113, i]), i % 2 == 0))
            .collect()
    }

    #[test]
    fn the_lowest_addresses_get_series_whatever_the_answer_order() {
        let answer: Vec<u8> = (100..140).rev().collect();
        let (shown, without) = with_series(states(&answer));
        let lowest: Vec<u8> = (100..116).collect();
        assert_eq!(shown, states(&lowest), "the 16 lowest, in address order");
        assert_eq!(without, 24);
        let mut rotated = answer.clone();
        rotated.rotate_left(7);
        assert_eq!(with_series(states(&rotated)), (shown, 24), "stable");
    }

    #[test]
    fn a_short_answer_gets_a_series_for_every_address() {
        let (shown, without) = with_series(states(&[7, 5]));
        assert_eq!((shown, without), (states(&[5, 7]), 0));
        assert_eq!(with_series(Vec::new()), (Vec::new(), 0));
    }
}
