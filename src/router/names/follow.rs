//! Keeping the name entries' chains in step with DNS while the `redirect` or `legacy`
//! container runs: one task a name resolves it at start and again when its TTL runs
//! out (clamped to [`MIN_TTL`] .. [`MAX_TTL`]); when the addresses of a family changed,
//! the chains of the name's entries in that family are replaced in one
//! `iptables-restore` transaction (the rules kept keep their counters). A failed lookup,
//! an answer none of whose addresses may be used, and a failed update keep the last
//! rules and are tried again after [`RETRY`]; a family the answer has no address of
//! keeps its last rules too. SIGTERM ends the tasks and leaves the rules as they are.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::state::NameState;
use super::{families, usable};
use crate::config::family::Family;
use crate::config::redirect::names;
use crate::config::router::RouterConfig;
use crate::error::{Error, Result};
use crate::ops::metrics::METRICS;
use crate::serve::pod_addresses::PodAddresses;
use crate::serve::resolver::Resolver;
use crate::serve::shutdown::{Shutdown, requested};
use crate::setup::firewall::names::update_script;
use crate::setup::firewall::{NameChain, Rule, router_name_chains};
use crate::setup::{self, Namespace};
use crate::sys::iptables::Backend;
use crate::sys::netns::Netns;

/// The shortest wait before a name is resolved again, whatever its TTL.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest wait before a name is resolved again, whatever its TTL.
pub const MAX_TTL: Duration = Duration::from_secs(300);
/// The wait before a failed or unusable lookup, or a failed update, is tried again.
pub const RETRY: Duration = Duration::from_secs(2);

/// The name entries' chains of every family as they stand in `ns` now (a chain that is
/// missing or malformed: `None`, rewritten at the first answer).
pub fn current(config: &RouterConfig, ns: &Namespace) -> Result<Vec<NameChain>> {
    let mut chains = Vec::new();
    if names(&config.destinations).is_empty() {
        return Ok(chains);
    }
    for family in config.families() {
        let backend = ns.backend.for_family(family)?;
        let dump = backend.save_counted(&ns.netns, "nat")?;
        for mut chain in router_name_chains(config, family, None) {
            chain.addresses = chain.held(&dump).ok();
            chains.push(chain);
        }
    }
    Ok(chains)
}

/// Starts following every name of `config` on the current runtime, from the chains
/// `state` holds, until `shutdown`.
pub fn start(
    config: &RouterConfig,
    ns: &Namespace,
    state: Arc<NameState>,
    shutdown: Shutdown,
) -> Result<()> {
    let names = names(&config.destinations);
    if names.is_empty() {
        return Ok(());
    }
    let follower = Arc::new(Follower {
        config: config.clone(),
        backend: ns.backend,
        resolver: Resolver::from_system()?,
        pod: PodAddresses::follow()?,
        state,
    });
    for name in names {
        tokio::spawn(follower.clone().follow(name.to_string(), shutdown.clone()));
    }
    Ok(())
}

/// What every name's task shares.
struct Follower {
    config: RouterConfig,
    backend: Backend,
    resolver: Resolver,
    pod: Arc<PodAddresses>,
    state: Arc<NameState>,
}

impl Follower {
    /// Resolves `name` now and whenever its TTL runs out, until `stop`.
    async fn follow(self: Arc<Self>, name: String, mut stop: Shutdown) {
        let mut delay = Duration::ZERO;
        loop {
            tokio::select! {
                _ = requested(&mut stop) => return,
                _ = tokio::time::sleep(delay) => {}
            }
            let lookup = tokio::select! {
                _ = requested(&mut stop) => return,
                lookup = self.resolver.lookup(&name, families(&self.config)) => lookup,
            };
            delay = match lookup {
                Ok(found) => {
                    METRICS.resolved(&name, true);
                    let ttl = found.valid_until.saturating_duration_since(Instant::now());
                    match self.answer(&name, &found.addresses).await {
                        true => ttl.clamp(MIN_TTL, MAX_TTL),
                        false => RETRY,
                    }
                }
                Err(reason) => {
                    METRICS.resolved(&name, false);
                    warn!(target = %name, %reason, "re-resolution failed; keeping the last rules");
                    RETRY
                }
            };
        }
    }

    /// Brings `name`'s chains to the usable addresses of `found`; whether that worked
    /// (an answer with no usable address, or a failed update, is tried again sooner).
    async fn answer(&self, name: &str, found: &[IpAddr]) -> bool {
        let (addresses, screened) = usable(&self.config, found, &self.pod.now().addresses);
        if !screened.refused.is_empty() {
            warn!(target = %name, skipped = %screened.describe_refused(), "skipping addresses of the answer");
        }
        if addresses.is_empty() {
            self.state.unusable(name);
            warn!(target = %name, "no address of the answer may be used; keeping the last rules");
            return false;
        }
        let mut worked = true;
        for family in self.config.families() {
            let wanted: Vec<IpAddr> = addresses
                .iter()
                .copied()
                .filter(|a| Family::of(*a) == family)
                .collect();
            // A family the answer has no address of keeps its last rules; only a chain
            // whose content is not known gets the refusal.
            let stale: Vec<NameChain> = self
                .state
                .chains_of(name)
                .into_iter()
                .filter(|c| c.family == family && c.addresses.as_ref() != Some(&wanted))
                .filter(|c| !wanted.is_empty() || c.addresses.is_none())
                .collect();
            if stale.is_empty() {
                if wanted.is_empty() {
                    debug!(target = %name, %family, "no {family} address in the answer; the {family} rules stay");
                }
                continue;
            }
            worked &= self.update(name, family, &stale, &wanted).await;
        }
        worked
    }

    /// Replaces the rules of `chains` (of `family`) by those of `wanted`, in one
    /// transaction under the namespace's setup lock.
    async fn update(
        &self,
        name: &str,
        family: Family,
        chains: &[NameChain],
        wanted: &[IpAddr],
    ) -> bool {
        let result = async {
            let netns = Netns::current()?;
            let _lock = setup::lock(&netns).await?;
            let backend = self.backend.for_family(family)?;
            let updates: Vec<(String, Vec<Rule>)> = chains
                .iter()
                .map(|c| (c.chain.clone(), c.rules(wanted)))
                .collect();
            tokio::task::spawn_blocking(move || apply(backend, &updates))
                .await
                .map_err(|e| Error::State(format!("updating the rules: {e}")))?
        }
        .await;
        match result {
            Ok(()) => {
                for chain in chains {
                    self.state.updated(&chain.chain, wanted);
                    info!(target = %name, rule = %chain.label, %family, addresses = ?wanted, was = ?chain.addresses, "rules replaced");
                }
                true
            }
            Err(error) => {
                for chain in chains {
                    self.state.update_failed(&chain.label);
                }
                warn!(target = %name, %family, %error, "replacing the rules failed; keeping the last ones");
                false
            }
        }
    }
}

/// Gives each chain of `updates` its rules, in one `iptables-restore --noflush
/// --counters` of this namespace (blocking: the tools are programs to wait for).
fn apply(backend: Backend, updates: &[(String, Vec<Rule>)]) -> Result<()> {
    let netns = Netns::current()?;
    let counted = backend.save_counted(&netns, "nat")?;
    let updates: Vec<(&str, Vec<_>)> = updates
        .iter()
        .map(|(chain, rules)| (chain.as_str(), rules.clone()))
        .collect();
    let script = update_script(&counted, &updates);
    debug!(%script, "replacing name rules");
    backend.restore_counted(&netns, &script)
}
