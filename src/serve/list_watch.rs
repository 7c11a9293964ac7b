//! Watching a list file (`EGRESS_*_DESTINATION_FILE`, a mounted ConfigMap): the
//! proxies reload their list when its content changes, and on SIGHUP.
//!
//! The directory holding the file is watched with inotify, not the file: a ConfigMap
//! update writes a new directory and swaps a symlink (`..data`) in that directory, so
//! the file's own inode never changes; the path is opened again at each read and its
//! whole content compared with the last one seen. Events come in bursts during an
//! update, so a read waits for [`SETTLE`] of quiet. A re-read every [`RECHECK`] covers
//! what inotify cannot see (a path whose directory is itself replaced).

use std::future::Future;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Interval, MissedTickBehavior};
use tracing::{error, info};

use super::shutdown::{Shutdown, requested};
use crate::config::lines;
use crate::config::list_file::read_file;
use crate::error::{Error, Result};
use crate::ops::metrics::{METRICS, Reload, Role};

/// How long events must stop before the file is read.
pub const SETTLE: Duration = Duration::from_millis(100);
/// The file is read at least this often, events or not.
pub const RECHECK: Duration = Duration::from_secs(30);

/// Why the file is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Its directory changed, or the periodic re-read: only a new content counts.
    Changed,
    /// SIGHUP: reload even when the content is the same.
    Hangup,
}

/// A list file and what was last read from it.
pub struct ListFile {
    path: PathBuf,
    last: std::result::Result<String, String>,
    events: Option<AsyncFd<Watch>>,
    hangup: Signal,
    recheck: Interval,
}

/// The inotify instance, as tokio wants its descriptor.
struct Watch(Inotify);

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl ListFile {
    /// Starts watching `path`, whose content `initial` was read at start. Installs the
    /// SIGHUP handler (SIGHUP no longer ends the process). Without inotify, only SIGHUP
    /// and the periodic re-read remain (logged).
    pub fn watch(path: PathBuf, initial: String) -> Result<Self> {
        let hangup = signal(SignalKind::hangup())
            .map_err(|e| Error::io("installing the SIGHUP handler", e))?;
        let events = match directory_events(&path) {
            Ok(events) => Some(events),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot watch the list file's directory; it is re-read every {RECHECK:?} and on SIGHUP");
                None
            }
        };
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
        recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(ListFile {
            path,
            last: Ok(initial),
            events,
            hangup,
            recheck,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next content to apply: the file's whole text when it differs from
    /// the last read (or SIGHUP asked), or why it cannot be read (once per cause).
    /// `None` once `shutdown` is requested.
    pub async fn next(
        &mut self,
        shutdown: &mut Shutdown,
    ) -> Option<(Trigger, std::result::Result<String, String>)> {
        loop {
            let trigger = tokio::select! {
                _ = requested(shutdown) => return None,
                _ = self.hangup.recv() => Trigger::Hangup,
                _ = self.recheck.tick() => Trigger::Changed,
                _ = changed(self.events.as_ref()) => {
                    settle(self.events.as_ref()).await;
                    Trigger::Changed
                }
            };
            let read = read_file(&self.path);
            if trigger == Trigger::Changed && read == self.last {
                continue;
            }
            self.last = read.clone();
            return Some((trigger, read));
        }
    }
}

/// An inotify instance on the directory of `path`, for every change of its entries.
fn directory_events(path: &Path) -> std::io::Result<AsyncFd<Watch>> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    let mask = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB;
    inotify.add_watch(directory, mask)?;
    // SAFETY: `Watch` owns the inotify descriptor and neither replaces nor closes it
    // while the `AsyncFd` holds it; it is closed when the `AsyncFd` drops it.
    unsafe { AsyncFd::register(Watch(inotify)) }.map_err(|e| e.into_parts().1)
}

/// Waits until the directory has events (forever without inotify), and takes them.
async fn changed(events: Option<&AsyncFd<Watch>>) {
    let Some(events) = events else {
        return std::future::pending().await;
    };
    loop {
        let Ok(mut ready) = events.readable().await else {
            return std::future::pending().await;
        };
        match ready.get_inner().0.read_events() {
            Ok(_) => return,
            Err(nix::errno::Errno::EAGAIN) => ready.clear_ready(),
            Err(_) => return std::future::pending().await,
        }
    }
}

/// Waits until no event came for [`SETTLE`].
async fn settle(events: Option<&AsyncFd<Watch>>) {
    while tokio::time::timeout(SETTLE, changed(events)).await.is_ok() {}
}

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
        match apply(text.clone()).await {
            Ok(entries) => {
                let (added, removed) = lines::diff(&applied, &text);
                info!(file = %path, ?trigger, entries, ?added, ?removed, "list reloaded");
                METRICS.reloaded(role, Reload::Applied);
                applied = text;
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
}
