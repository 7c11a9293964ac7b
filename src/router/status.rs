//! What `legacy` and `redirect` tell the operations endpoint: readiness is the whole
//! setup check (the same as `egress-router check`), and each scrape reads the kernel's
//! counters of the NAT rules.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tracing::debug;

use crate::config::router::RouterConfig;
use crate::error::Result;
use crate::ops::health::RoleStatus;
use crate::ops::nat::{self, NatCount};
use crate::setup::{self, Intent, Namespace, firewall};
use crate::sys::netns::Netns;

/// The router's status, observed in the process's own network namespace.
pub(super) struct RouterStatus {
    pub(super) config: RouterConfig,
}

/// `rule`: an `EGRESS_DESTINATION` entry, or `snat`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

impl RouterStatus {
    fn namespace(&self) -> Result<Namespace> {
        Namespace::open(Netns::current()?, self.config.backend).map(|(ns, _)| ns)
    }

    /// The NAT rules' counters, read from the kernel now.
    fn nat_counts(&self) -> Result<Vec<NatCount>> {
        let ns = self.namespace()?;
        let dump = ns.backend.save_counted(&ns.netns, "nat")?;
        let config = &self.config;
        let labels = config
            .destinations
            .iter()
            .map(ToString::to_string)
            .chain(["snat".to_string()]);
        let planned: Vec<_> = labels
            .zip(firewall::nat_rules(
                config.source.address,
                &config.destinations,
            ))
            .collect();
        Ok(nat::counts(&dump, &planned))
    }
}

#[async_trait::async_trait]
impl RoleStatus for RouterStatus {
    async fn setup_problems(&self) -> Vec<String> {
        let checked = match self.namespace() {
            Ok(ns) => setup::check(&ns, &Intent::router(&self.config)).await,
            Err(e) => Err(e),
        };
        checked.unwrap_or_else(|e| vec![format!("cannot check the setup: {e}")])
    }

    async fn collect(&self, registry: &mut Registry) {
        if !self.config.mode.uses_nat() {
            return;
        }
        let counts = match self.nat_counts() {
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
