//! A CONNECT tunnel after its `200`: when the tunnel is judged by its TLS server name
//! ([`sni`](super::sni)), the client's first bytes are read (bounded in size and time)
//! and judged before a byte reaches the target; then the relay.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client_hello::{self, Peek};
use super::policy::ListMode;
use super::request_log::RequestLog;
use super::rules::Rule;
use super::sni::{self, Verdict};
use crate::ops::metrics::{HTTP_PROXY, METRICS};
use crate::serve::relay::{self, Counters, RelayEnd};
use crate::serve::shutdown::Shutdown;

/// How long a started ClientHello may take to arrive whole.
pub const HELLO_WAIT: Duration = Duration::from_secs(10);

/// What judges a tunnel's first bytes: the list now, and how it is applied.
pub struct Judge {
    /// The rules (the current list when the tunnel opened).
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
        if let Some(judge) = self.judge.take() {
            let began = first_bytes(&mut self.client, &self.upstream, &mut self.first, idle).await;
            let verdict = match began {
                Ok(Began::Client(peek)) => sni::verdict(&judge.rules, judge.port, &peek),
                Ok(Began::Server) => Verdict::Unjudged("the target spoke first"),
                Ok(Began::Quiet) => {
                    let detail = RelayEnd::Idle.describe("tunnel", idle);
                    return log.write(
                        "allowed",
                        http::StatusCode::OK,
                        counters.transfer(),
                        &detail,
                    );
                }
                Err(e) => {
                    let detail = RelayEnd::Failed(e).describe("tunnel", idle);
                    return log.write(
                        "allowed",
                        http::StatusCode::OK,
                        counters.transfer(),
                        &detail,
                    );
                }
            };
            if let Verdict::Refused { reason, rule } = verdict {
                let why = if rule == "tls" { "tls" } else { "server-name" };
                if judge.mode == ListMode::Report {
                    METRICS.would_deny(HTTP_PROXY, "tls-server-name");
                    log.would_deny = Some(reason);
                } else {
                    METRICS.tls_cut(HTTP_PROXY, why);
                    log.rule = rule;
                    let detail = format!("{reason}; the tunnel was closed before relaying a byte");
                    return log.write("denied", http::StatusCode::OK, counters.transfer(), &detail);
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
        log.write(
            "allowed",
            http::StatusCode::OK,
            counters.transfer(),
            &end.describe("tunnel", idle),
        );
    }
}

/// How a judged tunnel began.
enum Began {
    /// The client sent these first bytes.
    Client(Peek),
    /// The target sent first (or closed): a server-first protocol, nothing to judge.
    Server,
    /// Nothing came from either side for the idle timeout.
    Quiet,
}

/// Reads the client's first bytes into `first` (which holds what came with the
/// request) until they show what they are: at most
/// [`MAX_HELLO_BYTES`](client_hello::MAX_HELLO_BYTES), a started ClientHello within
/// [`HELLO_WAIT`]. Never lets the client wait past the idle timeout and begin later.
async fn first_bytes(
    client: &mut TcpStream,
    upstream: &TcpStream,
    first: &mut Vec<u8>,
    idle: Duration,
) -> std::io::Result<Began> {
    let deadline = tokio::time::Instant::now() + HELLO_WAIT;
    loop {
        match client_hello::peek(first) {
            Peek::Incomplete => {}
            done => return Ok(Began::Client(done)),
        }
        if first.is_empty() {
            tokio::select! {
                read = client.read_buf(first) => {
                    if read? == 0 {
                        return Ok(Began::Client(Peek::NotTls));
                    }
                }
                ready = upstream.readable() => {
                    ready?;
                    return Ok(Began::Server);
                }
                () = tokio::time::sleep(idle) => return Ok(Began::Quiet),
            }
        } else {
            match tokio::time::timeout_at(deadline, client.read_buf(first)).await {
                Ok(read) => {
                    if read? == 0 {
                        return Ok(Began::Client(Peek::Malformed(
                            "the client closed before its ClientHello ended",
                        )));
                    }
                }
                Err(_) => {
                    return Ok(Began::Client(Peek::Malformed(
                        "the ClientHello did not arrive whole within 10 s",
                    )));
                }
            }
        }
    }
}
