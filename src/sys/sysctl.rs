//! Reading and writing the network sysctls of a network namespace.

use crate::error::{Error, Result};
use crate::sys::netns::Netns;

/// A sysctl below `/proc/sys`, e.g. `net/ipv4/ip_forward`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// Path below `/proc/sys`.
    pub key: String,
    /// Value to write.
    pub value: String,
}

/// Reads a sysctl of namespace `ns`, trimmed.
pub fn read(ns: &Netns, key: &str) -> Result<String> {
    ns.run(|| std::fs::read_to_string(format!("/proc/sys/{key}")))?
        .map(|v| v.trim().to_string())
        .map_err(|e| Error::io(format!("reading sysctl {key}"), e))
}

/// Writes a sysctl of namespace `ns`.
pub fn write(ns: &Netns, key: &str, value: &str) -> Result<()> {
    ns.run(|| std::fs::write(format!("/proc/sys/{key}"), value))?
        .map_err(|e| Error::io(format!("setting sysctl {key}={value}"), e))
}

/// Whether the kernel of namespace `ns` has IPv6 at all (not switched off at boot).
pub fn has_ipv6(ns: &Netns) -> bool {
    read(ns, "net/ipv6/conf/all/disable_ipv6").is_ok()
}
