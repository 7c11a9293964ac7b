//! Relaying bytes both ways between two TCP connections, used by CONNECT tunnels
//! and the DNS proxy's forwarder.
//!
//! Bulk data moves with splice(2) through a pipe, socket to pipe to socket, so it
//! never enters user space; the first 64 KiB of each direction are copied instead,
//! which is cheaper for short exchanges. The first direction to end on EOF shuts down
//! the write side of the other connection (half-close), so the opposite direction
//! keeps working; the second needs no shutdown, as the relay closes both connections
//! when it returns. The relay ends when both directions have ended, on an error in
//! either, or when no byte has moved either way for the idle timeout.
//!
//! A short read (fewer bytes than the buffer holds) drains the socket, so the next read
//! waits for the kernel's next event instead of trying and failing: a request-reply
//! exchange costs one read per message and one for the end of stream. When the peer's
//! FIN had already arrived before such a read, its bytes are the last: they are sent
//! with `MSG_MORE` and the end follows at once, so data and FIN leave in one segment
//! and the read of the end of stream is skipped.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::time::Instant;

use crate::serve::shutdown::{Shutdown, requested};
use pipe::{Pipe, splice};

/// Bytes moved by a relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    /// From the client to the server.
    pub up: u64,
    /// From the server to the client.
    pub down: u64,
}

/// How a relay ended.
#[derive(Debug)]
pub enum RelayEnd {
    /// Both sides closed their sending direction.
    Closed,
    /// Nothing moved for the idle timeout.
    Idle,
    /// Cut at the end of the shutdown grace period.
    Cut,
    /// A socket error ended it.
    Failed(io::Error),
}

impl RelayEnd {
    /// The `detail` of a log line: how the `what` (tunnel, connection) ended.
    pub fn describe(&self, what: &str, idle: Duration) -> String {
        match self {
            RelayEnd::Closed => format!("{what} closed"),
            RelayEnd::Idle => format!("{what} idle for {idle:?}, closed"),
            RelayEnd::Cut => format!("{what} cut at the end of the shutdown grace period"),
            RelayEnd::Failed(e) => format!("{what} ended: {e}"),
        }
    }
}

/// Bytes each direction copies through a buffer before switching to splice.
const COPY_LIMIT: u64 = 64 << 10;
/// Buffer size of the copy phase.
const COPY_CHUNK: usize = 16 << 10;
/// Bytes after which a direction counts as bulk and gets a larger pipe.
const BULK_THRESHOLD: u64 = 4 << 20;
/// Pipe size for bulk directions: fewer, larger splices. Pipe buffers count against a
/// per-user quota (`fs.pipe-user-pages-soft`), so short tunnels keep the default.
const BULK_PIPE: usize = 1 << 20;

/// Relays until both directions end, an error, `idle` without traffic, or `cut`, and
/// closes both connections. `transfer` is updated as bytes move, so a caller can read
/// it even after a timeout.
pub async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    idle: Duration,
    transfer: &Counters,
    cut: &mut Shutdown,
) -> RelayEnd {
    let start = Instant::now();
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let one_ended = AtomicBool::new(false);
    let up = pump(
        client_read,
        server_write,
        Activity {
            count: &transfer.up,
            last_ms: &transfer.last_activity_ms,
            start,
            one_ended: &one_ended,
        },
    );
    let down = pump(
        server_read,
        client_write,
        Activity {
            count: &transfer.down,
            last_ms: &transfer.last_activity_ms,
            start,
            one_ended: &one_ended,
        },
    );
    // Joined without an async block: one copy of each direction's state, not two.
    let both = futures::future::try_join(up, down);
    tokio::pin!(both);
    loop {
        let last = Duration::from_millis(transfer.last_activity_ms.load(Ordering::Relaxed));
        let deadline = start + last + idle;
        tokio::select! {
            result = &mut both => return match result {
                Ok(((), ())) => RelayEnd::Closed,
                Err(e) => RelayEnd::Failed(e),
            },
            _ = tokio::time::sleep_until(deadline) => {
                let now = Duration::from_millis(transfer.last_activity_ms.load(Ordering::Relaxed));
                if now == last {
                    return RelayEnd::Idle;
                }
            }
            _ = requested(cut) => return RelayEnd::Cut,
        }
    }
}

/// Byte counters of a relay, shared with the code that logs it.
#[derive(Debug, Default)]
pub struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    last_activity_ms: AtomicU64,
}

impl Counters {
    /// Counts bytes sent upstream outside the relay (e.g. bytes read ahead with the request).
    pub fn add_up(&self, bytes: u64) {
        self.up.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The bytes moved so far.
    pub fn transfer(&self) -> Transfer {
        Transfer {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
        }
    }
}

/// What a direction records as it moves bytes, and what both directions share.
struct Activity<'a> {
    count: &'a AtomicU64,
    last_ms: &'a AtomicU64,
    start: Instant,
    /// Set by the first direction to end.
    one_ended: &'a AtomicBool,
}

impl Activity<'_> {
    fn record(&self, bytes: usize) {
        self.count.fetch_add(bytes as u64, Ordering::Relaxed);
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// The direction ended on EOF: the first to end half-closes `dst`; the second
    /// leaves that to the close that follows when the relay returns.
    fn end(&self, dst: &TcpStream) -> io::Result<()> {
        if self.one_ended.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        shutdown_write(dst)
    }
}

/// Moves bytes from `src` to `dst` until EOF, then ends the direction.
///
/// The first [`COPY_LIMIT`] bytes are copied through a buffer that lives only while it
/// holds data (an idle connection keeps none); a pipe costs four system calls to set up
/// and tear down, more than short exchanges move. Past that, splice takes over.
async fn pump(
    mut src: ReadHalf<'_>,
    mut dst: WriteHalf<'_>,
    activity: Activity<'_>,
) -> io::Result<()> {
    let mut moved = 0u64;
    while moved < COPY_LIMIT {
        // The buffer is made only once data is there, so a waiting connection holds none.
        let ready = src.as_ref().ready(Interest::READABLE).await?;
        let mut buffer = Vec::with_capacity(COPY_CHUNK);
        let read = src.read_buf(&mut buffer).await?;
        if read == 0 {
            return activity.end(dst.as_ref());
        }
        // The FIN came before this read and the read drained the socket: nothing follows.
        if ready.is_read_closed() && buffer.len() < buffer.capacity() {
            send_corked(dst.as_ref(), &buffer).await?;
            activity.record(read);
            return activity.end(dst.as_ref());
        }
        dst.write_all(&buffer).await?;
        activity.record(read);
        moved += read as u64;
    }
    // Boxed: the splice phase's state is allocated only for the connections that reach
    // it, so every idle connection's task stays small.
    Box::pin(splice_rest(src.as_ref(), dst.as_ref(), activity, moved)).await
}

/// The rest of a direction, through a pipe with splice(2), after `moved` copied bytes.
///
/// Between writes that `dst` takes only in part, the pipe is topped up from `src`
/// without waiting, so the sender's window opens again while `dst` catches up.
async fn splice_rest(
    src: &TcpStream,
    dst: &TcpStream,
    activity: Activity<'_>,
    mut moved: u64,
) -> io::Result<()> {
    let mut pipe = Pipe::new()?;
    let mut held = 0;
    let mut src_ended = false;
    loop {
        let read = if held == 0 {
            if src_ended {
                return activity.end(dst);
            }
            let room = pipe.capacity;
            Some(
                transfer(src, Interest::READABLE, || {
                    splice(src.as_fd(), pipe.write.as_fd(), room)
                })
                .await?,
            )
        } else if !src_ended && held < pipe.capacity {
            // Not through the socket's readiness: with bytes in the pipe, EAGAIN may mean
            // a full pipe rather than an empty socket, and must not clear the readiness.
            match splice(src.as_fd(), pipe.write.as_fd(), pipe.capacity - held) {
                Ok(read) => Some(read),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        match read {
            Some(0) => src_ended = true,
            Some(read) => {
                held += read;
                activity.record(read);
                moved += read as u64;
            }
            None => {}
        }
        if held > 0 {
            held -= transfer(dst, Interest::WRITABLE, || {
                splice(pipe.read.as_fd(), dst.as_fd(), held)
            })
            .await?;
        }
        if moved >= BULK_THRESHOLD && pipe.capacity < BULK_PIPE {
            pipe.grow(BULK_PIPE);
        }
    }
}

/// Runs `op` on `stream` once it is ready for `interest`, retrying on spurious readiness.
async fn transfer<T>(
    stream: &TcpStream,
    interest: Interest,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        stream.ready(interest).await?;
        match stream.try_io(interest, &mut op) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Sends all of `bytes` with `MSG_MORE`: the kernel holds them for the FIN (shutdown or
/// close) that the caller sends next, so both leave in one segment. Polled by hand, not
/// through `ready().await`, so that its state adds next to nothing to every relay's.
async fn send_corked(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    let more = socket::MsgFlags::from_bits_retain(nix::libc::MSG_MORE);
    std::future::poll_fn(|cx| {
        while !bytes.is_empty() {
            std::task::ready!(stream.poll_write_ready(cx))?;
            let sent = stream.try_io(Interest::WRITABLE, || {
                socket::send(stream.as_raw_fd(), bytes, more).map_err(io::Error::from)
            });
            match sent {
                Ok(sent) => bytes = &bytes[sent..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    })
    .await
}

fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    match socket::shutdown(stream.as_raw_fd(), socket::Shutdown::Write) {
        Ok(()) | Err(Errno::ENOTCONN) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

mod pipe;
#[cfg(test)]
mod tests;
