//! CNI error codes: the spec's well-known ones (1 to 99) and this plugin's own (100+),
//! and the code reported for each error.

use crate::error::Error;

/// The requested CNI version is not supported.
pub const INCOMPATIBLE_VERSION: u32 = 1;
/// The network configuration has a field this plugin does not support.
pub const UNSUPPORTED_FIELD: u32 = 2;
/// The container is unknown or does not exist.
pub const UNKNOWN_CONTAINER: u32 = 3;
/// A `CNI_*` environment variable is missing or invalid.
pub const INVALID_ENVIRONMENT: u32 = 4;
/// An I/O operation failed.
pub const IO_FAILURE: u32 = 5;
/// The input could not be decoded (not JSON, a key twice, ...).
pub const DECODE_FAILURE: u32 = 6;
/// The network configuration is invalid.
pub const INVALID_NETWORK_CONFIG: u32 = 7;
/// A transient failure: the runtime may retry later.
pub const TRY_AGAIN_LATER: u32 = 11;
/// STATUS: the plugin cannot serve ADD requests.
pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
/// Setting up or tearing down the attachment failed (netlink, iptables, state).
pub const PLUGIN_FAILURE: u32 = 100;

/// The code reported for `error`.
pub fn of(error: &Error) -> u32 {
    match error {
        Error::Cni { code, .. } => *code,
        Error::Config { .. } => INVALID_NETWORK_CONFIG,
        Error::NotUtf8 { .. } => INVALID_ENVIRONMENT,
        Error::Io { .. } => IO_FAILURE,
        Error::Setup { cause, .. } => of(cause),
        _ => PLUGIN_FAILURE,
    }
}

/// What `code` means, as the spec words it.
pub fn meaning(code: u32) -> &'static str {
    match code {
        INCOMPATIBLE_VERSION => "incompatible CNI version",
        UNSUPPORTED_FIELD => "unsupported field in network configuration",
        UNKNOWN_CONTAINER => "container unknown or does not exist",
        INVALID_ENVIRONMENT => "invalid necessary environment variables",
        IO_FAILURE => "I/O failure",
        DECODE_FAILURE => "failed to decode content",
        INVALID_NETWORK_CONFIG => "invalid network config",
        TRY_AGAIN_LATER => "try again later",
        PLUGIN_NOT_AVAILABLE => "plugin not available",
        PLUGIN_FAILURE => "egress-router setup failed",
        _ => "plugin-specific error",
    }
}
