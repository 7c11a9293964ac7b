//! Parsing of `EGRESS_DNS_PROXY_DESTINATION` (SPEC section 5): one forwarder a line,
//! `PORT TARGET [TARGETPORT]` where TARGET is an IPv4 or IPv6 address (without
//! brackets) or a host name with at least one dot. Blank lines and `#` comments are
//! skipped.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::config::address::{self, Class, is_unicast};
use crate::config::lines;
use crate::config::names::{self, ends_in_number, normalize_host_name, parse_ipv4};
use crate::error::{Error, Result};

const VAR: &str = "EGRESS_DNS_PROXY_DESTINATION";

/// Where a forwarder sends its connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A fixed address (canonical: an IPv4-mapped IPv6 address is its IPv4 address).
    Address(IpAddr),
    /// A host name, lower-cased without trailing dot, re-resolved while running.
    Name(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Address(ip) => write!(f, "{ip}"),
            Target::Name(name) => f.write_str(name),
        }
    }
}

/// One line: listen on `port`, forward to `target`:`target_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarder {
    /// Local port, on all addresses.
    pub port: u16,
    /// Destination.
    pub target: Target,
    /// Destination port (defaults to `port`).
    pub target_port: u16,
}

/// Parses the whole list; every error quotes the offending line.
pub fn parse_forwarders(text: &str) -> Result<Vec<Forwarder>> {
    let mut forwarders = Vec::new();
    let mut ports = HashSet::new();
    for line in lines::entries(text) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (port, target, target_port) = match fields.as_slice() {
            [port, target] => (port, target, None),
            [port, target, target_port] => (port, target, Some(target_port)),
            _ => {
                return Err(line_error(
                    line,
                    "expected `PORT TARGET` or `PORT TARGET TARGETPORT`",
                ));
            }
        };
        let port = parse_port(line, port)?;
        let target_port = target_port
            .map(|p| parse_port(line, p))
            .transpose()?
            .unwrap_or(port);
        if !ports.insert(port) {
            return Err(line_error(
                line,
                &format!("port {port} appears more than once"),
            ));
        }
        forwarders.push(Forwarder {
            port,
            target: parse_target(line, target)?,
            target_port,
        });
    }
    if forwarders.is_empty() {
        return Err(Error::config(VAR, format!("no forwarder in {text:?}")));
    }
    Ok(forwarders)
}

fn parse_port(line: &str, text: &str) -> Result<u16> {
    names::parse_port(text).ok_or_else(|| {
        line_error(
            line,
            &format!("port {text:?} is not a number from 1 to 65535"),
        )
    })
}

fn parse_target(line: &str, text: &str) -> Result<Target> {
    if text.starts_with('[') {
        return Err(line_error(
            line,
            &format!(
                "{text:?}: write an IPv6 address without brackets (the port is its own field)"
            ),
        ));
    }
    if text.contains(':') {
        return match text
            .parse::<Ipv6Addr>()
            .map(|v6| address::canonical(IpAddr::V6(v6)))
        {
            Ok(ip) if matches!(address::class(ip), Class::Dialable) => Ok(Target::Address(ip)),
            _ => Err(line_error(
                line,
                &format!("{text:?} is not a unicast IPv6 address a forwarder may dial"),
            )),
        };
    }
    if ends_in_number(text) {
        return match parse_ipv4(text) {
            Some(ip) if is_unicast(ip) => Ok(Target::Address(IpAddr::V4(ip))),
            _ => Err(line_error(
                line,
                &format!("{text:?} is not a unicast IPv4 address (four decimal numbers)"),
            )),
        };
    }
    match normalize_host_name(text) {
        Some(name) if name.contains('.') => Ok(Target::Name(name)),
        _ => Err(line_error(
            line,
            &format!("{text:?} is neither an IP address nor a host name with at least one dot"),
        )),
    }
}

fn line_error(line: &str, reason: &str) -> Error {
    Error::config(VAR, format!("line {line:?}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_target_kinds_with_default_and_explicit_ports() {
        let text = "# db\n80 203.0.113.5\n\n8080 203.0.113.6 80\n5432 DB.Example.COM.\n2525 mail.example.net 25\n";
        let forwarders = parse_forwarders(text).unwrap();
        assert_eq!(
            forwarders,
            vec![
                Forwarder {
                    port: 80,
                    target: Target::Address("203.0.113.5".parse().unwrap()),
                    target_port: 80
                },
                Forwarder {
                    port: 8080,
                    target: Target::Address("203.0.113.6".parse().unwrap()),
                    target_port: 80
                },
                Forwarder {
                    port: 5432,
                    target: Target::Name("db.example.com".into()),
                    target_port: 5432
                },
                Forwarder {
                    port: 2525,
                    target: Target::Name("mail.example.net".into()),
                    target_port: 25
                },
            ]
        );
    }

    #[test]
    fn ipv6_targets_are_addresses_and_mapped_ones_ipv4() {
        let forwarders = parse_forwarders("80 2001:db8:2::5\n81 ::ffff:203.0.113.5 80").unwrap();
        assert_eq!(
            forwarders[0].target,
            Target::Address("2001:db8:2::5".parse().unwrap())
        );
        assert_eq!(forwarders[0].target.to_string(), "2001:db8:2::5");
        assert_eq!(
            forwarders[1].target,
            Target::Address("203.0.113.5".parse().unwrap())
        );
    }

    #[test]
    fn every_error_names_the_variable_and_quotes_the_line() {
        for (text, needle) in [
            ("", "no forwarder"),
            ("# nothing", "no forwarder"),
            ("80", "\"80\""),
            ("80 203.0.113.5 81 82", "\"80 203.0.113.5 81 82\""),
            ("0 203.0.113.5", "port \"0\""),
            ("65536 203.0.113.5", "port \"65536\""),
            ("80 203.0.113.5 0", "port \"0\""),
            ("http 203.0.113.5", "port \"http\""),
            (
                "80 203.0.113.500",
                "\"203.0.113.500\" is not a unicast IPv4 address",
            ),
            ("80 0.0.0.0", "\"0.0.0.0\" is not a unicast"),
            ("80 0.1.2.3", "\"0.1.2.3\" is not a unicast"),
            ("80 240.0.0.1", "\"240.0.0.1\" is not a unicast"),
            ("80 2130706433", "\"2130706433\" is not a unicast"),
            ("80 0x7f.0.0.1", "\"0x7f.0.0.1\" is not a unicast"),
            ("80 203.0.113.05", "\"203.0.113.05\" is not a unicast"),
            ("+80 203.0.113.5", "port \"+80\""),
            ("080 203.0.113.5", "port \"080\""),
            ("80 203.0.113.5 +81", "port \"+81\""),
            ("80 localhost", "\"localhost\" is neither"),
            ("80 bad_host!.example.com", "is neither"),
            ("80 [2001:db8::1]", "without brackets"),
            ("80 [2001:db8::1]:80", "without brackets"),
            ("80 ::1", "\"::1\" is not a unicast IPv6"),
            ("80 fe80::1", "\"fe80::1\" is not a unicast IPv6"),
            ("80 ff02::1", "\"ff02::1\" is not a unicast IPv6"),
            ("80 2002:cb00:7105::1", "is not a unicast IPv6"),
            (
                "80 203.0.113.5\n80 203.0.113.6",
                "port 80 appears more than once",
            ),
        ] {
            let err = parse_forwarders(text).unwrap_err().to_string();
            assert!(
                err.starts_with("EGRESS_DNS_PROXY_DESTINATION: "),
                "{text:?}: {err}"
            );
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
