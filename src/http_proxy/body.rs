//! A body wrapper that counts the bytes passing through it and runs a closure once
//! the body is done (`true`) or dropped or failed before its end (`false`): how a
//! forwarded request's log line gets its byte counts and duration.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

type OnDone = Box<dyn FnOnce(bool) + Send + Sync>;

/// Wraps `B`, adding the length of each data frame to a shared counter.
pub struct Counted<B> {
    inner: B,
    count: Arc<AtomicU64>,
    on_done: Option<OnDone>,
}

impl<B> Counted<B> {
    /// Counts into `count`.
    pub fn new(inner: B, count: Arc<AtomicU64>) -> Self {
        Counted {
            inner,
            count,
            on_done: None,
        }
    }

    /// Runs `on_done` once: with `true` when the body ends, `false` when it fails or is
    /// dropped first.
    pub fn on_done(mut self, on_done: impl FnOnce(bool) + Send + Sync + 'static) -> Self {
        self.on_done = Some(Box::new(on_done));
        self
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(end) => {
                if let Some(done) = self.on_done.take() {
                    done(end.is_none());
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Counted<B> {
    fn drop(&mut self) {
        if let Some(done) = self.on_done.take() {
            done(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::sync::atomic::AtomicBool;

    #[tokio::test]
    async fn counts_data_and_reports_done_once() {
        let count = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let seen = done.clone();
        let body = Counted::new(Full::new(Bytes::from_static(b"hello world")), count.clone())
            .on_done(move |complete| {
                assert!(complete);
                seen.fetch_add(1, Ordering::Relaxed);
            });
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello world");
        assert_eq!(count.load(Ordering::Relaxed), 11);
        assert_eq!(
            done.load(Ordering::Relaxed),
            1,
            "ended once, and drop did not repeat it"
        );
    }

    #[test]
    fn a_dropped_body_still_reports() {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        drop(
            Counted::new(Full::new(Bytes::new()), Arc::default())
                .on_done(move |complete| set.store(!complete, Ordering::Relaxed)),
        );
        assert!(flag.load(Ordering::Relaxed));
    }
}
