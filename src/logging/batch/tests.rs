use super::*;

#[test]
fn a_quiet_process_writes_every_line_at_once() {
    let mut pending = Pending::default();
    let start = Instant::now();
    assert_eq!(pending.push(b"one\n", start), Push::WriteNow);
    assert_eq!(pending.take(start), b"one\n");
    let later = start + BATCH_DELAY;
    assert_eq!(pending.push(b"two\n", later), Push::WriteNow);
}

#[test]
fn lines_in_quick_succession_wait_for_a_full_batch_or_the_flusher() {
    let mut pending = Pending::default();
    let start = Instant::now();
    assert_eq!(pending.push(b"first\n", start), Push::WriteNow);
    let _ = pending.take(start);
    let soon = start + Duration::from_millis(1);
    assert_eq!(
        pending.push(b"second\n", soon),
        Push::Wait { started: true }
    );
    assert_eq!(
        pending.push(b"third\n", soon),
        Push::Wait { started: false },
        "a line joining a waiting batch does not restart it"
    );
    let line = vec![b'x'; BATCH_BYTES];
    assert_eq!(
        pending.push(&line, soon),
        Push::WriteNow,
        "a full batch goes out"
    );
    let batch = pending.take(soon);
    assert!(batch.starts_with(b"second\nthird\nxx"), "in order");
    assert_eq!(batch.len(), 13 + BATCH_BYTES);
    assert!(pending.take(soon).is_empty());
}

#[test]
fn a_waiting_batch_is_not_written_early_by_a_later_quiet_line() {
    // The flusher writes a started batch; a line after BATCH_DELAY joins it and writes
    // the whole batch, in order.
    let mut pending = Pending::default();
    let start = Instant::now();
    let _ = pending.push(b"a\n", start);
    let _ = pending.take(start);
    let _ = pending.push(b"b\n", start + Duration::from_millis(10));
    assert_eq!(
        pending.push(b"c\n", start + BATCH_DELAY * 2),
        Push::Wait { started: false }
    );
    assert_eq!(pending.take(start + BATCH_DELAY * 2), b"b\nc\n");
}
