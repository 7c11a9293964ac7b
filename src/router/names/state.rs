//! What the name followers know and tell the operations endpoint: each name entry's
//! chains and the addresses they send to now, the updates made and failed, and the
//! answers that could not be used. Scrapes read it; readiness asks which entries refuse
//! their traffic for want of an address.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ops::metrics::MAX_ADDRESS_SERIES;
use crate::setup::firewall::NameChain;

/// `rule`: a name entry as written in `EGRESS_DESTINATION`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

/// `rule`, `address`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AddressLabels {
    rule: String,
    address: String,
}

/// `target`: a name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

/// The name entries' chains, as the followers keep them.
#[derive(Debug, Default)]
pub struct NameState {
    chains: Mutex<Vec<NameChain>>,
    updates: Family<RuleLabels, Counter>,
    failures: Family<RuleLabels, Counter>,
    unusable: Family<TargetLabels, Counter>,
}

impl NameState {
    /// The state of `chains`, each with the addresses it holds now (`None`: not known);
    /// every counter starts at 0.
    pub fn new(chains: Vec<NameChain>) -> Arc<Self> {
        let state = NameState::default();
        for chain in &chains {
            let rule = RuleLabels {
                rule: chain.label.clone(),
            };
            drop(state.updates.get_or_create(&rule));
            drop(state.failures.get_or_create(&rule));
            let target = TargetLabels {
                target: chain.name.clone(),
            };
            drop(state.unusable.get_or_create(&target));
        }
        *state.lock() = chains;
        Arc::new(state)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<NameChain>> {
        self.chains
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The chains of `name`'s entries (every family).
    pub fn chains_of(&self, name: &str) -> Vec<NameChain> {
        self.lock()
            .iter()
            .filter(|c| c.name == name)
            .cloned()
            .collect()
    }

    /// `chain` now sends to `addresses` (empty: refuses); counts the update.
    pub fn updated(&self, chain: &str, addresses: &[IpAddr]) {
        let mut chains = self.lock();
        if let Some(found) = chains.iter_mut().find(|c| c.chain == chain) {
            found.addresses = Some(addresses.to_vec());
            let rule = RuleLabels {
                rule: found.label.clone(),
            };
            self.updates.get_or_create(&rule).inc();
        }
    }

    /// Counts a failed update of the entry `label`.
    pub fn update_failed(&self, label: &str) {
        let rule = RuleLabels { rule: label.into() };
        self.failures.get_or_create(&rule).inc();
    }

    /// Counts an answer for `name` with no address the router may use.
    pub fn unusable(&self, name: &str) {
        let target = TargetLabels {
            target: name.into(),
        };
        self.unusable.get_or_create(&target).inc();
    }

    /// The entries whose chains send nowhere in any family: their traffic is refused.
    pub fn problems(&self) -> Vec<String> {
        let chains = self.lock();
        let mut problems: Vec<String> = Vec::new();
        for chain in chains.iter() {
            let of_entry = chains.iter().filter(|c| c.label == chain.label);
            let refusing = of_entry
                .clone()
                .all(|c| c.addresses.as_ref().is_some_and(Vec::is_empty));
            let problem = format!(
                "EGRESS_DESTINATION line {:?}: {} has no address yet, its traffic is refused",
                chain.label, chain.name
            );
            if refusing && !problems.contains(&problem) {
                problems.push(problem);
            }
        }
        problems
    }

    /// Registers the name entries' series in `registry`.
    pub fn collect(&self, registry: &mut Registry) {
        let counts: Family<RuleLabels, Gauge> = Family::default();
        let addresses: Family<AddressLabels, Gauge> = Family::default();
        let chains = self.lock().clone();
        let mut labels: Vec<&str> = chains.iter().map(|c| c.label.as_str()).collect();
        labels.dedup();
        for label in labels {
            let mut now: Vec<IpAddr> = chains
                .iter()
                .filter(|c| c.label == label)
                .flat_map(|c| c.addresses.clone().unwrap_or_default())
                .collect();
            now.sort();
            let rule = RuleLabels { rule: label.into() };
            counts
                .get_or_create(&rule)
                .set(i64::try_from(now.len()).unwrap_or(i64::MAX));
            for address in now.iter().take(MAX_ADDRESS_SERIES) {
                let labels = AddressLabels {
                    rule: label.into(),
                    address: address.to_string(),
                };
                addresses.get_or_create(&labels).set(1);
            }
        }
        registry.register(
            "redirect_addresses",
            "Redirect: how many addresses a name entry's rules send new connections to now (0: its traffic is refused)",
            counts,
        );
        registry.register(
            "redirect_address",
            format!("Redirect: each address a name entry's rules send to now, 1; at most {MAX_ADDRESS_SERIES} an entry, the lowest"),
            addresses,
        );
        registry.register(
            "redirect_rule_updates",
            "Redirect: replacements of a name entry's rules after its addresses changed",
            self.updates.clone(),
        );
        registry.register(
            "redirect_rule_update_failures",
            "Redirect: replacements of a name entry's rules that failed (the last rules stay; tried again)",
            self.failures.clone(),
        );
        registry.register(
            "redirect_unusable_answers",
            "Redirect: answers for a name with no address the router may use (the last rules stay)",
            self.unusable.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::family::Family as IpFamily;
    use crate::setup::firewall::names::{Shape, name_chain};

    fn chain(position: usize, family: IpFamily, addresses: Option<&[&str]>) -> NameChain {
        NameChain {
            chain: name_chain(position),
            label: format!("{position}0 tcp db.example.com"),
            name: "db.example.com".into(),
            family,
            shape: Shape {
                protocol: None,
                target_port: None,
            },
            addresses: addresses.map(|a| a.iter().map(|s| s.parse().unwrap()).collect()),
        }
    }

    #[test]
    fn an_entry_refusing_in_every_family_is_a_problem_and_each_address_a_series() {
        let state = NameState::new(vec![
            chain(1, IpFamily::V4, Some(&[])),
            chain(1, IpFamily::V6, Some(&[])),
            chain(2, IpFamily::V4, Some(&["203.0.113.5"])),
            chain(2, IpFamily::V6, Some(&[])),
        ]);
        assert_eq!(
            state.problems(),
            [
                "EGRESS_DESTINATION line \"10 tcp db.example.com\": db.example.com has no address yet, its traffic is refused"
            ]
        );
        state.updated(&name_chain(1), &["2001:db8:2::5".parse().unwrap()]);
        assert!(state.problems().is_empty());
        state.update_failed("20 tcp db.example.com");
        let mut registry = Registry::default();
        state.collect(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "redirect_addresses{rule=\"10 tcp db.example.com\"} 1",
            "redirect_address{rule=\"20 tcp db.example.com\",address=\"203.0.113.5\"} 1",
            "redirect_address{rule=\"10 tcp db.example.com\",address=\"2001:db8:2::5\"} 1",
            "redirect_rule_updates_total{rule=\"10 tcp db.example.com\"} 1",
            "redirect_rule_updates_total{rule=\"20 tcp db.example.com\"} 0",
            "redirect_rule_update_failures_total{rule=\"20 tcp db.example.com\"} 1",
            "redirect_unusable_answers_total{target=\"db.example.com\"} 0",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
