//! Assertions and waits the suites share: an error exit with its message, a condition
//! that holds within a time limit, a field of a log line.

use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

/// A process ended with exit `code` and an `error:` line on stderr containing every one
/// of `needles`.
pub fn assert_error_exit(
    status: Option<ExitStatus>,
    stderr: &str,
    code: i32,
    needles: &[&str],
    what: &str,
) {
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(code),
        "{what} must exit {code} (got {status:?})\nstderr:\n{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.trim_start().starts_with("error:") && needles.iter().all(|n| l.contains(n))),
        "{what}: no `error:` line with {needles:?}\nstderr:\n{stderr}"
    );
}

/// Retry `attempt` every 100 ms until it succeeds, at most `limit`: its value, or a
/// panic with `what` and the last error.
pub fn eventually<T>(
    limit: Duration,
    what: &str,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let end = Instant::now() + limit;
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= end => panic!("{what} within {limit:?}: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The value of `key=` in a log line (values without spaces).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}
