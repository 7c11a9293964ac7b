//! Checks on host names, addresses and ports shared by the parsers of every role.

use std::net::Ipv4Addr;

/// Whether `address` can be a host's address (not unspecified, broadcast, multicast or loopback).
pub fn is_unicast(address: Ipv4Addr) -> bool {
    !(address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_loopback())
}

/// Lower-cases a DNS host name and drops one trailing dot; `None` when it is not a
/// valid name (labels of letters, digits, `-`, `_`; 1–63 bytes each; 253 in all).
pub fn normalize_host_name(text: &str) -> Option<String> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (!name.is_empty() && name.len() <= 253 && name.split('.').all(valid_label)).then_some(name)
}

/// Whether `text` is made of digits and dots only, i.e. meant as an IPv4 address.
pub fn looks_like_ipv4(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Parses a TCP/UDP port, 1 to 65535.
pub fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_one_to_65535() {
        assert_eq!(parse_port("1"), Some(1));
        assert_eq!(parse_port("65535"), Some(65535));
        for bad in ["0", "65536", "-1", "http", "", "80 "] {
            assert_eq!(parse_port(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_names_are_normalized_or_rejected() {
        assert_eq!(
            normalize_host_name("WWW.Example.COM.").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            normalize_host_name("_srv.example.com").as_deref(),
            Some("_srv.example.com")
        );
        for bad in [
            "",
            ".",
            "a..b",
            "-a.example.com",
            "a-.example.com",
            "a b",
            "a/b",
            "a.example.com..",
        ] {
            assert_eq!(normalize_host_name(bad), None, "{bad:?}");
        }
        assert_eq!(
            normalize_host_name(&format!("{}.com", "a".repeat(64))),
            None
        );
    }

    #[test]
    fn unicast_excludes_special_addresses() {
        assert!(is_unicast("203.0.113.5".parse().unwrap()));
        for bad in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "127.0.0.1"] {
            assert!(!is_unicast(bad.parse().unwrap()), "{bad}");
        }
    }
}
