//! Parsing of `EGRESS_DESTINATION`, the redirect list (SPEC section 3).
//!
//! One entry a line: `IP` (the fallback, last), `PORT PROTO IP` or
//! `PORT PROTO IP DESTPORT`. Blank lines and `#` comments are skipped.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;

use crate::config::address::is_unicast;
use crate::config::names;
use crate::error::{Error, Result};

const VAR: &str = "EGRESS_DESTINATION";

/// A transport protocol a port redirect applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One validated entry of the redirect list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Traffic to local `port`/`protocol` goes to `address`, on `target_port` when given.
    Port {
        /// Local port on the pod's `eth0`.
        port: u16,
        /// Protocol the redirect applies to.
        protocol: Protocol,
        /// Outside server address.
        address: Ipv4Addr,
        /// Port on the outside server; `None` keeps the local port.
        target_port: Option<u16>,
    },
    /// Everything not matched earlier goes to this address, same port and protocol.
    Fallback(Ipv4Addr),
}

/// Parses the whole `EGRESS_DESTINATION` value.
pub fn parse_destinations(text: &str) -> Result<Vec<Destination>> {
    let mut entries: Vec<Destination> = Vec::new();
    let mut seen_ports = HashSet::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(Destination::Fallback(_)) = entries.last() {
            return Err(line_error(
                line,
                "comes after the fallback address, which must be the last entry",
            ));
        }
        let entry = parse_line(line)?;
        if let Destination::Port { port, .. } = entry
            && !seen_ports.insert(port)
        {
            return Err(line_error(
                line,
                &format!("local port {port} appears more than once"),
            ));
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        return Err(Error::config(VAR, format!("no destination in {text:?}")));
    }
    Ok(entries)
}

fn parse_line(line: &str) -> Result<Destination> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [ip] => Ok(Destination::Fallback(parse_address(line, ip)?)),
        [port, proto, ip] | [port, proto, ip, _] => Ok(Destination::Port {
            port: parse_port(line, port)?,
            protocol: parse_protocol(line, proto)?,
            address: parse_address(line, ip)?,
            target_port: fields.get(3).map(|p| parse_port(line, p)).transpose()?,
        }),
        _ => Err(line_error(
            line,
            "expected `IP`, `PORT PROTO IP` or `PORT PROTO IP DESTPORT`",
        )),
    }
}

fn parse_port(line: &str, text: &str) -> Result<u16> {
    names::parse_port(text).ok_or_else(|| {
        line_error(
            line,
            &format!("port {text:?} is not a number from 1 to 65535"),
        )
    })
}

fn parse_protocol(line: &str, text: &str) -> Result<Protocol> {
    match text {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        _ => Err(line_error(
            line,
            &format!("protocol {text:?} is not tcp or udp"),
        )),
    }
}

fn parse_address(line: &str, text: &str) -> Result<Ipv4Addr> {
    let address: Ipv4Addr = text
        .parse()
        .map_err(|_| line_error(line, &format!("{text:?} is not an IPv4 address")))?;
    if !is_unicast(address) {
        return Err(line_error(
            line,
            &format!("{text:?} is not a unicast address"),
        ));
    }
    Ok(address)
}

fn line_error(line: &str, reason: &str) -> Error {
    Error::config(VAR, format!("line {line:?}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_line_form_skipping_comments_and_blanks() {
        let text = "\n# web\n80 tcp 203.0.113.5\n  8080   tcp 203.0.113.6 80  \n\n53 udp 203.0.113.5 5353\n203.0.113.7\n";
        let parsed = parse_destinations(text).unwrap();
        assert_eq!(
            parsed,
            vec![
                Destination::Port {
                    port: 80,
                    protocol: Protocol::Tcp,
                    address: ip("203.0.113.5"),
                    target_port: None
                },
                Destination::Port {
                    port: 8080,
                    protocol: Protocol::Tcp,
                    address: ip("203.0.113.6"),
                    target_port: Some(80)
                },
                Destination::Port {
                    port: 53,
                    protocol: Protocol::Udp,
                    address: ip("203.0.113.5"),
                    target_port: Some(5353)
                },
                Destination::Fallback(ip("203.0.113.7")),
            ]
        );
    }

    #[test]
    fn a_single_address_is_a_fallback_only_list() {
        assert_eq!(
            parse_destinations("203.0.113.25").unwrap(),
            vec![Destination::Fallback(ip("203.0.113.25"))]
        );
    }

    #[test]
    fn port_bounds_are_inclusive() {
        assert!(parse_destinations("1 tcp 203.0.113.5\n65535 udp 203.0.113.5 1").is_ok());
    }

    fn error_of(text: &str) -> String {
        let err = parse_destinations(text).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    var: "EGRESS_DESTINATION",
                    ..
                }
            ),
            "{err:?}"
        );
        err.to_string()
    }

    #[test]
    fn every_error_names_the_variable_and_quotes_the_line() {
        let cases = [
            (
                "80 sctp 203.0.113.5",
                "\"80 sctp 203.0.113.5\"",
                "protocol \"sctp\"",
            ),
            ("0 tcp 203.0.113.5", "\"0 tcp 203.0.113.5\"", "port \"0\""),
            (
                "65536 tcp 203.0.113.5",
                "\"65536 tcp 203.0.113.5\"",
                "port \"65536\"",
            ),
            (
                "80 tcp 203.0.113.5 0",
                "\"80 tcp 203.0.113.5 0\"",
                "port \"0\"",
            ),
            ("x tcp 203.0.113.5", "\"x tcp 203.0.113.5\"", "port \"x\""),
            (
                "80 tcp 203.0.113.500",
                "\"80 tcp 203.0.113.500\"",
                "not an IPv4 address",
            ),
            (
                "80 tcp 2001:db8::1",
                "\"80 tcp 2001:db8::1\"",
                "not an IPv4 address",
            ),
            (
                "80 tcp example.com",
                "\"80 tcp example.com\"",
                "not an IPv4 address",
            ),
            ("0.0.0.0", "\"0.0.0.0\"", "not a unicast address"),
            ("0.1.2.3", "\"0.1.2.3\"", "not a unicast address"),
            (
                "80 tcp 240.0.0.1",
                "\"80 tcp 240.0.0.1\"",
                "not a unicast address",
            ),
            (
                "+80 tcp 203.0.113.5",
                "\"+80 tcp 203.0.113.5\"",
                "port \"+80\"",
            ),
            (
                "080 tcp 203.0.113.5",
                "\"080 tcp 203.0.113.5\"",
                "port \"080\"",
            ),
            (
                "80 tcp 203.0.113.5 +81",
                "\"80 tcp 203.0.113.5 +81\"",
                "port \"+81\"",
            ),
            (
                "80 tcp 203.0.113.05",
                "\"80 tcp 203.0.113.05\"",
                "not an IPv4 address",
            ),
            (
                "80 tcp 224.0.0.1",
                "\"80 tcp 224.0.0.1\"",
                "not a unicast address",
            ),
            ("80 tcp", "\"80 tcp\"", "expected `IP`"),
            (
                "80 tcp 203.0.113.5 81 extra",
                "\"80 tcp 203.0.113.5 81 extra\"",
                "expected `IP`",
            ),
            (
                "203.0.113.7\n80 tcp 203.0.113.5",
                "\"80 tcp 203.0.113.5\"",
                "must be the last entry",
            ),
            (
                "203.0.113.7\n203.0.113.8",
                "\"203.0.113.8\"",
                "must be the last entry",
            ),
            (
                "80 tcp 203.0.113.5\n80 udp 203.0.113.6",
                "\"80 udp 203.0.113.6\"",
                "port 80 appears more than once",
            ),
        ];
        for (text, quoted, reason) in cases {
            let message = error_of(text);
            assert!(message.starts_with("EGRESS_DESTINATION: "), "{message}");
            assert!(message.contains(quoted), "{text:?} -> {message}");
            assert!(message.contains(reason), "{text:?} -> {message}");
        }
    }

    #[test]
    fn a_list_of_only_comments_is_an_error() {
        let message = error_of("# nothing\n\n");
        assert!(message.contains("no destination"), "{message}");
    }
}
