//! A CONNECT tunnel after its `200`: when the tunnel is judged by its TLS server name
//! ([`sni`](super::sni)), the client's first bytes are read (bounded in size and time)
//! and judged before a byte reaches the target; then the relay.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::client_hello::{self, MAX_READ, Peek};
use super::policy::ListMode;
use super::request_log::RequestLog;
use super::rules::Rule;
use super::sni::{self, Verdict};
use crate::ops::metrics::{HTTP_PROXY, METRICS};
use crate::serve::relay::{self, Counters, RelayEnd};
use crate::serve::shutdown::{self, Shutdown};

/// How long a ClientHello may take to arrive whole, from its first byte.
pub const HELLO_WAIT: Duration = Duration::from_secs(10);

/// What judges a tunnel's first bytes: the list that allowed the tunnel, and how it
/// is applied.
pub struct Judge {
    /// The rules that allowed the tunnel.
    pub rules: Arc<Vec<Rule>>,
    /// The target's port.
    pub port: u16,
    /// Whether the list is only reported.
    pub mode: ListMode,
}

/// Everything a tunnel needs once the client has its `200`.
pub struct Tunnel {
    /// The client's connection.
    pub client: TcpStream,
    /// What the client sent after the request, already read.
    pub first: Vec<u8>,
    /// The target's connection.
    pub upstream: TcpStream,
    /// The idle timeout.
    pub idle: Duration,
    /// Set when the tunnel is judged by its TLS server name.
    pub judge: Option<Judge>,
}

impl Tunnel {
    /// Judges the tunnel when it is judged, then relays it; writes the decision line
    /// to `log`.
    pub async fn run(mut self, mut log: RequestLog, cut: &mut Shutdown) {
        let counters = Counters::default();
        let idle = self.idle;
        let mut note = String::new();
        if let Some(judge) = self.judge.take() {
            let began = first_bytes(&mut self.client, &self.upstream, &mut self.first, idle, cut);
            let verdict = match began.await {
                Ok(Began::Client(peek)) => sni::verdict(&judge.rules, judge.port, &peek),
                Ok(Began::Server) => Verdict::Unjudged("the target spoke first"),
                Ok(Began::Ended(end)) => {
                    return log.write(
                        "allowed",
                        StatusCode::OK,
                        counters.transfer(),
                        &end.describe("tunnel", idle),
                    );
                }
                Err(e) => {
                    let end = RelayEnd::Failed(e).describe("tunnel", idle);
                    return log.write("allowed", StatusCode::OK, counters.transfer(), &end);
                }
            };
            match verdict {
                Verdict::Allowed { name, rule } => {
                    note = format!("TLS server name {name} allowed by rule {rule:?}; ");
                }
                Verdict::Unjudged(why) => note = format!("not judged by TLS server name: {why}; "),
                Verdict::Refused { reason, rule } if judge.mode == ListMode::Report => {
                    METRICS.would_deny(HTTP_PROXY, "tls-server-name");
                    log.rule = rule;
                    log.would_deny = Some(reason);
                }
                Verdict::Refused { reason, rule } => {
                    METRICS.tls_cut(
                        HTTP_PROXY,
                        if rule == "tls" { "tls" } else { "server-name" },
                    );
                    log.rule = rule;
                    let detail = format!("{reason}; the tunnel was closed before relaying a byte");
                    return log.write("denied", StatusCode::OK, counters.transfer(), &detail);
                }
            }
        }
        let sent = self.upstream.write_all(&self.first).await;
        counters.add_up(self.first.len() as u64);
        // The first bytes may pin a large buffer: free it before relaying.
        drop(std::mem::take(&mut self.first));
        let end = match sent {
            Ok(()) => relay::relay(self.client, self.upstream, idle, &counters, cut).await,
            Err(e) => RelayEnd::Failed(e),
        };
        let detail = format!("{note}{}", end.describe("tunnel", idle));
        log.write("allowed", StatusCode::OK, counters.transfer(), &detail);
    }
}

/// How a judged tunnel began.
enum Began {
    /// The client sent these first bytes.
    Client(Peek),
    /// The target sent data first: a server-first protocol, nothing to judge.
    Server,
    /// It ended before the client's first bytes: idle, shutdown, or the target closed.
    Ended(RelayEnd),
}

/// Reads the client's first bytes into `first` (which holds what came with the
/// request) until they show what they are: at most [`MAX_READ`] bytes, a started
/// ClientHello whole within [`HELLO_WAIT`] of its first byte.
/// The client's bytes are looked at before the target's; a client that stays silent
/// past the idle timeout is closed as idle (never relayed later, unjudged).
async fn first_bytes(
    client: &mut TcpStream,
    upstream: &TcpStream,
    first: &mut Vec<u8>,
    idle: Duration,
    cut: &mut Shutdown,
) -> std::io::Result<Began> {
    let mut deadline = (!first.is_empty()).then(|| Instant::now() + HELLO_WAIT);
    let quiet_until = Instant::now() + idle;
    loop {
        match client_hello::peek(first) {
            Peek::Incomplete if first.len() >= MAX_READ => {
                return Ok(Began::Client(Peek::Malformed(
                    "the ClientHello is larger than 16 KiB",
                )));
            }
            Peek::Incomplete => {}
            done => return Ok(Began::Client(done)),
        }
        let until = deadline.unwrap_or(quiet_until);
        tokio::select! {
            biased;
            // Waits for readiness and reads without awaiting: a waiting tunnel holds
            // no buffer (3,000 idle ones would hold 12 MiB).
            ready = client.readable() => {
                ready?;
                let ended = read_now(client, first)?;
                if !first.is_empty() {
                    deadline.get_or_insert_with(|| Instant::now() + HELLO_WAIT);
                }
                if ended {
                    return Ok(Began::Client(match client_hello::peek(first) {
                        _ if first.is_empty() => Peek::NotTls,
                        Peek::Incomplete => {
                            Peek::Malformed("the client closed before its ClientHello ended")
                        }
                        done => done,
                    }));
                }
            }
            ready = upstream.readable(), if first.is_empty() => {
                ready?;
                match waiting_bytes(upstream) {
                    Ok(0) => return Ok(Began::Ended(RelayEnd::Closed)),
                    Ok(_) => return Ok(Began::Server),
                    // readiness without data: keep waiting
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            () = shutdown::requested(cut) => return Ok(Began::Ended(RelayEnd::Cut)),
            () = tokio::time::sleep_until(until) => {
                return Ok(match deadline {
                    Some(_) => Began::Client(Peek::Malformed(
                        "the ClientHello did not arrive whole within 10 s",
                    )),
                    None => Began::Ended(RelayEnd::Idle),
                });
            }
        }
    }
}

/// How many bytes the target has sent that wait to be read (0: it closed), looked at
/// without taking them; `WouldBlock` when none wait (the readiness is then cleared).
fn waiting_bytes(upstream: &TcpStream) -> std::io::Result<usize> {
    use nix::sys::socket::{MsgFlags, recv};
    use std::os::fd::AsRawFd;
    let mut probe = [0u8; 1];
    upstream.try_io(tokio::io::Interest::READABLE, || {
        recv(
            upstream.as_raw_fd(),
            &mut probe,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        )
        .map_err(std::io::Error::from)
    })
}

/// Reads all the client has sent so far onto `first` (until it would block, its end,
/// or the bound); returns whether it has ended. Reading until it would block also
/// clears the socket's readiness, so the relay that follows starts as on a fresh, quiet
/// connection (it would otherwise take a buffer to read nothing, kept while idle).
fn read_now(client: &TcpStream, first: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 4096];
    loop {
        let room = MAX_READ.saturating_sub(first.len()).min(chunk.len());
        if room == 0 {
            return Ok(false);
        }
        match client.try_read(&mut chunk[..room]) {
            Ok(0) => return Ok(true),
            Ok(n) => first.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}
