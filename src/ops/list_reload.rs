//! Following a list file while a proxy runs (SPEC section 9): each new content of the
//! [`ListFile`] goes to the role, which applies it whole or refuses it; every outcome
//! is logged (the entries added and removed when applied) and counted. The roles parse
//! a new list, and this module compares it with the last one, off the runtime (see
//! [`off_runtime`]).

use std::future::Future;

use tracing::{error, info};

use super::metrics::{METRICS, Reload, Role};
use crate::config::lines;
use crate::error::Error;
use crate::serve::list_watch::{ListFile, RECHECK, Trigger};
use crate::serve::off_runtime;
use crate::serve::shutdown::{Shutdown, requested};

/// The `list reloaded` line names at most this many entries added, and as many removed
/// (it gives their counts too).
pub const LOGGED_ENTRIES: usize = 100;

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
                let old = std::mem::replace(&mut applied, text.clone());
                let at = path.clone();
                let logged = off_runtime::run("list-diff", move || {
                    log_applied(&at, trigger, entries, &old, &text);
                });
                if let Err(e) = logged.await {
                    info!(file = %path, ?trigger, entries, error = %e, "list reloaded (the entries added and removed are not known)");
                }
                METRICS.reloaded(role, Reload::Applied);
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

/// Logs the list `new` of `entries` entries applied in place of `old`: the entries
/// added and removed, at most [`LOGGED_ENTRIES`] of each, and their counts.
fn log_applied(path: &str, trigger: Trigger, entries: usize, old: &str, new: &str) {
    let (added, removed) = lines::diff(old, new);
    let (added_count, removed_count) = (added.len(), removed.len());
    let (added, removed) = (
        &added[..added_count.min(LOGGED_ENTRIES)],
        &removed[..removed_count.min(LOGGED_ENTRIES)],
    );
    info!(file = %path, ?trigger, entries, ?added, added_count, ?removed, removed_count, "list reloaded");
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

impl Refused {
    /// A refusal for `error`, a cause that may pass (such as a thread that could not
    /// start).
    pub fn passing(error: Error) -> Refused {
        Refused {
            line: None,
            reason: error.to_string(),
            retry: true,
        }
    }
}
