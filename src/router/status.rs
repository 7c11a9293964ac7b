//! What `legacy` and `redirect` tell the operations endpoint: readiness is the whole
//! setup check (the same as `egress-router check`), and each scrape reads the kernel's
//! counters of the NAT rules.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tracing::debug;

use super::names::state::NameState;
use crate::config::family::Family as IpFamily;
use crate::config::router::{EgressPair, RouterConfig};
use crate::error::{Error, Result};
use crate::ha::HaShared;
use crate::ops::health::{Recent, RoleStatus};
use crate::ops::nat::{self, NatCount};
use crate::setup::firewall::{self, NatPurpose, Rule};
use crate::setup::{self, Intent, Namespace};
use crate::sys::iptables::Backend;
use crate::sys::netns::Netns;

/// The router's status, observed in the process's own network namespace.
pub(super) struct RouterStatus {
    config: RouterConfig,
    /// The name entries' chains, as their followers keep them.
    names: Arc<NameState>,
    /// The VRRP instances, with high availability: a backup is not ready (`standby`).
    ha: Option<Arc<HaShared>>,
    /// The last NAT counters read: scrapes within
    /// [`MAX_AGE`](crate::ops::health::MAX_AGE) share them.
    nat: Recent<Vec<NatCount>>,
}

/// `rule`: an `EGRESS_DESTINATION` entry, or `snat`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

impl RouterStatus {
    /// The status of the router `config` describes.
    pub(super) fn new(
        config: RouterConfig,
        ha: Option<Arc<HaShared>>,
        names: Arc<NameState>,
    ) -> Self {
        RouterStatus {
            config,
            ha,
            names,
            nat: Recent::default(),
        }
    }

    /// The NAT rules' counters, at most [`MAX_AGE`](crate::ops::health::MAX_AGE) old;
    /// read off the runtime's thread
    /// (the iptables tools are programs to wait for).
    async fn nat_counts(&self) -> Result<Vec<NatCount>> {
        let config = self.config.clone();
        let read = async {
            tokio::task::spawn_blocking(move || read_nat_counts(&config))
                .await
                .map_err(|e| Error::State(format!("reading the NAT counters: {e}")))?
        };
        self.nat.get(read).await
    }
}

/// Every problem of the setup, checked now on a runtime of this thread's own, the
/// sources of the families in `held` held.
fn check_setup(config: &RouterConfig, held: &[IpFamily]) -> Result<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime of the setup check", e))?;
    runtime.block_on(async {
        let (ns, _) = Namespace::open(Netns::current()?, config.backend)?;
        let intent = match config.ha {
            Some(_) => Intent::router(config).holding(held),
            None => Intent::router(config),
        };
        setup::check(&ns, &intent).await
    })
}

/// The NAT rules' counters of every family, read from the kernel now.
fn read_nat_counts(config: &RouterConfig) -> Result<Vec<NatCount>> {
    let netns = Netns::current()?;
    let (backend, _) = Backend::detect(&netns, config.backend)?;
    let mut counts = Vec::new();
    for pair in &config.egress {
        let dump = backend
            .for_family(pair.family())?
            .save_counted(&netns, "nat")?;
        counts.extend(nat::counts(&dump, &planned(config, pair)));
    }
    Ok(counts)
}

/// The NAT rules of `pair`'s family, each with its `rule` label: the
/// `EGRESS_DESTINATION` entry, `metrics-port` for the metrics port's exemption, or
/// `snat` (IPv4) and `snat6` (IPv6) for the SNAT rule.
fn planned(config: &RouterConfig, pair: &EgressPair) -> Vec<(String, Rule)> {
    firewall::router_nat_plan(config, pair.source.address)
        .into_iter()
        .map(|(purpose, rule)| {
            let label = match (purpose, pair.family()) {
                (NatPurpose::Snat, IpFamily::V6) => "snat6".to_string(),
                (purpose, _) => purpose.to_string(),
            };
            (label, rule)
        })
        .collect()
}

#[async_trait::async_trait]
impl RoleStatus for RouterStatus {
    /// The whole check, on a thread of its own with a runtime of its own: it waits for
    /// the iptables tools (and the xtables lock), which must not hold up `/healthz`.
    async fn setup_problems(&self) -> Vec<String> {
        let config = self.config.clone();
        let held = self.ha.as_ref().map(|ha| ha.held()).unwrap_or_default();
        let checked = tokio::task::spawn_blocking(move || check_setup(&config, &held)).await;
        match checked {
            Ok(Ok(problems)) => problems,
            Ok(Err(e)) => vec![format!("cannot check the setup: {e}")],
            Err(e) => vec![format!("cannot check the setup: {e}")],
        }
    }

    fn serving_problems(&self) -> Vec<String> {
        let mut problems = match &self.ha {
            Some(ha) if !ha.all_master() => vec!["standby".to_string()],
            _ => Vec::new(),
        };
        problems.extend(self.names.problems());
        problems
    }

    async fn collect(&self, registry: &mut Registry) {
        if let Some(ha) = &self.ha {
            ha.register(registry);
        }
        if !self.config.mode.uses_nat() {
            return;
        }
        self.names.collect(registry);
        let counts = match self.nat_counts().await {
            Ok(counts) => counts,
            Err(e) => {
                debug!(error = %e, "reading the NAT counters");
                return;
            }
        };
        let packets: Family<RuleLabels, Counter> = Family::default();
        let bytes: Family<RuleLabels, Counter> = Family::default();
        for count in counts {
            let labels = RuleLabels { rule: count.rule };
            packets.get_or_create(&labels).inc_by(count.packets);
            bytes.get_or_create(&labels).inc_by(count.bytes);
        }
        registry.register(
            "nat_packets",
            "Packets that matched each NAT rule, from the kernel (a connection's first packet)",
            packets,
        );
        registry.register(
            "nat_bytes",
            "Bytes of the packets that matched each NAT rule, from the kernel",
            bytes,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::router::RouterMode;
    use crate::config::vars::Vars;

    #[test]
    fn each_familys_rules_carry_their_entry_as_label() {
        let vars = Vars::from_pairs([
            ("EGRESS_SOURCE", "198.51.100.99,2001:db8:1::99/64"),
            ("EGRESS_GATEWAY", "198.51.100.1,fe80::1"),
            (
                "EGRESS_DESTINATION",
                "80 tcp 203.0.113.5\n8080 tcp 2001:db8:2::6 80\n2001:db8:2::7",
            ),
        ]);
        let config = RouterConfig::from_vars(&vars, Some(RouterMode::Init)).unwrap();
        let shown = |pair| -> Vec<String> {
            planned(&config, pair)
                .iter()
                .map(|(label, rule)| format!("{label} = {rule}"))
                .collect()
        };
        assert_eq!(
            shown(&config.egress[0]),
            [
                "80 tcp 203.0.113.5 = -A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5",
                "snat = -A POSTROUTING -j SNAT --to-source 198.51.100.99",
            ]
        );
        assert_eq!(
            shown(&config.egress[1]),
            [
                "8080 tcp 2001:db8:2::6 80 = -A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination [2001:db8:2::6]:80",
                "2001:db8:2::7 = -A PREROUTING -i eth0 -j DNAT --to-destination 2001:db8:2::7",
                "snat6 = -A POSTROUTING -j SNAT --to-source 2001:db8:1::99",
            ]
        );
    }
}
