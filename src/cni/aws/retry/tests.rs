use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

fn error(kind: FailureKind, code: Option<&str>) -> ApiError {
    ApiError {
        action: "AssignPrivateIpAddresses",
        kind,
        code: code.map(str::to_owned),
        message: "m".into(),
    }
}

#[test]
fn throttling_and_transient_errors_are_retried_nothing_else() {
    for code in [
        "RequestLimitExceeded",
        "Throttling",
        "InternalError",
        "ServiceUnavailable",
    ] {
        assert!(
            Policy::retryable(&error(FailureKind::Service, Some(code))),
            "{code}"
        );
    }
    for code in [
        "InvalidAllocationID.NotFound",
        "UnauthorizedOperation",
        "InvalidParameterValue",
    ] {
        assert!(
            !Policy::retryable(&error(FailureKind::Service, Some(code))),
            "{code}"
        );
    }
    assert!(
        !Policy::retryable(&error(FailureKind::Timeout, None)),
        "a timeout's outcome is unknown"
    );
    assert!(!Policy::retryable(&error(FailureKind::Unreachable, None)));
}

#[test]
fn delays_double_up_to_the_cap() {
    let p = Policy::ADD;
    let delays: Vec<u128> = (1..=6).map(|n| p.delay(n).as_millis()).collect();
    assert_eq!(delays, [250, 500, 1000, 2000, 2000, 2000]);
}

#[test]
fn next_gives_up_after_the_attempts_or_before_the_deadline() {
    let p = Policy::ADD;
    let throttled = error(FailureKind::Service, Some("RequestLimitExceeded"));
    let plenty = Duration::from_secs(60);
    assert_eq!(
        p.next(1, &throttled, plenty),
        Next::Retry(Duration::from_millis(250))
    );
    assert_eq!(
        p.next(3, &throttled, plenty),
        Next::Retry(Duration::from_secs(1))
    );
    assert_eq!(
        p.next(4, &throttled, plenty),
        Next::GiveUp,
        "4 attempts at most"
    );
    assert_eq!(
        p.next(1, &throttled, Duration::from_millis(300)),
        Next::GiveUp,
        "no time for another attempt"
    );
    assert_eq!(
        p.next(1, &error(FailureKind::Service, Some("AuthFailure")), plenty),
        Next::GiveUp
    );
}

#[test]
fn an_attempt_gets_its_time_or_what_is_left() {
    let p = Policy::ADD;
    assert_eq!(
        p.attempt_time(Duration::from_secs(60)),
        Some(Duration::from_secs(4))
    );
    assert_eq!(
        p.attempt_time(Duration::from_secs(1)),
        Some(Duration::from_secs(1))
    );
    assert_eq!(p.attempt_time(Duration::from_millis(50)), None);
}

#[tokio::test(start_paused = true)]
async fn run_retries_throttling_then_succeeds() {
    let calls = AtomicU32::new(0);
    let started = Instant::now();
    let got = run(
        &Policy::ADD,
        started + Duration::from_secs(9),
        "A",
        || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(error(FailureKind::Service, Some("RequestLimitExceeded"))),
                _ => Ok(7),
            }
        },
    )
    .await;
    assert_eq!(got, Ok(7));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(750),
        "250 ms, then 500 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn run_cuts_an_attempt_that_never_answers() {
    let started = Instant::now();
    let got: Result<(), ApiError> = run(
        &Policy::ADD,
        started + Duration::from_secs(9),
        "DescribeNetworkInterfaces",
        std::future::pending,
    )
    .await;
    let error = got.unwrap_err();
    assert_eq!(error.kind, FailureKind::Timeout);
    assert_eq!(
        error.to_string(),
        "DescribeNetworkInterfaces: no answer within 4000 ms"
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(4),
        "not retried: its outcome is unknown"
    );
    let late = run(&Policy::ADD, started, "A", || async {
        Ok::<_, ApiError>(())
    })
    .await;
    assert!(
        late.unwrap_err().message.contains("no time left"),
        "nothing starts after the deadline"
    );
}
