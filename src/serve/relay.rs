//! Relaying bytes both ways between two TCP connections, used by CONNECT tunnels
//! and the DNS proxy's forwarder.
//!
//! Bulk data moves with splice(2) through a pipe, socket to pipe to socket, so it
//! never enters user space; the first 64 KiB of each direction are copied instead,
//! which is cheaper for short exchanges. Each direction ends on EOF by shutting down
//! the write side of the other connection (half-close), so the opposite direction
//! keeps working. The relay ends when both directions have ended, on an error in
//! either, or when no byte has moved either way for the idle timeout.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::libc;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::serve::process::{Shutdown, requested};

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

/// Relays until both directions end, an error, `idle` without traffic, or `cut`.
/// `transfer` is updated as bytes move, so a caller can read it even after a timeout.
pub async fn relay(
    client: &TcpStream,
    server: &TcpStream,
    idle: Duration,
    transfer: &Counters,
    cut: &mut Shutdown,
) -> RelayEnd {
    let start = Instant::now();
    let up = pump(
        client,
        server,
        &transfer.up,
        &transfer.last_activity_ms,
        start,
    );
    let down = pump(
        server,
        client,
        &transfer.down,
        &transfer.last_activity_ms,
        start,
    );
    let both = async {
        let (a, b) = tokio::join!(up, down);
        a.and(b)
    };
    tokio::pin!(both);
    loop {
        let last = Duration::from_millis(transfer.last_activity_ms.load(Ordering::Relaxed));
        let deadline = start + last + idle;
        tokio::select! {
            result = &mut both => return match result {
                Ok(()) => RelayEnd::Closed,
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

/// Moves bytes from `src` to `dst` until EOF, then half-closes `dst`.
///
/// The first [`COPY_LIMIT`] bytes are copied through a buffer that lives only while it
/// holds data (an idle connection keeps none); a pipe costs four system calls to set up
/// and tear down, more than short exchanges move. Past that, splice takes over.
async fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    count: &AtomicU64,
    activity: &AtomicU64,
    start: Instant,
) -> io::Result<()> {
    let mut moved = 0u64;
    let record = |n: usize| {
        count.fetch_add(n as u64, Ordering::Relaxed);
        activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    };
    while moved < COPY_LIMIT {
        // The buffer is made only once data is there, so a waiting connection holds none.
        let (read, buffer) = transfer(src, Interest::READABLE, || {
            let mut buffer = Vec::with_capacity(COPY_CHUNK);
            src.try_read_buf(&mut buffer).map(|read| (read, buffer))
        })
        .await?;
        if read == 0 {
            return shutdown_write(dst);
        }
        let mut sent = 0;
        while sent < read {
            sent += transfer(dst, Interest::WRITABLE, || {
                dst.try_write(&buffer[sent..read])
            })
            .await?;
        }
        record(read);
        moved += read as u64;
    }
    let mut pipe = Pipe::new()?;
    loop {
        let chunk = pipe.capacity;
        let read = transfer(src, Interest::READABLE, || {
            splice(src.as_raw_fd(), pipe.write.as_raw_fd(), chunk)
        })
        .await?;
        if read == 0 {
            return shutdown_write(dst);
        }
        let mut left = read;
        while left > 0 {
            left -= transfer(dst, Interest::WRITABLE, || {
                splice(pipe.read.as_raw_fd(), dst.as_raw_fd(), left)
            })
            .await?;
        }
        record(read);
        moved += read as u64;
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

fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    // SAFETY: shutdown(2) on a descriptor owned by `stream`, which outlives the call.
    match unsafe { libc::shutdown(stream.as_raw_fd(), libc::SHUT_WR) } {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
            e => Err(e),
        },
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: both descriptors are open for the duration of the call; null offsets
    // are valid for sockets and pipes.
    let moved = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    if moved < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(moved as usize)
    }
}

/// A pipe used as the in-kernel buffer between two sockets.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: pipe2(2) writes two descriptors into the array on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the descriptors were just created and are owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_GETPIPE_SZ only queries a pipe this function owns.
        let capacity = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        Ok(Pipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(1 << 16),
        })
    }

    /// Asks for a larger (empty) pipe; when the quota refuses, the current size stays.
    fn grow(&mut self, size: usize) {
        // SAFETY: F_SETPIPE_SZ on a pipe this struct owns.
        let granted = unsafe {
            libc::fcntl(
                self.write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                size as libc::c_int,
            )
        };
        if let Ok(granted) = usize::try_from(granted) {
            self.capacity = granted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A cut notice that never turns: its sender lives as long as the tests.
    fn never_cut() -> Shutdown {
        static NEVER: std::sync::LazyLock<tokio::sync::watch::Sender<bool>> =
            std::sync::LazyLock::new(|| tokio::sync::watch::channel(false).0);
        NEVER.subscribe()
    }

    /// A connected pair of loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let connect = TcpStream::connect(listener.local_addr().unwrap());
        let (connected, accepted) = tokio::join!(connect, listener.accept());
        (connected.unwrap(), accepted.unwrap().0)
    }

    /// A client and a server end, and the relay's two sockets between them.
    struct Lab {
        client: TcpStream,
        client_side: TcpStream,
        server_side: TcpStream,
        server: TcpStream,
    }

    async fn lab() -> Lab {
        let (client, client_side) = pair().await;
        let (server_side, server) = pair().await;
        Lab {
            client,
            client_side,
            server_side,
            server,
        }
    }

    #[tokio::test]
    async fn relays_both_ways_with_half_close_and_counts_bytes() {
        let Lab {
            mut client,
            client_side,
            server_side,
            mut server,
        } = lab().await;
        let counters = Counters::default();
        let mut cut = never_cut();
        let relay = relay(
            &client_side,
            &server_side,
            Duration::from_secs(5),
            &counters,
            &mut cut,
        );
        let peers = async {
            client.write_all(&vec![7u8; 300_000]).await.unwrap();
            client.shutdown().await.unwrap();
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            assert_eq!(
                got.len(),
                300_000,
                "server saw the whole upload and then EOF"
            );
            server.write_all(b"answer after half-close").await.unwrap();
            server.shutdown().await.unwrap();
            let mut back = String::new();
            client.read_to_string(&mut back).await.unwrap();
            assert_eq!(back, "answer after half-close");
        };
        let (end, ()) = tokio::join!(relay, peers);
        assert!(matches!(end, RelayEnd::Closed), "{end:?}");
        assert_eq!(
            counters.transfer(),
            Transfer {
                up: 300_000,
                down: 23
            }
        );
    }

    #[tokio::test]
    async fn bulk_data_arrives_intact_after_the_pipe_grows() {
        let Lab {
            mut client,
            client_side,
            server_side,
            mut server,
        } = lab().await;
        let counters = Counters::default();
        let mut cut = never_cut();
        let relay = relay(
            &client_side,
            &server_side,
            Duration::from_secs(5),
            &counters,
            &mut cut,
        );
        let payload: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let send = async {
            server.write_all(&payload).await.unwrap();
            server.shutdown().await.unwrap();
        };
        let receive = async {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            client.shutdown().await.unwrap();
            got
        };
        let (end, (), got) = tokio::join!(relay, send, receive);
        assert!(matches!(end, RelayEnd::Closed), "{end:?}");
        assert!(
            got == payload,
            "8 MiB arrived altered or incomplete ({} bytes)",
            got.len()
        );
        assert_eq!(counters.transfer().down, payload.len() as u64);
    }

    #[tokio::test]
    async fn an_idle_relay_ends_after_the_timeout() {
        // The ends stay open (bound, not dropped): the relay must end for idleness, not EOF.
        let Lab {
            client: _client,
            client_side,
            server_side,
            server: _server,
        } = lab().await;
        let counters = Counters::default();
        let started = Instant::now();
        let end = relay(
            &client_side,
            &server_side,
            Duration::from_millis(200),
            &counters,
            &mut never_cut(),
        )
        .await;
        assert!(matches!(end, RelayEnd::Idle), "{end:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_cut_ends_an_open_relay_at_once() {
        let Lab {
            client: _client,
            client_side,
            server_side,
            server: _server,
        } = lab().await;
        let (cut, mut notice) = tokio::sync::watch::channel(false);
        let counters = Counters::default();
        let relay = relay(
            &client_side,
            &server_side,
            Duration::from_secs(30),
            &counters,
            &mut notice,
        );
        let cutter = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cut.send_replace(true);
        };
        let started = Instant::now();
        let (end, ()) = tokio::join!(relay, cutter);
        assert!(matches!(end, RelayEnd::Cut), "{end:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
