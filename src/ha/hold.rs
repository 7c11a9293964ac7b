//! Taking the source over and giving it up, through the one setup path: a takeover is
//! `establish` of the family's takeover intent (the address without duplicate address
//! detection, the route to the gateway, the default route with the source, checked,
//! rolled back on failure, then announced); giving up applies `release`.

use tracing::debug;

use crate::config::family::Family;
use crate::error::{Error, Result};
use crate::setup::announce::Announced;
use crate::setup::{self, Intent, Journal, Namespace};

/// Takes `family`'s source of `intent` in `ns`; returns what was announced.
pub async fn take(ns: &Namespace, intent: &Intent, family: Family) -> Result<Announced> {
    let started = std::time::Instant::now();
    let done = setup::establish(ns, &intent.takeover(family)).await?;
    debug!(
        changes = done.changes,
        took_us = started.elapsed().as_micros() as u64,
        "source taken over"
    );
    Ok(done.announced)
}

/// Gives `family`'s source of `intent` up in `ns` (nothing when it holds none); a
/// failed step rolls the others back.
pub async fn release(ns: &Namespace, intent: &Intent, family: Family) -> Result<usize> {
    let mine = intent.takeover(family).holding(&[]);
    let observed = setup::observe(ns, &mine).await?;
    let steps = setup::release(&mine, &observed);
    let mut journal = Journal::default();
    if let Err(cause) = setup::apply(ns, &steps, &mut journal).await {
        let rollback = journal.rollback(ns).await;
        return Err(Error::Setup {
            cause: Box::new(cause),
            rollback,
        });
    }
    Ok(steps.len())
}
