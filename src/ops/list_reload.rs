//! Following a list file while a proxy runs (SPEC section 9): each new content of the
//! [`ListFile`] goes to the role, which applies it whole or refuses it; every outcome
//! is logged (the entries added and removed when applied) and counted.

use std::future::Future;

use tracing::{error, info};

use super::metrics::{METRICS, Reload, Role};
use crate::config::lines;
use crate::serve::list_watch::{ListFile, RECHECK};
use crate::serve::shutdown::{Shutdown, requested};

/// Follows `file` until `shutdown`: each new content (whose text `initial` was applied
/// at start) goes to `apply`, which parses it whole and puts it in use, returning how
/// many entries the list now has, or refuses it with the reason and, when one line is
/// at fault, its number. Every outcome is logged (the entries added and removed when
/// applied) and counted; a refused or unreadable content leaves the last list in use.
pub async fn follow<F, Fut>(
    mut file: ListFile,
    role: Role,
    initial: String,
    mut apply: F,
    mut shutdown: Shutdown,
) where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = std::result::Result<usize, Refused>>,
{
    let mut applied = initial;
    METRICS.list_followed(role);
    while let Some((trigger, read)) = file.next(&mut shutdown).await {
        let path = file.path().display().to_string();
        let text = match read {
            Ok(text) => text,
            Err(reason) => {
                error!(file = %path, %reason, "cannot read the list file; the last list stays in use");
                METRICS.reloaded(role, Reload::Unreadable);
                continue;
            }
        };
        let outcome = tokio::select! {
            _ = requested(&mut shutdown) => return,
            outcome = apply(text.clone()) => outcome,
        };
        match outcome {
            Ok(entries) => {
                let (added, removed) = lines::diff(&applied, &text);
                info!(file = %path, ?trigger, entries, ?added, ?removed, "list reloaded");
                METRICS.reloaded(role, Reload::Applied);
                applied = text;
            }
            Err(refused) if refused.retry => {
                error!(file = %path, reason = %refused.reason, "list file not applied (tried again within {RECHECK:?}); the last list stays in use");
                METRICS.reloaded(role, Reload::Failed);
                file.retry_later();
            }
            Err(refused) => {
                error!(file = %path, line = ?refused.line, reason = %refused.reason, "list file refused; the last list stays in use");
                METRICS.reloaded(role, Reload::Invalid);
            }
        }
    }
}

/// Why a new list was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The line at fault (from 1), when one is.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
    /// Whether the cause may pass (a lookup, a busy port): the list is tried again.
    pub retry: bool,
}
