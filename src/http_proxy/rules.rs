//! The allow/deny list of `EGRESS_HTTP_PROXY_DESTINATION` (SPEC section 4): one rule a
//! line, parsed whole or rejected with the offending line quoted.
//!
//! Addresses and networks are stored in canonical form ([`crate::config::address`]): a rule
//! written `::ffff:203.0.113.0/120` is the IPv4 network `203.0.113.0/24`. A rule whose
//! last label is a number is an address, never a name (`203.0.113.5.` is the address).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::address::canonical_net;
use crate::config::lines;
use crate::config::names::{ends_in_number, normalize_host_name, parse_ipv4};
use crate::error::{Error, Result};

const VAR: &str = "EGRESS_HTTP_PROXY_DESTINATION";

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `*`: everything.
    Any,
    /// An address or CIDR: destination addresses inside it.
    Network(IpNet),
    /// `example.com`: exactly that host name.
    Name(String),
    /// `*.example.com`: `example.com` and every name under it (stored without `*.`).
    Domain(String),
}

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The line as written (trimmed), for logs and 403 bodies.
    pub text: String,
    /// `!RULE`.
    pub deny: bool,
    /// What it matches.
    pub matcher: Matcher,
}

/// Parses the whole list; every error quotes the offending line.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>> {
    let mut rules: Vec<Rule> = Vec::new();
    for line in lines::entries(text) {
        if rules.last().is_some_and(|r| r.matcher == Matcher::Any) {
            return Err(line_error(
                line,
                "comes after `*`, which must be the last rule",
            ));
        }
        rules.push(parse_rule(line)?);
    }
    if rules.is_empty() {
        return Err(Error::config(VAR, format!("no rule in {text:?}")));
    }
    Ok(rules)
}

fn parse_rule(line: &str) -> Result<Rule> {
    let (deny, body) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let bad_address = || line_error(line, "is not a valid IP address or CIDR");
    let matcher = if body == "*" {
        if deny {
            return Err(line_error(
                line,
                "`!*` is not a rule: requests no rule allows are denied anyway",
            ));
        }
        Matcher::Any
    } else if let Some(domain) = body.strip_prefix("*.") {
        Matcher::Domain(
            normalize_host_name(domain)
                .ok_or_else(|| line_error(line, "is not `*.` followed by a domain name"))?,
        )
    } else if body.contains(['/', ':']) {
        let net = match body.parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => IpNet::from(body.parse::<IpAddr>().map_err(|_| bad_address())?),
        };
        Matcher::Network(canonical_net(net))
    } else if ends_in_number(body) {
        Matcher::Network(IpNet::from(IpAddr::V4(
            parse_ipv4(body).ok_or_else(bad_address)?,
        )))
    } else {
        Matcher::Name(normalize_host_name(body).ok_or_else(|| {
            line_error(
                line,
                "is not `*`, an IP address, a CIDR, `*.domain` or a host name",
            )
        })?)
    };
    Ok(Rule {
        text: line.to_string(),
        deny,
        matcher,
    })
}

fn line_error(line: &str, reason: &str) -> Error {
    Error::config(VAR, format!("line {line:?} {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Matcher {
        Matcher::Network(s.parse().unwrap())
    }

    #[test]
    fn parses_every_rule_form() {
        let rules = parse_rules("# c\n\n203.0.113.5\n!198.51.100.0/24\n2001:db8::/32\n2001:db8::1\n*.Example.COM.\nweb.example.net\n*\n").unwrap();
        let matchers: Vec<_> = rules.iter().map(|r| (r.deny, r.matcher.clone())).collect();
        assert_eq!(
            matchers,
            vec![
                (false, net("203.0.113.5/32")),
                (true, net("198.51.100.0/24")),
                (false, net("2001:db8::/32")),
                (false, net("2001:db8::1/128")),
                (false, Matcher::Domain("example.com".into())),
                (false, Matcher::Name("web.example.net".into())),
                (false, Matcher::Any),
            ]
        );
        assert_eq!(rules[1].text, "!198.51.100.0/24");
    }

    #[test]
    fn cidr_host_bits_are_dropped() {
        let rules = parse_rules("203.0.113.77/24").unwrap();
        assert_eq!(rules[0].matcher, net("203.0.113.0/24"));
    }

    #[test]
    fn every_spelling_of_an_address_rule_is_the_same_rule() {
        for spelling in [
            "203.0.113.5",
            "203.0.113.5.",
            "203.0.113.5/32",
            "::ffff:203.0.113.5",
            "::ffff:203.0.113.5/128",
            "64:ff9b::203.0.113.5",
        ] {
            let rules = parse_rules(&format!("!{spelling}")).unwrap();
            assert_eq!(rules[0].matcher, net("203.0.113.5/32"), "{spelling}");
        }
        let mapped = parse_rules("!::ffff:203.0.113.0/120").unwrap();
        assert_eq!(mapped[0].matcher, net("203.0.113.0/24"));
    }

    #[test]
    fn bad_lists_name_the_variable_and_quote_the_line() {
        for (text, quoted) in [
            ("", "no rule"),
            ("# only\n", "no rule"),
            ("*\nweb.example.com", "\"web.example.com\""),
            ("10.0.0.0/33", "\"10.0.0.0/33\""),
            ("203.0.113.300", "\"203.0.113.300\""),
            ("2001:db8::zz", "\"2001:db8::zz\""),
            ("!", "\"!\""),
            ("*.", "\"*.\""),
            ("*example.com", "\"*example.com\""),
            ("foo bar", "\"foo bar\""),
            ("!*", "\"!*\""),
            ("-bad.example.com", "\"-bad.example.com\""),
            ("http://example.com/", "\"http://example.com/\""),
            ("2130706433", "\"2130706433\""),
            ("0x7f.0.0.1", "\"0x7f.0.0.1\""),
            ("127.1", "\"127.1\""),
            ("010.0.0.1", "\"010.0.0.1\""),
            ("*.0.113.5", "\"*.0.113.5\""),
            ("fe80::1%eth0", "\"fe80::1%eth0\""),
        ] {
            let err = parse_rules(text).unwrap_err().to_string();
            assert!(
                err.starts_with("EGRESS_HTTP_PROXY_DESTINATION: "),
                "{text:?}: {err}"
            );
            assert!(err.contains(quoted), "{text:?}: {err}");
        }
    }
}
