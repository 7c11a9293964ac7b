//! Process-wide concerns of the long-running roles: SIGTERM/SIGINT as a shutdown
//! notice any task can wait for, listening on all addresses, the connection cap
//! with its drain, and the open-file limit.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// A receiver that turns `true` once shutdown was requested.
pub type Shutdown = watch::Receiver<bool>;

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

/// Raises the open-file soft limit to the hard limit and returns it: every tunnel
/// holds two sockets and, while data flows, two pipes.
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

/// The connection cap of a proxy: a slot per open client connection, and at shutdown
/// the wait for the slots to come back.
#[derive(Clone)]
pub struct ConnectionSlots {
    slots: Arc<Semaphore>,
    max: u32,
}

impl ConnectionSlots {
    /// A cap of `max` concurrent connections.
    pub fn new(max: u32) -> Self {
        ConnectionSlots {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// A slot, held for as long as the connection lives; `None` when all are taken.
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    fn open(&self) -> usize {
        self.max as usize - self.slots.available_permits()
    }

    /// After accepting has stopped: waits until every connection has ended, or `grace`.
    pub async fn drain(&self, grace: Duration) {
        tracing::info!(open = self.open(), grace_period = ?grace, "stopped accepting; draining");
        match tokio::time::timeout(grace, self.slots.acquire_many(self.max)).await {
            Ok(_) => tracing::info!("all connections finished"),
            Err(_) => tracing::warn!(open = self.open(), "grace period over; closing the rest"),
        }
    }
}

/// Accepts on `listener` until shutdown is requested (then the listener is closed, so
/// new connections are refused). Each connection goes to `handle` with the client's
/// address and its slot, or `None` when the cap is reached.
pub async fn accept_until_shutdown(
    listener: TcpListener,
    slots: ConnectionSlots,
    mut shutdown: Shutdown,
    mut handle: impl FnMut(TcpStream, SocketAddr, Option<OwnedSemaphorePermit>),
) {
    loop {
        tokio::select! {
            _ = requested(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                    handle(stream, peer, slots.take());
                }
                Err(error) => {
                    // Out of descriptors or memory: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}
