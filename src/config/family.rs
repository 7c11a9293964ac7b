//! The two address families, named once for every layer that keeps them apart: the
//! router's address pairs, its redirect lines, the iptables tools and sysctls of each.

use std::fmt;
use std::net::IpAddr;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The family of `address`.
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The longest prefix length of the family's addresses.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// `"IPv6 "` for IPv6 and nothing for IPv4, to put before a noun in a message:
    /// messages about IPv4 read as they did before IPv6 support, IPv6 ones say so.
    pub fn qualifier(self) -> &'static str {
        match self {
            Family::V4 => "",
            Family::V6 => "IPv6 ",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}
