//! What the VRRP thread shares with the rest of the process: each instance's state
//! (for readiness, `standby` on a backup, and for the setup checks, which judge the
//! source held only on a master), a counter of transitions that lets a check tell
//! whether one happened while it looked, and the HA metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as Series;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::family::Family;
use crate::vrrp::machine::{Reason, State, TRANSITIONS};
use crate::vrrp::packet::Ignored;

/// `vrid`, `family` and `state` of `ha_state`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    vrid: u8,
    family: &'static str,
    state: &'static str,
}

/// `to` and `reason` of `ha_transitions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    to: &'static str,
    reason: &'static str,
}

/// `family` of the advertisement counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabels {
    family: &'static str,
}

/// `family` and `reason` of `ha_advertisements_ignored_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IgnoredLabels {
    family: &'static str,
    reason: &'static str,
}

/// The label of a family.
fn family_label(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// The state of the HA instances of this process, and their metrics.
#[derive(Debug, Default)]
pub struct HaShared {
    states: Mutex<Vec<(Family, State)>>,
    /// Odd while a transition is being applied; bumped before and after each.
    changes: AtomicU64,
    vrid: u8,
    state: Series<StateLabels, Gauge>,
    transitions: Series<TransitionLabels, Counter>,
    sent: Series<FamilyLabels, Counter>,
    received: Series<FamilyLabels, Counter>,
    ignored: Series<IgnoredLabels, Counter>,
}

impl HaShared {
    /// The shared state of virtual router `vrid`, its instances (one a family) in
    /// Initialize. Every counter series exists from the start at 0 (each transition
    /// the machine makes, each family's advertisements and reasons to ignore one):
    /// Prometheus never sees the first increase of a series born at 1, and the alerts
    /// watch these for increases.
    pub fn new(vrid: u8, families: &[Family]) -> Self {
        let shared = HaShared {
            vrid,
            ..HaShared::default()
        };
        for (to, reason) in TRANSITIONS {
            let labels = TransitionLabels {
                to: to.label(),
                reason: reason.label(),
            };
            drop(shared.transitions.get_or_create_owned(&labels));
        }
        for family in families {
            shared.set(*family, State::Initialize);
            let family = family_label(*family);
            drop(shared.sent.get_or_create_owned(&FamilyLabels { family }));
            drop(
                shared
                    .received
                    .get_or_create_owned(&FamilyLabels { family }),
            );
            for reason in Ignored::ALL {
                let labels = IgnoredLabels {
                    family,
                    reason: reason.label(),
                };
                drop(shared.ignored.get_or_create_owned(&labels));
            }
        }
        shared
    }

    fn set(&self, family: Family, state: State) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        match states.iter_mut().find(|(f, _)| *f == family) {
            Some(entry) => entry.1 = state,
            None => states.push((family, state)),
        }
        for each in State::ALL {
            let labels = StateLabels {
                vrid: self.vrid,
                family: family_label(family),
                state: each.label(),
            };
            self.state
                .get_or_create(&labels)
                .set(i64::from(each == state));
        }
    }

    /// The families whose instance is master: those whose source this pod holds.
    pub fn held(&self) -> Vec<Family> {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states
            .iter()
            .filter(|(_, s)| *s == State::Master)
            .map(|(f, _)| *f)
            .collect()
    }

    /// Whether every instance is master (the pod may serve).
    pub fn all_master(&self) -> bool {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        !states.is_empty() && states.iter().all(|(_, s)| *s == State::Master)
    }

    /// Marks the start of a transition of `family` (its state still the old one).
    pub fn begin(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// Marks the end of a transition of `family` to `to` for `reason`.
    pub fn end(&self, family: Family, to: State, reason: Reason) {
        self.set(family, to);
        let labels = TransitionLabels {
            to: to.label(),
            reason: reason.label(),
        };
        self.transitions.get_or_create(&labels).inc();
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// The transition counter: odd while one is applied, changed by each.
    pub fn generation(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Counts an advertisement sent by `family`'s instance.
    pub fn sent(&self, family: Family) {
        let labels = FamilyLabels {
            family: family_label(family),
        };
        self.sent.get_or_create(&labels).inc();
    }

    /// Counts an advertisement received and acted on by `family`'s instance.
    pub fn received(&self, family: Family) {
        let labels = FamilyLabels {
            family: family_label(family),
        };
        self.received.get_or_create(&labels).inc();
    }

    /// Counts a packet `family`'s instance ignored, and why.
    pub fn ignored(&self, family: Family, reason: Ignored) {
        let labels = IgnoredLabels {
            family: family_label(family),
            reason: reason.label(),
        };
        self.ignored.get_or_create(&labels).inc();
    }

    /// Registers the HA metrics in `registry` (at scrape time).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ha_state",
            "VRRP state of each instance: 1 for its current state label, 0 for the others",
            self.state.clone(),
        );
        registry.register(
            "ha_transitions",
            "VRRP state transitions, by the state taken and why",
            self.transitions.clone(),
        );
        registry.register(
            "ha_advertisements_sent",
            "VRRP advertisements sent",
            self.sent.clone(),
        );
        registry.register(
            "ha_advertisements_received",
            "VRRP advertisements of this virtual router received and acted on",
            self.received.clone(),
        );
        registry.register(
            "ha_advertisements_ignored",
            "VRRP packets received and ignored, by reason",
            self.ignored.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_transitions_and_readiness() {
        let shared = HaShared::new(51, &[Family::V4, Family::V6]);
        assert!(shared.held().is_empty() && !shared.all_master());
        shared.begin();
        assert_eq!(shared.generation() % 2, 1, "odd while a transition runs");
        shared.end(Family::V4, State::Master, Reason::MasterDown);
        assert_eq!(shared.generation(), 2);
        assert_eq!(shared.held(), [Family::V4]);
        assert!(!shared.all_master());
        shared.end(Family::V6, State::Master, Reason::MasterDown);
        assert!(shared.all_master());
        let mut registry = Registry::with_prefix("egress_router");
        shared.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "egress_router_ha_state{vrid=\"51\",family=\"ipv4\",state=\"master\"} 1",
            "egress_router_ha_state{vrid=\"51\",family=\"ipv4\",state=\"backup\"} 0",
            "egress_router_ha_transitions_total{to=\"master\",reason=\"master-down\"} 2",
            // the series the alerts watch for increases exist from the start at 0
            "egress_router_ha_transitions_total{to=\"backup\",reason=\"preempted\"} 0",
            "egress_router_ha_advertisements_ignored_total{family=\"ipv6\",reason=\"checksum\"} 0",
            "egress_router_ha_advertisements_received_total{family=\"ipv4\"} 0",
            "egress_router_ha_advertisements_sent_total{family=\"ipv6\"} 0",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
