//! Listening on all addresses (a socket per worker), and the accept loop: a slot per connection, no spinning
//! when descriptors run out.

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener as StdListener};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, sockopt,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;

use super::limits::ConnectionSlots;
use super::pod_addresses::PodAddresses;
use super::shutdown::{Shutdown, requested};
use crate::error::{Error, Result};

/// Binds `port` on every address, `count` sockets (one per worker, SO_REUSEPORT when
/// more than one): dual-stack when IPv6 is available, else IPv4. Port 0 picks a free
/// port for the first socket and binds the others to the same one.
pub fn bind_all(port: u16, count: usize) -> Result<Vec<StdListener>> {
    let failed = |e: Errno| Error::io(format!("listening on port {port}"), e.into());
    let first = bind_one(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), count > 1)
        .or_else(|_| bind_one(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), count > 1))
        .map_err(failed)?;
    let bound = first
        .local_addr()
        .map_err(|e| Error::io(format!("listening on port {port}"), e))?;
    let mut listeners = vec![first];
    while listeners.len() < count {
        listeners.push(bind_one(bound, true).map_err(failed)?);
    }
    Ok(listeners)
}

/// One listening socket on exactly `address`.
pub fn bind_at(address: SocketAddr) -> Result<StdListener> {
    bind_one(address, false).map_err(|e| Error::io(format!("listening on {address}"), e.into()))
}

/// One nonblocking listening socket on `address` (an IPv6 one accepts IPv4 too).
fn bind_one(address: SocketAddr, reuse_port: bool) -> nix::Result<StdListener> {
    let family = match address {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket::socket(family, SockType::Stream, flags, None)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuse_port {
        socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    if family == AddressFamily::Inet6 {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &false)?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(address))?;
    socket::listen(&fd, Backlog::MAXCONN)?;
    Ok(StdListener::from(fd))
}

/// Whether an accepted connection may be served.
pub enum Admission {
    /// It may: its share of the connection cap.
    Slot(OwnedSemaphorePermit),
    /// The connection cap is reached.
    Busy,
    /// It was made to an address of the egress interface: it came from the outside
    /// network, which never opens anything in (SPEC section 4). Logged here.
    EgressSide,
}

/// Accepts on `listener` until shutdown is requested (then the listener is closed, so
/// new connections are refused). Each connection goes to `handle` with its [`Peer`]
/// and its [`Admission`], judged on the addresses `pod` lists now (a local address
/// that cannot be read counts as the egress side: fail closed); the future `handle`
/// returns runs on a task of its own.
///
/// When the process is out of descriptors, a spare one is released to take the
/// waiting connection and close it at once (the client learns now instead of waiting
/// in the backlog); failures are logged at most once every few seconds, with a count.
pub async fn accept_until_shutdown<F>(
    listener: TcpListener,
    slots: ConnectionSlots,
    pod: Arc<PodAddresses>,
    mut shutdown: Shutdown,
    mut handle: impl FnMut(TcpStream, Peer, Admission) -> F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let mut spare = spare_descriptor();
    let mut failures = FailureLog::default();
    loop {
        tokio::select! {
            _ = requested(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let peer = Peer::new(SocketAddr::new(peer.ip().to_canonical(), peer.port()));
                    let admission = admit(&stream, peer, &pod, &slots);
                    tokio::spawn(handle(stream, peer, admission));
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

/// The admission of `stream` from `peer`: refused when it was made to an address of
/// the egress interface, else a slot of `slots` if one is free.
fn admit(stream: &TcpStream, peer: Peer, pod: &PodAddresses, slots: &ConnectionSlots) -> Admission {
    let local = stream.local_addr().map(|a| a.ip());
    if local
        .as_ref()
        .map_or(true, |local| pod.now().on_egress_side(*local))
    {
        tracing::warn!(
            connection = peer.connection,
            client = %peer.address,
            local = ?local.ok(),
            "refused a connection made to an address of the egress interface (from the outside network)"
        );
        return Admission::EgressSide;
    }
    slots.take().map_or(Admission::Busy, Admission::Slot)
}

/// An accepted client: its address, and the id that the log lines about its connection
/// share (unique in the process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address and port.
    pub address: SocketAddr,
    /// The connection id.
    pub connection: u64,
}

impl Peer {
    /// A newly accepted client from `address`, with the next connection id.
    pub fn new(address: SocketAddr) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Peer {
            address,
            connection: NEXT.fetch_add(1, Ordering::Relaxed),
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
