//! Readiness: what a role depends on, checked when a probe or a scrape asks, and not
//! more often than every [`MAX_AGE`] (a check of the router's setup runs `iptables`).

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus_client::registry::Registry;
use tokio::sync::Mutex;

use super::metrics::METRICS;
use crate::serve::shutdown::Shutdown;
use crate::setup::egress;
use crate::sys::netlink::Netlink;
use crate::sys::netns::Netns;

/// A setup check younger than this is answered from the last one.
pub const MAX_AGE: Duration = Duration::from_secs(5);

/// What a serving role tells the endpoint.
#[async_trait]
pub trait RoleStatus: Send + Sync + 'static {
    /// Problems of the egress setup the role relies on, observed now (empty: in place).
    async fn setup_problems(&self) -> Vec<String>;

    /// Other reasons the role cannot serve now (DNS proxy: targets with no backend).
    fn serving_problems(&self) -> Vec<String> {
        Vec::new()
    }

    /// Metrics of the role read at scrape time (backends, NAT counters).
    async fn collect(&self, _registry: &mut Registry) {}
}

/// A value observed at most [`MAX_AGE`] ago: asked again sooner, the last one is
/// answered; observations run one at a time.
pub struct Recent<T>(Mutex<Option<(Instant, T)>>);

impl<T: Clone> Default for Recent<T> {
    fn default() -> Self {
        Recent(Mutex::new(None))
    }
}

impl<T: Clone> Recent<T> {
    /// The last value when younger than [`MAX_AGE`], else what `observe` gives now,
    /// kept for next time when it is a value and not an error.
    pub async fn get<E>(&self, observe: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let mut last = self.0.lock().await;
        if let Some((at, value)) = last.as_ref()
            && at.elapsed() < MAX_AGE
        {
            return Ok(value.clone());
        }
        let value = observe.await?;
        *last = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

/// A role's status with the setup check cached for [`MAX_AGE`], and the shutdown
/// notice (a draining process is not ready).
pub struct Health {
    role: Box<dyn RoleStatus>,
    setup: Recent<Vec<String>>,
    shutdown: Shutdown,
}

impl Health {
    /// The health of `role`, not ready once `shutdown` turns true.
    pub fn new(role: impl RoleStatus, shutdown: Shutdown) -> Self {
        Health {
            role: Box::new(role),
            setup: Recent::default(),
            shutdown,
        }
    }

    /// Every reason the role is not ready; empty when it is.
    pub async fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if *self.shutdown.borrow() {
            problems.push("shutting down: open connections are draining".to_string());
        }
        problems.extend(standby());
        problems.extend(self.setup_problems().await);
        problems.extend(self.role.serving_problems());
        METRICS.ready.set(i64::from(problems.is_empty()));
        problems
    }

    /// The role's scrape-time metrics, after refreshing `ready` and `setup_healthy`.
    pub async fn collect(&self, registry: &mut Registry) {
        self.problems().await;
        self.role.collect(registry).await;
    }

    /// The setup's problems, from a check at most [`MAX_AGE`] old; one check at a time.
    async fn setup_problems(&self) -> Vec<String> {
        let check = async {
            let problems = self.role.setup_problems().await;
            METRICS.setup_healthy.set(i64::from(problems.is_empty()));
            Ok::<_, std::convert::Infallible>(problems)
        };
        let Ok(problems) = self.setup.get(check).await;
        problems
    }
}

/// A proxy of a high-availability pod (its sources pinned) whose `macvlan0` holds none
/// of them is a backup: `standby`, read from the kernel at every probe (not cached
/// like the setup check, so a new master is ready at its next probe).
pub fn standby() -> Option<String> {
    let pinned = crate::serve::egress::pinned_sources()?;
    let sources = [pinned.v4.map(Into::into), pinned.v6.map(Into::into)];
    let held = crate::config::address::interface_addresses()
        .map(|listed| {
            listed
                .iter()
                .any(|(name, a)| name == crate::setup::MACVLAN && sources.contains(&Some(*a)))
        })
        .unwrap_or(false);
    (!held).then(|| "standby".to_string())
}

/// The proxies' setup check: the egress path of this namespace ([`egress`]); with high
/// availability only `EGRESS_SOURCE` counts (a pod without it is on [`standby`]).
pub async fn egress_problems() -> Vec<String> {
    match egress_path().await {
        Ok(mut path) => {
            if let Some(pinned) = crate::serve::egress::pinned_sources() {
                let sources = [pinned.v4.map(Into::into), pinned.v6.map(Into::into)];
                path.addresses.retain(|a| sources.contains(&Some(*a)));
                if path.addresses.is_empty() {
                    // A backup: `standby` says so, checked afresh at every probe.
                    return Vec::new();
                }
            }
            egress::problems(&path)
        }
        Err(e) => vec![format!("cannot check the egress setup: {e}")],
    }
}

/// The egress path of this namespace, read now.
pub async fn egress_path() -> crate::error::Result<egress::EgressPath> {
    let nl = Netlink::connect(&Netns::current()?)?;
    egress::observe(&nl).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recent_value_is_reused_and_an_error_is_not_kept() {
        let recent = Recent::default();
        let failed = recent.get(async { Err::<u32, _>("no answer") }).await;
        assert_eq!(failed, Err("no answer"));
        assert_eq!(recent.get(async { Ok::<_, ()>(1) }).await, Ok(1));
        assert_eq!(
            recent.get(async { Ok::<_, ()>(2) }).await,
            Ok(1),
            "within MAX_AGE"
        );
    }
}
