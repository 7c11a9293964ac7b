//! Idle detection for client connections: an I/O wrapper that records when bytes
//! last moved, and a future that completes once none have for the idle timeout.
//! It bounds keep-alive connections between requests and forwarded exchanges whose
//! upstream went silent; tunnels have their own in `tunnel::relay`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When bytes last moved on a connection, in milliseconds since it was accepted.
#[derive(Debug, Clone)]
pub struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: Arc::default(),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`.
    pub async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.last_ms.load(Ordering::Relaxed);
            tokio::time::sleep_until(self.start + Duration::from_millis(last) + idle).await;
            if self.last_ms.load(Ordering::Relaxed) == last {
                return;
            }
        }
    }
}

/// Wraps a stream, touching its [`Activity`] on every read or write that moves bytes.
#[derive(Debug)]
pub struct Watched<T> {
    inner: T,
    activity: Activity,
}

impl<T> Watched<T> {
    /// Starts watching `inner`.
    pub fn new(inner: T) -> Self {
        Watched {
            inner,
            activity: Activity::new(),
        }
    }

    /// The activity record, for [`Activity::idle_for`].
    pub fn activity(&self) -> Activity {
        self.activity.clone()
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn idle_is_measured_from_the_last_byte_moved() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut watched = Watched::new(near);
        let activity = watched.activity();
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(150)).await;
        watched.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        far.read_exact(&mut byte).await.unwrap();
        activity.idle_for(Duration::from_millis(200)).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(350),
            "{waited:?}: the write restarted the clock"
        );
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }
}
