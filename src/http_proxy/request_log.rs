//! The decision log line: exactly one per request. A request that ends before its line
//! was written (the client left, or the process cut it at the end of the grace period)
//! still writes one, with outcome `cut`, when its log is dropped. In report mode a
//! request the list would deny, let through, is `reported` instead of `allowed`, and its
//! `detail` says so whatever the outcome (it may still fail, or be cut).

use std::time::Instant;

use http::{Method, StatusCode};

use crate::ops::metrics::{HTTP_PROXY, METRICS};
use crate::serve::access_log::{self, Line};
use crate::serve::listener::Peer;
use crate::serve::relay::Transfer;

/// The fields of one request's decision line, and the duty to write it once.
pub struct RequestLog {
    client: Peer,
    listener: u16,
    method: Method,
    /// The target as `host:port` once parsed, the raw request target before.
    pub target: String,
    /// The deciding rule, or what refused the request.
    pub rule: String,
    /// Report mode: why the list would have denied the request it let through.
    pub would_deny: Option<String>,
    started: Instant,
    written: bool,
}

impl RequestLog {
    /// A log for a request from `client` to the proxy's `listener` port.
    pub fn new(client: Peer, listener: u16, method: Method, target: String) -> Self {
        RequestLog {
            client,
            listener,
            method,
            target,
            rule: "-".into(),
            would_deny: None,
            started: Instant::now(),
            written: false,
        }
    }

    /// The proxy port the request came in on.
    pub fn listener(&self) -> u16 {
        self.listener
    }

    /// Moves the duty to write the line to the returned log (held by a tunnel task or
    /// a response body); this one will write nothing.
    pub fn hand_off(&mut self) -> RequestLog {
        self.written = true;
        RequestLog {
            client: self.client,
            listener: self.listener,
            method: self.method.clone(),
            target: self.target.clone(),
            rule: self.rule.clone(),
            would_deny: self.would_deny.take(),
            started: self.started,
            written: false,
        }
    }

    /// Writes the line now.
    pub fn write(mut self, outcome: &str, status: StatusCode, transfer: Transfer, detail: &str) {
        self.emit(outcome, status.as_u16(), transfer, detail);
    }

    /// `status` is 0 when no response was sent.
    fn emit(&mut self, outcome: &str, status: u16, transfer: Transfer, detail: &str) {
        self.written = true;
        METRICS.transferred(HTTP_PROXY, transfer.up, transfer.down);
        let reported;
        let (outcome, detail) = match &self.would_deny {
            Some(reason) => {
                reported = format!("report mode, the list would deny it: {reason}; {detail}");
                let outcome = if outcome == "allowed" {
                    "reported"
                } else {
                    outcome
                };
                (outcome, reported.as_str())
            }
            None => (outcome, detail),
        };
        access_log::write(&Line {
            kind: "decision",
            client: self.client,
            listener: Some(self.listener),
            method: Some(self.method.as_str()),
            target: &self.target,
            rule: Some(&self.rule),
            backend: None,
            outcome,
            status: (status != 0).then_some(status),
            transfer,
            duration: self.started.elapsed(),
            detail,
        });
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if !self.written {
            self.emit(
                "cut",
                0,
                Transfer::default(),
                "ended before it was answered (client gone or shutdown)",
            );
        }
    }
}
