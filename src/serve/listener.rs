//! Listening on all addresses, and the accept loop: a slot per connection, no spinning
//! when descriptors run out.

use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;

use super::limits::ConnectionSlots;
use super::shutdown::{Shutdown, requested};
use crate::error::{Error, Result};

/// Binds `port` on every address: dual-stack when IPv6 is available, else IPv4.
pub async fn bind_all(port: u16) -> Result<TcpListener> {
    match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).await {
        Ok(listener) => Ok(listener),
        Err(_) => TcpListener::bind(("0.0.0.0", port))
            .await
            .map_err(|e| Error::io(format!("listening on port {port}"), e)),
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
