//! The operations endpoint under a flood of idle connections, as root: a client that
//! keeps reopening idle sockets from one or from many addresses must neither keep a
//! kubelet probe from another address out nor hold more than its per-source share
//! (README "Metrics": 64 connections at once, 8 of one source, a new one displacing
//! the oldest still waiting for its request). These tests FAIL (never skip) without
//! root.

mod common;

use common::http::{get, sample};
use common::proxy::spawn_http_proxy;
use common::*;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, sockopt};
use nix::sys::time::TimeVal;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const METRICS_PORT: u16 = 9090;
/// README "Metrics": the connections one source holds at once.
const PER_SOURCE: usize = 8;
/// The flood's sources: the client's own address and the ones added for the test (9
/// sources of 10 idle sockets each: over the per-source cap and over the 64 in all).
const FLOOD_SOURCES: [Ipv4Addr; 9] = [
    Ipv4Addr::new(192, 0, 2, 10),
    Ipv4Addr::new(192, 0, 2, 11),
    Ipv4Addr::new(192, 0, 2, 12),
    Ipv4Addr::new(192, 0, 2, 13),
    Ipv4Addr::new(192, 0, 2, 14),
    Ipv4Addr::new(192, 0, 2, 15),
    Ipv4Addr::new(192, 0, 2, 16),
    Ipv4Addr::new(192, 0, 2, 17),
    Ipv4Addr::new(192, 0, 2, 18),
];
const SOCKETS_PER_SOURCE: usize = 10;
/// Bounds of the flood: it never runs longer nor opens more, whatever happens.
const FLOOD_LIMIT: Duration = Duration::from_secs(20);
const FLOOD_MAX_CONNECTS: usize = 20_000;
/// The kubelet's probe timeout (`timeoutSeconds` defaults to 1).
const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// A TCP connection from `source` to `to`, given up after 1 s.
fn connect_from(source: Ipv4Addr, to: SocketAddrV4) -> std::io::Result<TcpStream> {
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // a blocking connect gives up after the send timeout
    socket::setsockopt(&fd, sockopt::SendTimeout, &TimeVal::new(1, 0))?;
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(source, 0)),
    )?;
    socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to))?;
    Ok(TcpStream::from(fd))
}

/// Whether the endpoint still holds `stream` open (it sent nothing and did not close).
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    matches!(stream.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// One kubelet-like `/healthz` probe: `Ok(took)` for a 200 within [`PROBE_LIMIT`].
fn probe(to: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&to, PROBE_LIMIT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(PROBE_LIMIT)).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.31\r\n\r\n")
        .map_err(|e| format!("writing: {e}"))?;
    let mut answer = String::new();
    let read = stream.read_to_string(&mut answer);
    let took = start.elapsed();
    match read {
        Ok(_) if answer.starts_with("HTTP/1.1 200") && took < PROBE_LIMIT => Ok(took),
        Ok(_) => Err(format!("{answer:?} after {took:?}")),
        Err(e) => Err(format!("{e} after {took:?} (got {answer:?})")),
    }
}

/// Keeps `SOCKETS_PER_SOURCE` idle sockets from each of `FLOOD_SOURCES` open to `to`,
/// reopening each one the endpoint closes, until `stop` (or its bounds). Counts its
/// rounds in `rounds`; returns the connections it opened and whether it was stopped
/// (rather than ended by its bounds).
fn flood(to: SocketAddrV4, stop: &AtomicBool, rounds: &AtomicUsize) -> (usize, bool) {
    let end = Instant::now() + FLOOD_LIMIT;
    let mut open: Vec<Option<TcpStream>> = Vec::new();
    open.resize_with(FLOOD_SOURCES.len() * SOCKETS_PER_SOURCE, || None);
    let mut connects = 0;
    while Instant::now() < end && connects < FLOOD_MAX_CONNECTS {
        if stop.load(Ordering::SeqCst) {
            return (connects, true);
        }
        for (i, slot) in open.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(still_open) {
                continue;
            }
            *slot = connect_from(FLOOD_SOURCES[i / SOCKETS_PER_SOURCE], to).ok();
            connects += 1;
        }
        rounds.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(50));
    }
    (connects, false)
}

#[test]
fn probes_from_the_node_are_answered_while_idle_sockets_flood_the_endpoint() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let _p = spawn_http_proxy(&t, "*", &[]);
    for source in &FLOOD_SOURCES[1..] {
        t.sh(
            "client",
            &["ip", "addr", "add", &format!("{source}/26"), "dev", "eth0"],
        );
    }
    let endpoint = SocketAddrV4::new(ROUTER_IP.parse().unwrap(), METRICS_PORT);

    let (stop, rounds) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let flooding = {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        t.in_ns("client", move || flood(endpoint, &stop, &rounds))
    };
    eventually(
        Duration::from_secs(10),
        "five rounds of the flood",
        || match rounds.load(Ordering::SeqCst) {
            n if n >= 5 => Ok(()),
            n => Err(format!("{n} rounds")),
        },
    );
    // The kubelet probes from the node (192.0.2.65), an address the flood does not use.
    let probes = t.with_ns("node", move || {
        (0..16)
            .map(|_| {
                let outcome = probe(SocketAddr::V4(endpoint));
                thread::sleep(Duration::from_millis(100));
                outcome
            })
            .collect::<Vec<_>>()
    });
    stop.store(true, Ordering::SeqCst);
    let (connects, stopped) = flooding.join().unwrap();
    assert!(
        stopped,
        "the flood ended by its bounds ({connects} connections) before the probes did"
    );
    let failed: Vec<_> = probes.iter().filter(|p| p.is_err()).collect();
    assert!(
        failed.is_empty(),
        "every /healthz probe must get 200 within {PROBE_LIMIT:?} during the flood \
         ({connects} connections opened): {} of 16 failed: {probes:?}",
        failed.len()
    );

    let (_, metrics) = get(
        &t,
        "node",
        &format!("{ROUTER_IP}:{METRICS_PORT}"),
        "/metrics",
    );
    for reason in ["evicted", "source-evicted"] {
        let series =
            format!(r#"egress_router_endpoint_connections_shed_total{{reason="{reason}"}}"#);
        let shed = sample(&metrics, &series);
        assert!(
            shed.is_some_and(|n| n > 0.0),
            "the flood filled the endpoint and each source's share ({series}: {shed:?})"
        );
    }
}

#[test]
fn one_source_holds_at_most_its_share_of_idle_connections() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let _p = spawn_http_proxy(&t, "*", &[]);
    let endpoint = SocketAddrV4::new(ROUTER_IP.parse().unwrap(), METRICS_PORT);
    let alive = t.with_ns("client", move || {
        let sockets: Vec<TcpStream> = (0..64)
            .map(|i| {
                connect_from(FLOOD_SOURCES[0], endpoint)
                    .unwrap_or_else(|e| panic!("idle socket {i}: {e}"))
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        sockets
            .iter()
            .enumerate()
            .filter(|(_, s)| still_open(s))
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    });
    assert!(
        !alive.is_empty() && alive.len() <= PER_SOURCE,
        "of 64 idle sockets from one address, the endpoint must hold at most {PER_SOURCE}: \
         it holds {alive:?}"
    );
}
