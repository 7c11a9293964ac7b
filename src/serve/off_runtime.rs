//! Work that must not hold a runtime thread: reading a list file (which may be slow, or
//! hang on a file system that does not answer), parsing a reloaded list and comparing
//! it with the last one (linear, but tens of milliseconds for a list of 30,000 lines).
//! A worker's runtime also serves connections and, on the first worker, `/healthz`: such
//! work runs on a thread of its own, whose result the task awaits. A thread rather than
//! tokio's blocking pool, because dropping a runtime waits for its blocking tasks: a read
//! that hangs would hold the process's exit after SIGTERM; a thread of its own does not.

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Runs `work` on a new thread named `name` and waits for its result without holding
/// the runtime. An error when the thread cannot start or panics.
pub async fn run<T, F>(name: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (done, result) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = done.send(work());
        })
        .map_err(|e| Error::io(format!("starting the thread {name}"), e))?;
    result
        .await
        .map_err(|_| Error::State(format!("the thread {name} ended without a result")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_work_runs_on_another_thread_and_a_panic_is_an_error() {
        let here = std::thread::current().id();
        let there = run("off-runtime-test", || std::thread::current().id()).await;
        assert_ne!(there.unwrap(), here);
        let panicked = run("off-runtime-test", || panic!("on purpose")).await;
        let error: Result<()> = panicked;
        assert!(
            error
                .unwrap_err()
                .to_string()
                .contains("ended without a result")
        );
    }
}
