//! Host names and ports as every parser reads them: one rule for what is a name, what
//! is meant as an address, and what is a port.

use std::net::Ipv4Addr;

/// Lower-cases a DNS host name and drops one trailing dot; `None` when it is not a
/// valid name (labels of letters, digits, `-`, `_`; 1–63 bytes each; 253 in all) or
/// when it is meant as an IPv4 address (see [`ends_in_number`]).
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
    (!name.is_empty()
        && name.len() <= 253
        && name.split('.').all(valid_label)
        && !ends_in_number(&name))
    .then_some(name)
}

/// Whether `text` (one trailing dot ignored) is meant as an IPv4 address: its last
/// label is a number, decimal or `0x` hex, as URL parsers and `inet_aton` read it
/// (`203.0.113.5`, `2130706433`, `0x7f.1`). Such a host is an address or invalid,
/// never a name.
pub fn ends_in_number(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    let last = text.rsplit('.').next().unwrap_or("");
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses text meant as an IPv4 address (see [`ends_in_number`]): exactly four decimal
/// numbers without leading zeros, one trailing dot allowed. Other numeric spellings
/// (`2130706433`, `0x7f.1`, `127.1`, `010.0.0.1`) are `None`: they would be read
/// differently by different parsers.
pub fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    text.strip_suffix('.').unwrap_or(text).parse().ok()
}

/// Parses a TCP/UDP port, 1 to 65535, written in decimal digits only, without a
/// sign or leading zeros.
pub fn parse_port(text: &str) -> Option<u16> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0');
    canonical.then(|| text.parse::<u16>().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_one_to_65535_in_plain_digits() {
        assert_eq!(parse_port("1"), Some(1));
        assert_eq!(parse_port("65535"), Some(65535));
        for bad in [
            "0", "65536", "-1", "+80", "080", "00", "http", "", "80 ", " 80",
        ] {
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
        assert_eq!(
            normalize_host_name("1.example.com").as_deref(),
            Some("1.example.com")
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
            "203.0.113.5",
            "203.0.113.5.",
            "2130706433",
            "example.0x7f",
        ] {
            assert_eq!(normalize_host_name(bad), None, "{bad:?}");
        }
        assert_eq!(
            normalize_host_name(&format!("{}.com", "a".repeat(64))),
            None
        );
    }

    #[test]
    fn numeric_hosts_are_strict_dotted_quads_or_nothing() {
        for numeric in [
            "203.0.113.5",
            "203.0.113.5.",
            "2130706433",
            "0x7f.1",
            "a.0X1f",
            "1.2.3",
        ] {
            assert!(ends_in_number(numeric), "{numeric}");
        }
        for name in ["example.com", "0x7g", "a.0xz", "example.com.", "1.example"] {
            assert!(!ends_in_number(name), "{name}");
        }
        assert_eq!(
            parse_ipv4("203.0.113.5."),
            Some(Ipv4Addr::new(203, 0, 113, 5))
        );
        for bad in [
            "2130706433",
            "0x7f.0.0.1",
            "127.1",
            "010.0.0.1",
            "203.0.113.5..",
            "1.2.3.4.5",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
    }
}
