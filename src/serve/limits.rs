//! The limits of a serving process: the open-file limit, the connection cap checked
//! against it, and the slots that hold the cap, drain at shutdown and cut what is left
//! after the grace period.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::shutdown::Shutdown;
use crate::config::vars::Vars;
use crate::error::{Error, Result};

/// Descriptors one connection may hold at once: the client and upstream sockets, and
/// a pipe (two descriptors) per direction once splice takes over.
pub const DESCRIPTORS_PER_CONNECTION: u64 = 6;
/// Descriptors kept aside for listeners, resolver sockets, the runtime and logs.
pub const DESCRIPTOR_RESERVE: u64 = 64;
/// After the grace period, how long cut connections get to write their log lines.
pub const CUT_WAIT: Duration = Duration::from_secs(2);

/// Raises the open-file soft limit to the hard limit and returns it.
pub fn raise_open_file_limit() -> Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| Error::io("reading the open-file limit", e.into()))?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .map_err(|e| Error::io("raising the open-file limit", e.into()))?;
    }
    Ok(hard)
}

/// A connection cap as configured: the number, and whether the operator set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCap {
    /// `*_MAX_CONNECTIONS`, or the default.
    pub max: u32,
    /// Whether the variable was set (a default may be lowered; a setting may not).
    pub explicit: bool,
}

impl ConnectionCap {
    /// Reads `key`: 1 to 1,000,000, `default` when unset.
    pub fn from_vars(vars: &Vars, key: &'static str, default: u32) -> Result<Self> {
        Ok(ConnectionCap {
            max: vars.number(key, default, 1, 1_000_000)?,
            explicit: vars.is_set(key),
        })
    }

    /// The cap that fits `open_files` descriptors. A cap the operator set that does
    /// not fit is an error naming `key`; the default is lowered to fit, with a warning.
    pub fn fit(self, key: &'static str, open_files: u64) -> Result<u32> {
        let fits = open_files.saturating_sub(DESCRIPTOR_RESERVE) / DESCRIPTORS_PER_CONNECTION;
        let need = u64::from(self.max) * DESCRIPTORS_PER_CONNECTION + DESCRIPTOR_RESERVE;
        if u64::from(self.max) <= fits {
            return Ok(self.max);
        }
        let message = format!(
            "{} connections need up to {need} open files but the limit (RLIMIT_NOFILE) is \
             {open_files}: set at most {fits} or raise the limit (ulimit -n)",
            self.max
        );
        if self.explicit || fits == 0 {
            return Err(Error::config(key, message));
        }
        tracing::warn!("{key} (default {}): {message}; using {fits}", self.max);
        Ok(u32::try_from(fits).unwrap_or(u32::MAX))
    }
}

/// The connection cap of a proxy: a slot per open client connection; at shutdown the
/// wait for the slots to come back, and after the grace period the cut.
#[derive(Clone)]
pub struct ConnectionSlots {
    slots: Arc<Semaphore>,
    max: u32,
    cut: Arc<watch::Sender<bool>>,
}

impl ConnectionSlots {
    /// A cap of `max` concurrent connections.
    pub fn new(max: u32) -> Self {
        ConnectionSlots {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
            cut: Arc::new(watch::channel(false).0),
        }
    }

    /// A slot, held for as long as the connection lives; `None` when all are taken.
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Turns `true` when the grace period is over: connections still open must end
    /// now, writing their log line.
    pub fn cut_notice(&self) -> Shutdown {
        self.cut.subscribe()
    }

    fn open(&self) -> usize {
        self.max as usize - self.slots.available_permits()
    }

    /// After accepting has stopped: waits until every connection has ended, or `grace`;
    /// then cuts the rest and gives them [`CUT_WAIT`] to log.
    pub async fn drain(&self, grace: Duration) {
        tracing::info!(open = self.open(), grace_period = ?grace, "stopped accepting; draining");
        if tokio::time::timeout(grace, self.slots.acquire_many(self.max))
            .await
            .is_ok()
        {
            tracing::info!("all connections finished");
            return;
        }
        tracing::warn!(open = self.open(), "grace period over; cutting the rest");
        self.cut.send_replace(true);
        if tokio::time::timeout(CUT_WAIT, self.slots.acquire_many(self.max))
            .await
            .is_err()
        {
            tracing::warn!(open = self.open(), "connections still open after the cut");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_checked_against_the_open_file_limit() {
        let cap = |max, explicit| ConnectionCap { max, explicit };
        assert_eq!(cap(4000, true).fit("V", 1 << 20).unwrap(), 4000);
        assert_eq!(cap(4000, false).fit("V", 1024).unwrap(), (1024 - 64) / 6);
        let err = cap(4000, true).fit("V", 1024).unwrap_err().to_string();
        assert!(
            err.starts_with("V: 4000 connections need up to 24064 open files")
                && err.contains("1024")
                && err.contains("at most 160"),
            "{err}"
        );
        assert!(
            cap(10, false).fit("V", 64).is_err(),
            "nothing fits: an error"
        );
    }
}
