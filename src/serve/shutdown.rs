//! SIGTERM/SIGINT as a shutdown notice any task can wait for.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// A receiver that turns `true` once shutdown (or the cut) was requested.
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
