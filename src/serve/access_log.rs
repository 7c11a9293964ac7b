//! The one log line of every proxied request (`decision`, HTTP proxy) or connection
//! (`connection`, DNS proxy), written by one writer with one set of fields, so that a
//! log pipeline parses both alike. A field that does not apply is `-`.

use std::fmt::Display;
use std::time::Duration;

use tracing::info;

use super::listener::Peer;
use super::relay::Transfer;

/// The fields of one line.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// `decision` or `connection`: the message of the line.
    pub kind: &'static str,
    /// The client: its address and connection id.
    pub client: Peer,
    /// The local port the client connected to.
    pub listener: Option<u16>,
    /// The HTTP method.
    pub method: Option<&'a str>,
    /// What the client asked for (`host:port`, or the forwarder's target).
    pub target: &'a str,
    /// The rule (or refusal) that decided.
    pub rule: Option<&'a str>,
    /// The address connected to.
    pub backend: Option<&'a str>,
    /// `allowed`, `denied`, `rejected`, `failed`, `forwarded` or `cut`.
    pub outcome: &'a str,
    /// The HTTP status sent.
    pub status: Option<u16>,
    /// Bytes each way.
    pub transfer: Transfer,
    /// How long it lasted.
    pub duration: Duration,
    /// How it ended, in words.
    pub detail: &'a str,
}

/// Writes `line` at level INFO.
pub fn write(line: &Line<'_>) {
    info!(
        connection = line.client.connection,
        client = %line.client.address,
        listener = %or_dash(line.listener),
        method = %line.method.unwrap_or("-"),
        target = %line.target,
        rule = %line.rule.unwrap_or("-"),
        backend = %line.backend.unwrap_or("-"),
        outcome = %line.outcome,
        status = %or_dash(line.status),
        bytes_up = line.transfer.up,
        bytes_down = line.transfer.down,
        duration_ms = line.duration.as_millis() as u64,
        detail = %line.detail,
        "{}",
        line.kind
    );
}

fn or_dash(value: Option<impl Display>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}
