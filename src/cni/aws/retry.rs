//! Time limits and retries of EC2 calls. The SDK's own retries are off and it has no
//! operation timeout by default, so each call runs here: every attempt is cut after
//! [`Policy::attempt_timeout`] (less when the deadline is nearer), throttling and
//! EC2's transient errors are retried with a growing delay while attempts and time
//! remain, and anything else (a refusal, a timeout whose outcome is unknown, an
//! endpoint that cannot be reached) is returned at once. The decisions are pure
//! ([`Policy::next`]); [`run`] only sleeps and calls.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::model::{ApiError, FailureKind};

/// The error codes EC2 uses for throttling.
const THROTTLING: [&str; 5] = [
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestThrottledException",
];
/// The error codes of EC2's transient failures (its side, worth another try).
const TRANSIENT: [&str; 5] = [
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "RequestTimeout",
];

/// Limits of the calls of one phase (ADD's calls, a rollback, DEL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The longest one attempt may take.
    pub attempt_timeout: Duration,
    /// Attempts a call at most (the first included).
    pub max_attempts: u32,
    /// The delay before the second attempt; it doubles for each further one.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Return the error.
    GiveUp,
}

/// The shortest attempt worth starting.
const SHORTEST_ATTEMPT: Duration = Duration::from_millis(100);

impl Policy {
    /// ADD's calls: 4 s an attempt, 4 attempts, 250 ms doubling up to 2 s.
    pub const ADD: Policy = Policy {
        attempt_timeout: Duration::from_secs(4),
        max_attempts: 4,
        base_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(2),
    };
    /// A rollback's calls: shorter, fewer.
    pub const ROLLBACK: Policy = Policy {
        attempt_timeout: Duration::from_secs(2),
        max_attempts: 3,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
    };

    /// Whether `error` is worth another attempt: throttling, or EC2's transient
    /// failures.
    pub fn retryable(error: &ApiError) -> bool {
        error.kind == FailureKind::Service
            && error
                .code
                .as_deref()
                .is_some_and(|code| THROTTLING.contains(&code) || TRANSIENT.contains(&code))
    }

    /// The delay after the failed attempt number `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// How long the next attempt may take with `remaining` until the deadline;
    /// `None` when too little is left to start one.
    pub fn attempt_time(&self, remaining: Duration) -> Option<Duration> {
        let time = self.attempt_timeout.min(remaining);
        (time >= SHORTEST_ATTEMPT).then_some(time)
    }

    /// After attempt number `attempt` failed with `error`, `remaining` before the
    /// deadline: retry after a delay, or give up.
    pub fn next(&self, attempt: u32, error: &ApiError, remaining: Duration) -> Next {
        if !Self::retryable(error) || attempt >= self.max_attempts {
            return Next::GiveUp;
        }
        let delay = self.delay(attempt);
        match remaining
            .checked_sub(delay)
            .and_then(|left| self.attempt_time(left))
        {
            Some(_) => Next::Retry(delay),
            None => Next::GiveUp,
        }
    }
}

/// Runs `call` (an attempt a time) until it succeeds or [`Policy::next`] gives up,
/// each attempt cut by its time limit, nothing started after `deadline`. `action`
/// names the call in a timeout.
pub async fn run<T, F, Fut>(
    policy: &Policy,
    deadline: Instant,
    action: &'static str,
    mut call: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut attempt = 1;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Some(time) = policy.attempt_time(remaining) else {
            return Err(ApiError {
                action,
                kind: FailureKind::Timeout,
                code: None,
                message: "no time left for the call before the deadline".into(),
            });
        };
        let error = match tokio::time::timeout(time, call()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => error,
            Err(_) => ApiError {
                action,
                kind: FailureKind::Timeout,
                code: None,
                message: format!("no answer within {} ms", time.as_millis()),
            },
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        match policy.next(attempt, &error, remaining) {
            Next::Retry(delay) => {
                tracing::info!(action, attempt, error = %error, delay_ms = delay.as_millis() as u64, "EC2 call retried");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Next::GiveUp => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests;
