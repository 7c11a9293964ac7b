//! Watching a list file (`EGRESS_*_DESTINATION_FILE`, a mounted ConfigMap): the
//! proxies reload their list when its content changes, and on SIGHUP.
//!
//! The directory holding the file is watched with inotify, not the file: a ConfigMap
//! update writes a new directory and swaps a symlink (`..data`) in that directory, so
//! the file's own inode never changes; the path is opened again at each read and its
//! whole content compared with the last one seen. Only events about the file's own name
//! or the ConfigMap's `..` entries count (other files of the directory may change all
//! the time). Events come in bursts during an update, so a read waits for [`QUIET`] of
//! quiet, at most [`QUIET_AT_MOST`]. A re-read every [`RECHECK`] covers what inotify
//! cannot see (a path whose directory is itself replaced), and retries a list refused
//! for a passing cause (a name that did not resolve, a port that was busy).
//!
//! Every read, whatever its cause, applies only a settled file: its [`Stamp`] (device,
//! inode, size, modification and change times) must stay the same for [`SETTLE`] before
//! the read and throughout it, so that a file being written in place is not read half
//! written. The file is read (see [`crate::config::list_file::read`]) on a thread of its
//! own, never on a runtime thread.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Interval, MissedTickBehavior};

use super::off_runtime;
use super::shutdown::{Shutdown, requested};
use crate::config::list_file::{Stamp, read, stamp};
use crate::error::{Error, Result};

/// How long events must stop before the file is looked at.
pub const QUIET: Duration = Duration::from_millis(100);
/// A burst of events delays the look at most this long.
pub const QUIET_AT_MOST: Duration = Duration::from_secs(1);
/// How long the file must stay the same (its [`Stamp`]) before it is read.
pub const SETTLE: Duration = Duration::from_secs(1);
/// A file still changing after this many [`SETTLE`] periods is left until its next
/// change (or the next re-read).
pub const SETTLE_ROUNDS: usize = 10;
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
    var: &'static str,
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
    /// Starts watching `path`, named by the variable `var`, whose content `initial` was
    /// read at start. Installs the SIGHUP handler (SIGHUP no longer ends the process).
    /// Without inotify, only SIGHUP and the periodic re-read remain (logged).
    pub fn watch(var: &'static str, path: PathBuf, initial: String) -> Result<Self> {
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
            var,
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
    /// the last read (or SIGHUP asked), or why it cannot be read, naming the variable and
    /// the file (once per cause). Only a settled file is read (see [`SETTLE`]). `None`
    /// once `shutdown` is requested.
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
                        _ = quiet(events, name) => Trigger::Changed,
                    }
                }
            };
            let content = tokio::select! {
                _ = requested(shutdown) => return None,
                content = settled(&self.path) => content,
            };
            let Some(read) = content else {
                tracing::warn!(file = %self.path.display(), "the list file keeps changing; it is read once it stays the same for {SETTLE:?}");
                continue;
            };
            let read = read.map_err(|reason| format!("{}: {reason}", self.var));
            if trigger == Trigger::Changed && read == self.last {
                continue;
            }
            self.last = read.clone();
            return Some((trigger, read));
        }
    }
}

/// The content of the file at `path` (or why it cannot be used) once its stamp stayed
/// the same for [`SETTLE`] and throughout the read; `None` when it still changed after
/// [`SETTLE_ROUNDS`] tries. Looking at the file and reading it happen off the runtime.
async fn settled(path: &Path) -> Option<std::result::Result<String, String>> {
    for _ in 0..SETTLE_ROUNDS {
        let at = path.to_path_buf();
        let seen: Result<Option<Stamp>> = off_runtime::run("list-file", move || stamp(&at)).await;
        tokio::time::sleep(SETTLE).await;
        let at = path.to_path_buf();
        let reading = off_runtime::run("list-file", move || read(&at)).await;
        match (seen, reading) {
            (Ok(seen), Ok(reading)) if reading.unchanged_since(seen) => {
                return Some(reading.content);
            }
            (Err(e), _) | (_, Err(e)) => return Some(Err(e.to_string())),
            _ => {}
        }
    }
    None
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

/// Waits until no event about the file came for [`QUIET`], at most [`QUIET_AT_MOST`].
async fn quiet(events: Option<&AsyncFd<Watch>>, name: &std::ffi::OsStr) {
    let quiet = async {
        while tokio::time::timeout(QUIET, changed(events, name))
            .await
            .is_ok()
        {}
    };
    let _ = tokio::time::timeout(QUIET_AT_MOST, quiet).await;
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
