//! Watching a list file (`EGRESS_*_DESTINATION_FILE`, a mounted ConfigMap): the
//! proxies reload their list when its content changes, and on SIGHUP.
//!
//! The directory holding the file is watched with inotify, not the file: a ConfigMap
//! update writes a new directory and swaps a symlink (`..data`) in that directory, so
//! the file's own inode never changes; the path is opened again at each read and its
//! whole content compared with the last one seen. Only events about the file's own name
//! or the ConfigMap's `..` entries count (other files of the directory may change all
//! the time). Events come in bursts during an update, so a read waits for [`SETTLE`] of
//! quiet, at most [`SETTLE_AT_MOST`]. A re-read every [`RECHECK`] covers what inotify
//! cannot see (a path whose directory is itself replaced), and retries a list refused
//! for a passing cause (a name that did not resolve, a port that was busy).

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Interval, MissedTickBehavior};

use super::shutdown::{Shutdown, requested};
use crate::config::list_file::read_file;
use crate::error::{Error, Result};

/// How long events must stop before the file is read.
pub const SETTLE: Duration = Duration::from_millis(100);
/// A burst of events delays the read at most this long.
pub const SETTLE_AT_MOST: Duration = Duration::from_secs(1);
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
    name: std::ffi::OsString,
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
        let name = path.file_name().unwrap_or_default().to_os_string();
        Ok(ListFile {
            path,
            name,
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

    /// Forgets what was read last, so that the next re-read applies the file even
    /// unchanged (after a refusal for a passing cause).
    pub fn retry_later(&mut self) {
        self.last = Err(String::new());
    }

    /// Waits for the next content to apply: the file's whole text when it differs from
    /// the last read (or SIGHUP asked), or why it cannot be read (once per cause).
    /// `None` once `shutdown` is requested.
    pub async fn next(
        &mut self,
        shutdown: &mut Shutdown,
    ) -> Option<(Trigger, std::result::Result<String, String>)> {
        loop {
            let (events, name) = (self.events.as_ref(), &self.name);
            let trigger = tokio::select! {
                _ = requested(shutdown) => return None,
                _ = self.hangup.recv() => Trigger::Hangup,
                _ = self.recheck.tick() => Trigger::Changed,
                _ = changed(events, name) => {
                    tokio::select! {
                        _ = requested(shutdown) => return None,
                        _ = settle(events, name) => Trigger::Changed,
                    }
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

/// Waits until the directory has an event about `name` or a `..` entry (forever
/// without inotify, or once reading events fails: the re-reads remain).
async fn changed(events: Option<&AsyncFd<Watch>>, name: &std::ffi::OsStr) {
    let Some(events) = events else {
        return std::future::pending().await;
    };
    loop {
        let Ok(mut ready) = events.readable().await else {
            return std::future::pending().await;
        };
        match ready.get_inner().0.read_events() {
            Ok(batch) if batch.iter().any(|e| concerns(e.name.as_deref(), name)) => return,
            Ok(_) => {}
            Err(nix::errno::Errno::EAGAIN) => ready.clear_ready(),
            Err(error) => {
                tracing::warn!(%error, "reading the list file's directory events; it is re-read every {RECHECK:?}");
                return std::future::pending().await;
            }
        }
    }
}

/// Whether an event about the directory entry `entry` may change the file `name`: its
/// own entry (written, renamed over) or a ConfigMap's `..data`/`..VERSION` entries.
fn concerns(entry: Option<&std::ffi::OsStr>, name: &std::ffi::OsStr) -> bool {
    entry.is_some_and(|e| e == name || e.as_encoded_bytes().starts_with(b".."))
}

/// Waits until no event about the file came for [`SETTLE`], at most [`SETTLE_AT_MOST`].
async fn settle(events: Option<&AsyncFd<Watch>>, name: &std::ffi::OsStr) {
    let quiet = async {
        while tokio::time::timeout(SETTLE, changed(events, name))
            .await
            .is_ok()
        {}
    };
    let _ = tokio::time::timeout(SETTLE_AT_MOST, quiet).await;
}

/// For a proxy whose list is not in a file: SIGHUP is logged, and no longer ends the
/// process (`egress-router reload` sent to it by mistake).
pub fn log_hangups() -> Result<()> {
    let mut hangup =
        signal(SignalKind::hangup()).map_err(|e| Error::io("installing the SIGHUP handler", e))?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::warn!("SIGHUP: nothing to reload, the list is in its variable (not a _FILE)");
        }
    });
    Ok(())
}

/// Sends SIGHUP to the proxy with process id `pid`: it reloads its list file now.
pub fn request_reload(pid: i32) -> Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .map_err(|e| Error::io(format!("sending SIGHUP to process {pid}"), e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_entry_and_configmap_entries_count() {
        let name = std::ffi::OsStr::new("rules");
        let entry = |e: &str| concerns(Some(std::ffi::OsStr::new(e)), name);
        assert!(entry("rules") && entry("..data") && entry("..2026_12_01_10_00_00.1"));
        assert!(!entry("access.log") && !entry(".rules.swp") && !concerns(None, name));
    }
}
