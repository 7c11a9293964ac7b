//! The pod network setup, in layers that data flows down through: an [`Intent`] says
//! what must hold, one [`FamilyIntent`] for IPv4 and one for IPv6; [`observe`] reads
//! the state of every piece from one network namespace; [`plan`] decides the
//! [`Step`]s still missing (pure; [`problems`] names each missing piece, so a check is
//! observe + problems; [`release`] the steps that give a high-availability source up); [`apply`] makes the steps while journaling how to undo each,
//! and the [`Journal`] rolls everything back on failure. [`firewall`] plans the
//! iptables rules (pure); [`egress`] checks the part a proxy relies on, without
//! privileges; [`announce`] repeats the announcements later. Every kernel call goes
//! through a [`Namespace`], bound to an explicit network namespace.

pub mod announce;
pub mod apply;
pub mod egress;
pub mod firewall;
pub mod intent;
pub mod journal;
pub mod observe;
pub mod plan;
pub mod problems;
pub mod release;
pub mod step;

pub use apply::apply;
pub use intent::{FamilyIntent, Intent, MACVLAN, PodSide, RoutedLink};
pub use journal::Journal;
pub use observe::{Observed, observe};
pub use plan::{announcements, plan};
pub use problems::problems;
pub use release::release;
pub use step::{FirewallUndo, SourceRuleSpec, Step};

use crate::config::router::BackendChoice;
use crate::error::Result;
use crate::sys::iptables::Backend;
use crate::sys::netlink::Netlink;
use crate::sys::netns::Netns;

/// A network namespace opened for setup: the handle every kernel call goes through, a
/// netlink connection bound to it, and the iptables backend chosen for it.
pub struct Namespace {
    /// The namespace.
    pub netns: Netns,
    /// Route netlink, bound to it.
    pub nl: Netlink,
    /// The iptables tools, run in it.
    pub backend: Backend,
}

impl Namespace {
    /// Opens `netns` for setup; returns it with the reason the backend was chosen.
    pub fn open(netns: Netns, choice: BackendChoice) -> Result<(Namespace, String)> {
        let nl = Netlink::connect(&netns)?;
        let (backend, reason) = Backend::detect(&netns, choice)?;
        Ok((Namespace { netns, nl, backend }, reason))
    }
}

/// The lock that serializes setups in one network namespace (an abstract socket name).
pub const SETUP_LOCK: &str = "egress-router-setup";
/// How long a setup waits for another one in the same network namespace to finish.
pub const SETUP_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the setup lock of `netns`, waiting at most [`SETUP_LOCK_WAIT`].
pub async fn lock(netns: &Netns) -> Result<crate::sys::lock::NamespaceLock> {
    crate::sys::lock::NamespaceLock::acquire(netns, SETUP_LOCK, SETUP_LOCK_WAIT)
        .await?
        .ok_or_else(|| {
            crate::error::Error::State(format!(
                "another setup has been running in {} for more than {} s (lock @{SETUP_LOCK} still held); nothing was changed",
                netns.describe(),
                SETUP_LOCK_WAIT.as_secs()
            ))
        })
}

/// What [`establish`] did.
pub struct Established {
    /// How many network changes it made besides the firewall script (0: the network
    /// was already complete).
    pub changes: usize,
    /// What was announced, for the delayed second announcement.
    pub announced: announce::Announced,
}

/// Brings `ns` to `intent`: observe, plan, apply, then the same check as a probe (the
/// end check), and the announcement. Any failure, or a piece still missing at the end,
/// rolls every change back. The caller holds the namespace's setup lock.
pub async fn establish(ns: &Namespace, intent: &Intent) -> Result<Established> {
    let observed = observe(ns, intent).await?;
    let steps = plan(intent, &observed)?;
    let changes = steps
        .iter()
        .filter(|step| !matches!(step, Step::Firewall { .. } | Step::AwaitAddress { .. }))
        .count();
    let announcements = announcements(intent, &observed);
    tracing::debug!(steps = ?steps.iter().chain(&announcements).map(ToString::to_string).collect::<Vec<_>>(), "setup plan");
    let mut journal = Journal::default();
    let mut announced = announce::Announced::default();
    let applied = async {
        apply(ns, &steps, &mut journal).await?;
        let missing = check(ns, intent).await?;
        if !missing.is_empty() {
            return Err(crate::error::Error::State(format!(
                "setup applied but not in place: {}",
                missing.join("; ")
            )));
        }
        announced = apply(ns, &announcements, &mut journal).await?;
        Ok(())
    }
    .await;
    if let Err(cause) = applied {
        let rollback = journal.rollback(ns).await;
        return Err(crate::error::Error::Setup {
            cause: Box::new(cause),
            rollback,
        });
    }
    Ok(Established { changes, announced })
}

/// Every piece of `intent` that is not in place in `ns`, each named; empty when the
/// setup is complete.
pub async fn check(ns: &Namespace, intent: &Intent) -> Result<Vec<String>> {
    Ok(problems(intent, &observe::check(ns, intent).await?))
}
