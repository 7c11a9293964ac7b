//! Reading and writing IPv4 sysctls of the current network namespace.

use crate::error::{Error, Result};

/// A sysctl below `/proc/sys`, e.g. `net/ipv4/ip_forward`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// Path below `/proc/sys`.
    pub key: String,
    /// Value to write.
    pub value: String,
}

/// Reads a sysctl, trimmed.
pub fn read(key: &str) -> Result<String> {
    std::fs::read_to_string(format!("/proc/sys/{key}"))
        .map(|v| v.trim().to_string())
        .map_err(|e| Error::io(format!("reading sysctl {key}"), e))
}

/// Writes a sysctl.
pub fn write(key: &str, value: &str) -> Result<()> {
    std::fs::write(format!("/proc/sys/{key}"), value)
        .map_err(|e| Error::io(format!("setting sysctl {key}={value}"), e))
}
