//! List files that are not what they should be, as root: the proxies read only regular
//! files of at most 4 MiB (a FIFO or a link to `/dev/zero` moved over the list is
//! refused without blocking anything or filling memory, the last good list stays), only
//! once the file stopped changing (a file written in two parts is never applied half
//! written), and off their serving threads (a 30k-line reload leaves `/healthz`
//! answering). At start, such a file is a startup error that names it. Each test has
//! its own topology and list directory. These tests FAIL (never skip) without root.

mod common;

use common::http::{connect_tunnel, echo_then_report};
use common::lists::{ListDir, endpoint_get_here, first_line, lines_with, metrics, reloads, start};
use common::*;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ECHO_PORT: u16 = 7000;
const WAIT: Duration = Duration::from_secs(5);
const HTTP_VAR: &str = "EGRESS_HTTP_PROXY_DESTINATION_FILE";
const DNS_VAR: &str = "EGRESS_DNS_PROXY_DESTINATION_FILE";
/// The line logged when the file cannot be read.
const UNREADABLE: &str = "cannot read the list file";

/// The CONNECT status for `ip` (port [`ECHO_PORT`]) through the proxy.
fn status(t: &Topology, ip: &str) -> u16 {
    let target = format!("{ip}:{ECHO_PORT}");
    connect_tunnel(t, &format!("{ROUTER_IP}:8080"), &target)
        .0
        .status()
}

/// An HTTP proxy set up in its topology, deciding with the list file `rules` of a
/// directory `name` that holds `text`; the echo server answers behind it.
fn http_lab(name: &str, text: &str) -> (Topology, Server, ListDir, ChildGuard) {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let echo = Server::tcp_with(&t, "server", ECHO_PORT, echo_then_report);
    let dir = ListDir::new(name);
    dir.write("rules", text);
    let p = start(&t, HTTP_VAR, &dir.path("rules"), "http proxy listening", 1);
    (t, echo, dir, p)
}

/// `/healthz` answered 200 within `patience`, or what happened (from a thread in the
/// router namespace).
fn healthz_here(patience: Duration) -> Result<Duration, String> {
    let asked = Instant::now();
    let answer = endpoint_get_here("/healthz", patience)?;
    match answer.starts_with("HTTP/1.1 200") {
        true => Ok(asked.elapsed()),
        false => Err(format!("answer {answer:?}")),
    }
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:"));
    let kib = line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
    kib.unwrap_or_else(|| panic!("no VmRSS in:\n{status}"))
}

/// The refusal logged for the list file `file`: it names the variable, the file and why.
fn assert_refused(p: &ChildGuard, count: usize, file: &Path, why: &str) {
    let lines = lines_with(p, UNREADABLE);
    let want = format!("{HTTP_VAR}: {} {why}", file.display());
    assert!(
        lines.get(count - 1).is_some_and(|l| l.contains(&want)),
        "refusal {count} should say {want:?}:\n{lines:#?}"
    );
}

#[test]
fn a_fifo_moved_over_the_list_blocks_neither_requests_nor_health_nor_sigterm() {
    let (t, _echo, dir, mut p) = http_lab("fifo", "203.0.113.5\n");
    dir.fifo("rules");
    p.wait_ready("proxy", UNREADABLE, 1, WAIT);
    assert_refused(&p, 1, &dir.path("rules"), "is a FIFO, not a regular file");
    for round in 0..3 {
        t.with_ns("router", || healthz_here(Duration::from_secs(2)))
            .unwrap_or_else(|e| panic!("/healthz {round} with a FIFO as the list: {e}"));
        assert_eq!(
            (status(&t, "203.0.113.5"), status(&t, "203.0.113.6")),
            (200, 403),
            "the last good list decides"
        );
    }
    p.signal(libc::SIGHUP);
    p.wait_ready("proxy", UNREADABLE, 2, WAIT);
    let text = metrics(&t);
    assert_eq!(reloads(&text, "unreadable"), 2, "{text}");
    assert!(
        text.contains("egress_router_list_file_in_sync{role=\"http-proxy\"} 0"),
        "{text}"
    );
    p.signal(libc::SIGTERM);
    let exited = p.wait_timeout(WAIT);
    assert!(
        exited.is_some_and(|s| s.success()),
        "SIGTERM with a FIFO as the list must end the proxy at once (0): {exited:?}\n{}",
        p.stderr()
    );
}

#[test]
fn a_device_or_an_oversized_file_is_refused_with_memory_bounded_and_the_last_list_kept() {
    let (t, _echo, dir, mut p) = http_lab("devzero", "203.0.113.5\n");
    let rules = dir.path("rules");
    let before = rss_kib(p.pid());
    dir.symlink("rules", Path::new("/dev/zero"));
    p.wait_ready("proxy", UNREADABLE, 1, WAIT);
    assert_refused(&p, 1, &rules, "is a character device, not a regular file");
    p.signal(libc::SIGHUP);
    p.wait_ready("proxy", UNREADABLE, 2, WAIT);
    let bound = before + 64 * 1024;
    let after_zero = rss_kib(p.pid());
    assert!(
        after_zero < bound,
        "memory grew from {before} KiB to {after_zero} KiB reading /dev/zero"
    );

    // A valid list that would allow .6, one byte over the cap of 4 MiB.
    let line = "203.0.113.6\n";
    let mut big = line.repeat((4 << 20) / line.len());
    big.push_str(&"#".repeat((4 << 20) + 1 - big.len()));
    dir.write("rules", &big);
    p.wait_ready("proxy", UNREADABLE, 3, WAIT);
    assert_refused(&p, 3, &rules, "is larger than 4 MiB");
    assert_eq!(
        (status(&t, "203.0.113.5"), status(&t, "203.0.113.6")),
        (200, 403),
        "the last good list decides"
    );
    let after_big = rss_kib(p.pid());
    assert!(
        after_big < bound,
        "memory grew from {before} KiB to {after_big} KiB"
    );
    assert_eq!(reloads(&metrics(&t), "unreadable"), 3);

    dir.write("rules", "203.0.113.6\n");
    p.wait_ready("proxy", "list reloaded", 1, WAIT);
    assert_eq!(
        status(&t, "203.0.113.6"),
        200,
        "a regular file again applies"
    );
}

#[test]
fn a_plain_file_written_in_two_parts_is_applied_only_once_complete() {
    let (t, _echo, dir, mut p) = http_lab("partial", "203.0.113.5\n");
    // In place, as `cat > rules` would: the first part alone allows everything.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.path("rules"))
        .unwrap();
    file.write_all(b"allowed.example\n*").unwrap();
    let written = Instant::now();
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(
        status(&t, "203.0.113.6"),
        403,
        "the half-written list (ending in `*`) was applied"
    );
    std::thread::sleep(Duration::from_millis(500).saturating_sub(written.elapsed()));
    file.write_all(b".example.net\n203.0.113.7\n").unwrap();
    drop(file);
    p.wait_ready("proxy", "list reloaded", 1, WAIT);
    assert_eq!(
        (
            status(&t, "203.0.113.7"),
            status(&t, "203.0.113.6"),
            status(&t, "203.0.113.5")
        ),
        (200, 403, 403),
        "the complete list decides"
    );
    let applied = lines_with(&p, "list reloaded");
    assert!(
        applied.len() == 1 && applied[0].contains("\"*.example.net\""),
        "only the complete list is applied: {applied:#?}"
    );
    let text = metrics(&t);
    let counts = ["applied", "invalid", "unreadable"].map(|r| reloads(&text, r));
    assert_eq!(counts, [1, 0, 0], "{text}");
}

#[test]
fn a_fifo_or_a_device_as_the_list_at_start_is_a_startup_error_naming_it() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let dir = ListDir::new("start");
    dir.fifo("rules");
    dir.symlink("forwarders", Path::new("/dev/zero"));
    for (var, name, why) in [
        (HTTP_VAR, "rules", "is a FIFO, not a regular file"),
        (
            DNS_VAR,
            "forwarders",
            "is a character device, not a regular file",
        ),
    ] {
        let file = dir.path(name);
        let mut p = t.spawn_router(&[], &envs(&[(var, file.to_str().unwrap())]));
        let exited = p.wait_timeout(WAIT);
        let want = format!("{var}: {} {why}", file.display());
        assert_error_exit(exited, &p.stderr(), 2, &[&want], var);
    }
}

#[test]
fn a_30k_line_reload_leaves_health_answering() {
    let names = |domain: &str| -> String {
        (0..30_000)
            .map(|i| format!("host-{i}.{domain}\n"))
            .collect()
    };
    let (t, _echo, dir, mut p) = http_lab("large", &names("example.com"));
    assert_eq!(status(&t, "203.0.113.5"), 403);
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        t.in_ns("router", move || {
            let (mut answers, mut slowest, mut failures) = (0, Duration::ZERO, Vec::new());
            let end = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                match healthz_here(Duration::from_secs(10)) {
                    Ok(took) => (answers, slowest) = (answers + 1, slowest.max(took)),
                    Err(e) => failures.push(e),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (answers, slowest, failures)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    dir.write("rules", &(names("example.net") + "203.0.113.5\n"));
    p.wait_ready("proxy", "list reloaded", 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let (answers, slowest, failures) = prober.join().unwrap();
    eprintln!("/healthz during the 30k-line reload: {answers} answers, the slowest in {slowest:?}");
    assert!(failures.is_empty(), "/healthz failed: {failures:?}");
    assert!(
        answers >= 5 && slowest < Duration::from_secs(2),
        "/healthz stalled during the reload: {answers} answers, the slowest in {slowest:?}"
    );
    assert_eq!(status(&t, "203.0.113.5"), 200, "the new list decides");
    let line = first_line(&p, "list reloaded");
    assert!(
        line.contains("entries=30001") && line.contains("added_count=30001"),
        "{line}"
    );
}
