//! The label sets of the metrics, and the words their values are made of.

use std::borrow::Cow;

use prometheus_client::encoding::EncodeLabelSet;

/// A role's name as its label value.
pub type Role = &'static str;
/// The HTTP proxy's label value.
pub const HTTP_PROXY: Role = "http-proxy";
/// The DNS proxy's label value.
pub const DNS_PROXY: Role = "dns-proxy";

/// `role`, `listener`, `decision`, `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub(super) role: Role,
    pub(super) listener: u16,
    pub(super) decision: &'static str,
    pub(super) reason: Cow<'static, str>,
}

/// `role`, `listener`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub(super) role: Role,
    pub(super) listener: u16,
}

/// `role`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub(super) role: Role,
}

/// `role`, `direction`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    pub(super) role: Role,
    pub(super) direction: &'static str,
}

/// `role`, `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub(super) role: Role,
    pub(super) kind: &'static str,
}

/// `role`, `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub(super) role: Role,
    pub(super) reason: Cow<'static, str>,
}

/// `role`, `result`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub(super) role: Role,
    pub(super) result: &'static str,
}

/// What became of a list file's new content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Parsed and in use.
    Applied,
    /// Refused (a bad line, or a listener that could not be opened): the last list stays.
    Invalid,
    /// The file could not be read: the last list stays.
    Unreadable,
    /// Not applied for a cause that may pass (a lookup, a busy port): tried again.
    Failed,
}

/// `target`: a DNS proxy target as configured.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub(super) target: String,
}

impl Reload {
    /// Every outcome, for series that exist before the first reload.
    pub(super) const ALL: [Reload; 4] = [
        Reload::Applied,
        Reload::Invalid,
        Reload::Unreadable,
        Reload::Failed,
    ];

    /// The `result` label value.
    pub(super) fn label(self) -> &'static str {
        match self {
            Reload::Applied => "applied",
            Reload::Invalid => "invalid",
            Reload::Unreadable => "unreadable",
            Reload::Failed => "failed",
        }
    }
}

/// Why an upstream connection failed, as the `kind` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    /// The server refused (RST).
    Refused,
    /// No answer within the connect timeout.
    Timeout,
    /// The name had no usable address.
    Resolve,
    /// Anything else (unreachable, no route, ...).
    Other,
}

impl UpstreamError {
    /// The kind of a failed connect.
    pub fn of(error: &std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::ConnectionRefused => UpstreamError::Refused,
            std::io::ErrorKind::TimedOut => UpstreamError::Timeout,
            _ => UpstreamError::Other,
        }
    }

    /// The `kind` label value.
    pub(super) fn label(self) -> &'static str {
        match self {
            UpstreamError::Refused => "refused",
            UpstreamError::Timeout => "timeout",
            UpstreamError::Resolve => "resolve",
            UpstreamError::Other => "other",
        }
    }
}
