//! Process-wide concerns of the long-running roles: SIGTERM/SIGINT as a shutdown
//! notice any task can wait for, listening on all addresses, the connection cap with
//! its drain and cut, the open-file limit, and accepting without spinning when the
//! descriptors run out.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::vars::Vars;
use crate::error::{Error, Result};

/// A receiver that turns `true` once shutdown (or the cut) was requested.
pub type Shutdown = watch::Receiver<bool>;

/// Descriptors one connection may hold at once: the client and upstream sockets, and
/// a pipe (two descriptors) per direction once splice takes over.
pub const DESCRIPTORS_PER_CONNECTION: u64 = 6;
/// Descriptors kept aside for listeners, resolver sockets, the runtime and logs.
pub const DESCRIPTOR_RESERVE: u64 = 64;
/// After the grace period, how long cut connections get to write their log lines.
pub const CUT_WAIT: Duration = Duration::from_secs(2);

/// Installs the signal handlers and returns the notice; the returned task lives as
/// long as the runtime.
pub fn on_signals() -> Result<Shutdown> {
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::io("installing the SIGTERM handler", e))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Error::io("installing the SIGINT handler", e))?;
    let (notify, notice) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        let _ = notify.send(true);
        // Keep the sender alive so receivers see `true` rather than a closed channel.
        std::future::pending::<()>().await;
    });
    Ok(notice)
}

/// Waits until `shutdown` turns `true` (or its sender is gone).
pub async fn requested(shutdown: &mut Shutdown) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

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

/// Binds `port` on every address: dual-stack when IPv6 is available, else IPv4.
pub async fn bind_all(port: u16) -> Result<TcpListener> {
    match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).await {
        Ok(listener) => Ok(listener),
        Err(_) => TcpListener::bind(("0.0.0.0", port))
            .await
            .map_err(|e| Error::io(format!("listening on port {port}"), e)),
    }
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

/// Accepts on `listener` until shutdown is requested (then the listener is closed, so
/// new connections are refused). Each connection goes to `handle` with the client's
/// address and its slot, or `None` when the cap is reached.
///
/// When the process is out of descriptors, a spare one is released to take the
/// waiting connection and close it at once (the client learns now instead of waiting
/// in the backlog); failures are logged at most once every few seconds, with a count.
pub async fn accept_until_shutdown(
    listener: TcpListener,
    slots: ConnectionSlots,
    mut shutdown: Shutdown,
    mut handle: impl FnMut(TcpStream, SocketAddr, Option<OwnedSemaphorePermit>),
) {
    let mut spare = spare_descriptor();
    let mut failures = FailureLog::default();
    loop {
        tokio::select! {
            _ = requested(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                    handle(stream, peer, slots.take());
                }
                Err(error) => {
                    let out_of_descriptors = matches!(
                        error.raw_os_error(),
                        Some(nix::libc::EMFILE | nix::libc::ENFILE)
                    );
                    let mut shed = false;
                    if out_of_descriptors && spare.take().is_some() {
                        shed = matches!(listener.accept().now_or_never(), Some(Ok(_)));
                        spare = spare_descriptor();
                    }
                    failures.record(&error, shed);
                    if !shed {
                        // Nothing was taken off the queue: wait before trying again.
                        tokio::time::sleep(failures.backoff()).await;
                    }
                }
            }
        }
    }
}

/// A descriptor kept only to be released when the process runs out of them.
fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Rate-limited reporting of accept failures, with a growing pause between attempts.
#[derive(Default)]
struct FailureLog {
    since_report: u64,
    shed: u64,
    last_report: Option<Instant>,
    streak: u32,
}

impl FailureLog {
    const REPORT_EVERY: Duration = Duration::from_secs(5);

    fn record(&mut self, error: &std::io::Error, shed: bool) {
        self.since_report += 1;
        self.shed += u64::from(shed);
        self.streak = self.streak.saturating_add(1);
        let due = self
            .last_report
            .is_none_or(|at| at.elapsed() >= Self::REPORT_EVERY);
        if due {
            tracing::warn!(
                %error,
                failures = self.since_report,
                closed_at_once = self.shed,
                "accept failed (out of descriptors or memory); connections are closed at once until it recovers"
            );
            self.last_report = Some(Instant::now());
            self.since_report = 0;
            self.shed = 0;
        }
    }

    /// 10 ms, doubling with each failure in a row, at most 1 s.
    fn backoff(&self) -> Duration {
        Duration::from_millis(10u64 << self.streak.min(7)).min(Duration::from_secs(1))
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

    #[test]
    fn accept_failures_back_off_up_to_a_second() {
        let mut log = FailureLog::default();
        let error = std::io::Error::from_raw_os_error(nix::libc::EMFILE);
        log.record(&error, false);
        assert_eq!(log.backoff(), Duration::from_millis(20));
        for _ in 0..20 {
            log.record(&error, false);
        }
        assert_eq!(log.backoff(), Duration::from_secs(1));
    }
}
