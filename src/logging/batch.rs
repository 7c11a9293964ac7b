//! Log output in batches: one write for many lines.
//!
//! Under load the proxies log a line per connection. A write(2) for each would be one in
//! fifteen of a connection's system calls, and on a pipe to the container runtime a
//! wakeup of its reader each time. Lines are appended to a buffer instead, which goes
//! out in one write when it holds [`BATCH_BYTES`], when a line comes [`BATCH_DELAY`] or
//! more after the last write (so a quiet process writes every line at once), and
//! otherwise from a flusher thread at most [`BATCH_DELAY`] after the line that started
//! the batch. [`flush`] writes what is left: the process calls it before it exits, on an
//! error and on a panic too. Only a SIGKILL loses lines: those of the last
//! [`BATCH_DELAY`].

use std::io::{self, Write};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// A batch goes out once it holds this many bytes.
pub const BATCH_BYTES: usize = 32 << 10;
/// A line waits in the buffer at most this long.
pub const BATCH_DELAY: Duration = Duration::from_millis(50);

/// Writes the lines still in the buffer. Gives up after a second if the buffer stays
/// locked (a panic while this thread held it must not hang the exit).
pub fn flush() {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match BATCH.state.try_lock() {
            Ok(mut pending) => return pending.write_out(),
            Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner().write_out(),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(std::sync::TryLockError::WouldBlock) => return,
        }
    }
}

/// The subscriber's writer: appends to the shared batch.
pub struct Batched;

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Batched;

    fn make_writer(&'a self) -> Self::Writer {
        Batched
    }
}

impl Write for Batched {
    /// Takes a whole event (the subscriber writes each in one call).
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        BATCH.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The buffer, shared by every thread, and the flusher's wakeup.
struct Batch {
    state: Mutex<Pending>,
    started: Condvar,
}

static BATCH: LazyLock<Batch> = LazyLock::new(|| Batch {
    state: Mutex::new(Pending::default()),
    started: Condvar::new(),
});

/// Lines not written yet, and when the last write was: the batching rule, kept apart
/// from the writing so that it is tested without stderr.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    last_write: Option<Instant>,
    /// Whether the flusher thread runs.
    flusher: bool,
}

/// What a new line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Push {
    /// Write the batch now.
    WriteNow,
    /// Let it wait; `started`: the line began a new batch (wake the flusher).
    Wait { started: bool },
}

impl Pending {
    fn push(&mut self, line: &[u8], now: Instant) -> Push {
        let started = self.bytes.is_empty();
        self.bytes.extend_from_slice(line);
        let quiet = self
            .last_write
            .is_none_or(|at| now.saturating_duration_since(at) >= BATCH_DELAY);
        if (started && quiet) || self.bytes.len() >= BATCH_BYTES {
            Push::WriteNow
        } else {
            Push::Wait { started }
        }
    }

    /// The batch to write now.
    fn take(&mut self, now: Instant) -> Vec<u8> {
        self.last_write = Some(now);
        std::mem::take(&mut self.bytes)
    }

    /// Writes the batch, holding the lock so that batches keep their order.
    fn write_out(&mut self) {
        let bytes = self.take(Instant::now());
        if !bytes.is_empty() {
            // Nowhere to report a failed log write: the lines are dropped, as eprintln's.
            let _ = io::stderr().lock().write_all(&bytes);
        }
    }
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, line: &[u8]) {
        let mut pending = self.lock();
        match pending.push(line, Instant::now()) {
            Push::WriteNow => pending.write_out(),
            Push::Wait { started } => {
                if !pending.flusher {
                    // If the thread cannot start, lines wait for the next write or the exit.
                    pending.flusher = std::thread::Builder::new()
                        .name("log-flush".into())
                        .spawn(|| BATCH.flush_forever())
                        .is_ok();
                }
                if started {
                    self.started.notify_one();
                }
            }
        }
    }

    /// The flusher: waits for a batch to start, gives it [`BATCH_DELAY`], writes it.
    fn flush_forever(&self) {
        loop {
            let pending = self.lock();
            let pending = self
                .started
                .wait_while(pending, |p| p.bytes.is_empty())
                .unwrap_or_else(|p| p.into_inner());
            drop(pending);
            std::thread::sleep(BATCH_DELAY);
            self.lock().write_out();
        }
    }
}

#[cfg(test)]
mod tests;
