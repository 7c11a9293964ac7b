//! Serving on every core the process is given: one worker per core, each a thread with
//! a single-threaded runtime of its own (the first is the calling thread) and its own
//! listening sockets, bound with SO_REUSEPORT so that the kernel spreads new connections
//! over the workers. A connection lives its whole life on the worker that accepted it:
//! no lock, queue or wakeup between threads on its path, one epoll instance per core.
//! What the workers share (the connection cap, the shutdown notice, the forwarders'
//! backends) is behind atomics and mutexes touched once per connection.
//!
//! Each worker also keeps a timer due within [`TIMER_FLOOR`]: tokio wakes its driver (a
//! write to an eventfd) whenever a timer is registered that is due earlier than every
//! timer already there, and a new connection's connect timeout (seconds away) would
//! otherwise be that timer, as open connections' idle timeouts lie further out.

use std::future::Future;
use std::net::TcpListener as StdListener;
use std::num::NonZero;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::time::MissedTickBehavior;

use super::shutdown::requested;
use crate::error::{Error, Result};

/// How far ahead each worker's earliest timer is at most.
const TIMER_FLOOR: Duration = Duration::from_secs(1);

/// The workers to run: the cores this process may use (its CPU affinity and cgroup CPU
/// quota), at least one.
pub fn count() -> usize {
    std::thread::available_parallelism().map_or(1, NonZero::get)
}

/// Runs `accept` on each worker's index and listeners: `per_worker[0]` on the current
/// runtime, each other set on a new thread with a runtime of its own. `accept` returns when shutdown
/// stops the accepting; then `drain` runs here, and the other workers' runtimes (with any
/// connection still on them) stop only after it.
///
/// Every worker is started before any accepts; a worker that cannot start is an error,
/// so no socket is left listening without a loop that accepts on it.
pub async fn serve_on_every_core<F, Fut>(
    per_worker: Vec<Vec<StdListener>>,
    accept: F,
    drain: impl Future<Output = ()>,
) -> Result<()>
where
    F: Fn(usize, Vec<TcpListener>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let mut per_worker = per_worker.into_iter();
    let own = register(per_worker.next().unwrap_or_default())?;
    let (release, released) = watch::channel(false);
    let mut workers = Vec::new();
    for (index, listeners) in per_worker.enumerate() {
        workers.push(start(index + 1, listeners, accept.clone(), released.clone()).await?);
    }
    let (accepting, exited): (Vec<_>, Vec<_>) = workers.into_iter().unzip();
    with_timer_floor(accept(0, own)).await;
    for accept_ended in accepting {
        let _ = accept_ended.await;
    }
    drain.await;
    release.send_replace(true);
    for worker_exited in exited {
        let _ = worker_exited.await;
    }
    Ok(())
}

/// A started worker: it says when its accept loops ended and when its thread is done.
type Started = (oneshot::Receiver<()>, oneshot::Receiver<()>);

/// Starts worker `index` on a thread of its own; returns once it accepts.
async fn start<F, Fut>(
    index: usize,
    listeners: Vec<StdListener>,
    accept: F,
    mut released: watch::Receiver<bool>,
) -> Result<Started>
where
    F: Fn(usize, Vec<TcpListener>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(format!("starting the runtime of worker {index}"), e))?;
    let (ready, is_ready) = oneshot::channel::<Result<()>>();
    let (accept_ended, accepting) = oneshot::channel();
    let (thread_done, exited) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("worker-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                let listeners = match register(listeners) {
                    Ok(listeners) => listeners,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                with_timer_floor(accept(index, listeners)).await;
                let _ = accept_ended.send(());
                requested(&mut released).await;
            });
            drop(runtime);
            let _ = thread_done.send(());
        })
        .map_err(|e| Error::io(format!("starting the thread of worker {index}"), e))?;
    match is_ready.await {
        Ok(Ok(())) => Ok((accepting, exited)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::State(format!("worker {index} ended while starting"))),
    }
}

/// Runs `work` while a timer due within [`TIMER_FLOOR`] stays registered beside it, so
/// the later timers that `work` registers do not wake the runtime's driver.
async fn with_timer_floor<T>(work: impl Future<Output = T>) -> T {
    let mut floor = tokio::time::interval(TIMER_FLOOR);
    floor.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = floor.tick() => {}
        }
    }
}

/// Registers listening sockets with the current runtime.
fn register(listeners: Vec<StdListener>) -> Result<Vec<TcpListener>> {
    listeners
        .into_iter()
        .map(|listener| {
            TcpListener::from_std(listener)
                .map_err(|e| Error::io("registering a listening socket", e))
        })
        .collect()
}

#[cfg(test)]
mod tests;
