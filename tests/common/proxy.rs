//! Checks shared by the proxy roles' tests (HTTP proxy tunnels, DNS proxy forwards):
//! each takes connections through the proxy to an `echo_then_report` server.

use super::http::{Wire, closed_within, echo};
use super::{ChildGuard, Topology, envs};
use std::thread;
use std::time::{Duration, Instant};

/// With an idle timeout of 1 s: `busy`, carrying a byte every 300 ms for 2.5 s, stays
/// open; `idle`, silent all along, is closed by then.
pub fn assert_idle_closed_busy_kept(idle: &mut Wire, busy: &mut Wire) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        echo(busy, "x").unwrap_or_else(|e| {
            panic!(
                "a connection with traffic every 300 ms was closed after {:?}: {e}",
                start.elapsed()
            )
        });
        thread::sleep(Duration::from_millis(300));
    }
    let took = closed_within(idle, Duration::from_millis(1500));
    assert!(
        took.is_some(),
        "a connection without traffic for 2.5 s is still open (idle timeout 1 s)"
    );
}

/// Half-close `w` (to an `echo_then_report` server, `echoed` bytes sent so far): the
/// server's answer to our end of stream must still arrive.
pub fn assert_client_half_close(w: &mut Wire, echoed: usize) {
    w.shutdown_write().unwrap();
    let rest = w.read_to_end().expect("read after shutting down our side");
    assert_eq!(
        String::from_utf8_lossy(&rest),
        format!("EOF after {echoed} bytes\n"),
        "after the client's half-close the server's answer must still arrive"
    );
}

/// SIGTERM to `p` (listening on `addr`, grace period 25 s) while `w` is open with
/// `echoed` bytes sent so far: new connections are refused, `w` keeps working, the
/// proxy stays up until `w` ends and then exits 0 at once.
pub fn assert_sigterm_drains(
    t: &Topology,
    p: &mut ChildGuard,
    addr: &str,
    mut w: Wire,
    echoed: usize,
) {
    p.signal(libc::SIGTERM);
    assert!(
        t.refused_within(addr, Duration::from_secs(2)),
        "new connections must be refused after SIGTERM"
    );
    echo(&mut w, "after\n").expect("the open connection must keep working after SIGTERM");
    assert!(
        p.try_wait().is_none(),
        "the proxy exited while a connection was open (grace period 25 s):\n{}",
        p.stderr()
    );
    assert_client_half_close(&mut w, echoed + 6);
    drop(w);
    let st = p.wait_timeout(Duration::from_secs(3));
    assert!(
        st.is_some_and(|s| s.code() == Some(0)),
        "after its last connection closed the proxy must exit 0 at once, got {st:?}:\n{}",
        p.stderr()
    );
}

/// SIGTERM to `p` (grace period 1 s) while `w` stays open: exit 0 after about 1 s, and
/// `w` is closed.
pub fn assert_grace_period_bounds_exit(p: &mut ChildGuard, w: &mut Wire) {
    let start = Instant::now();
    p.signal(libc::SIGTERM);
    let st = p.wait_timeout(Duration::from_secs(5));
    let took = start.elapsed();
    assert!(
        st.is_some_and(|s| s.code() == Some(0)),
        "with a connection held open the proxy must exit 0 after the 1 s grace period, \
         got {st:?} after {took:?}:\n{}",
        p.stderr()
    );
    assert!(
        took >= Duration::from_millis(800) && took <= Duration::from_millis(2500),
        "exit {took:?} after SIGTERM, grace period 1 s"
    );
    assert!(
        closed_within(w, Duration::from_secs(2)).is_some(),
        "the connection must be closed once the proxy exited"
    );
}

/// Starts the HTTP proxy in the router namespace with `rules` and extra variables;
/// returns once it logged `http proxy listening`.
pub fn spawn_http_proxy(t: &Topology, rules: &str, knobs: &[(&str, &str)]) -> ChildGuard {
    let mut env = envs(knobs);
    env.push(("EGRESS_HTTP_PROXY_DESTINATION".into(), rules.into()));
    let mut p = t.spawn_router(&[], &env);
    let what = format!("proxy with rules {rules:?}");
    p.wait_ready(&what, "http proxy listening", 1, Duration::from_secs(10));
    p
}

/// SIGTERM to `p` (grace period 1 s) with `open` connections held: it exits 0 and
/// writes one log line `kind` (`decision`, `connection`) per connection, each saying
/// it was cut at the end of the grace period.
pub fn assert_cut_connections_logged(p: &mut ChildGuard, open: usize, kind: &str) {
    p.signal(libc::SIGTERM);
    let status = p.wait_timeout(Duration::from_secs(6));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", p.stderr());
    p.stop();
    let cut = p
        .stderr()
        .lines()
        .filter(|l| l.contains(kind) && l.contains("cut at the end of the shutdown grace period"))
        .count();
    assert_eq!(
        cut,
        open,
        "every cut connection needs its {kind} line:\n{}",
        p.stderr()
    );
}
