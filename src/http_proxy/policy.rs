//! The allow/deny list of `EGRESS_HTTP_PROXY_DESTINATION` (SPEC section 4) and the
//! decision it makes for a target: a pure function, so it is tested on a table.
//!
//! A decision about a host name may need its addresses (address rules match when a
//! resolved address is inside). [`decide`] says so instead of resolving, so a name
//! denied by a name rule is never looked up, and an allow always comes with the
//! exact addresses that were checked: the only ones the proxy may dial.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::names::{looks_like_ipv4, normalize_host_name};

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

/// The host part of a request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name, lower-cased, without a trailing dot.
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Host {
    /// Parses a host as found in a request (`[v6]` brackets accepted); `None` if invalid.
    pub fn parse(text: &str) -> Option<Host> {
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return inner
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .map(|ip| Host::Ip(IpAddr::V6(ip)));
        }
        if let Ok(ip) = text.parse::<std::net::Ipv4Addr>() {
            return Some(Host::Ip(IpAddr::V4(ip)));
        }
        normalize_host_name(text).map(Host::Name)
    }
}

/// Parses the whole list; every error quotes the offending line.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>> {
    let mut rules: Vec<Rule> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
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
    } else if let Ok(net) = body.parse::<IpNet>() {
        Matcher::Network(net.trunc())
    } else if let Ok(ip) = body.parse::<IpAddr>() {
        Matcher::Network(IpNet::from(ip))
    } else if body.contains(['/', ':']) || looks_like_ipv4(body) {
        return Err(line_error(line, "is not a valid IP address or CIDR"));
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

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Connect, to one of these checked addresses only (in preference order).
    Allow {
        /// Index of the deciding rule.
        rule: usize,
        /// Addresses the request may be sent to.
        addresses: Vec<IpAddr>,
    },
    /// Refuse; `rule` is `None` when no rule matched (default deny).
    Deny {
        /// Index of the deciding rule.
        rule: Option<usize>,
    },
    /// The decision depends on the addresses of the host name: resolve it and ask again.
    NeedAddresses,
}

/// Applies `rules` to `host`. For a host name, `resolved` holds its addresses once
/// looked up (`None` before). First match decides; no match denies.
pub fn decide(rules: &[Rule], host: &Host, resolved: Option<&[IpAddr]>) -> Decision {
    let literal;
    let addresses: Option<&[IpAddr]> = match host {
        Host::Ip(ip) => {
            literal = [*ip];
            Some(&literal)
        }
        Host::Name(_) => resolved,
    };
    for (index, rule) in rules.iter().enumerate() {
        let matched: Option<Vec<IpAddr>> = match &rule.matcher {
            Matcher::Any => Some(Vec::new()),
            Matcher::Name(name) => matches!(host, Host::Name(h) if h == name).then(Vec::new),
            Matcher::Domain(domain) => {
                matches!(host, Host::Name(h) if in_domain(h, domain)).then(Vec::new)
            }
            Matcher::Network(net) => {
                let Some(addresses) = addresses else {
                    return Decision::NeedAddresses;
                };
                let inside: Vec<IpAddr> = addresses
                    .iter()
                    .copied()
                    .filter(|a| net.contains(a))
                    .collect();
                (!inside.is_empty()).then_some(inside)
            }
        };
        let Some(inside) = matched else { continue };
        if rule.deny {
            return Decision::Deny { rule: Some(index) };
        }
        let Some(addresses) = addresses else {
            return Decision::NeedAddresses;
        };
        let mut allowed = if inside.is_empty() {
            addresses.to_vec()
        } else {
            inside
        };
        allowed.sort_by_key(|a| a.is_ipv6());
        return Decision::Allow {
            rule: index,
            addresses: allowed,
        };
    }
    Decision::Deny { rule: None }
}

fn in_domain(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn host(s: &str) -> Host {
        Host::parse(s).unwrap()
    }

    #[test]
    fn parses_every_rule_form() {
        let rules = parse_rules("# c\n\n203.0.113.5\n!198.51.100.0/24\n2001:db8::/32\n2001:db8::1\n*.Example.COM.\nweb.example.net\n*\n").unwrap();
        let matchers: Vec<_> = rules.iter().map(|r| (r.deny, r.matcher.clone())).collect();
        assert_eq!(
            matchers,
            vec![
                (false, Matcher::Network("203.0.113.5/32".parse().unwrap())),
                (true, Matcher::Network("198.51.100.0/24".parse().unwrap())),
                (false, Matcher::Network("2001:db8::/32".parse().unwrap())),
                (false, Matcher::Network("2001:db8::1/128".parse().unwrap())),
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
        assert_eq!(
            rules[0].matcher,
            Matcher::Network("203.0.113.0/24".parse().unwrap())
        );
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
        ] {
            let err = parse_rules(text).unwrap_err().to_string();
            assert!(
                err.starts_with("EGRESS_HTTP_PROXY_DESTINATION: "),
                "{text:?}: {err}"
            );
            assert!(err.contains(quoted), "{text:?}: {err}");
        }
    }

    #[test]
    fn hosts_parse_names_and_literals() {
        assert_eq!(
            host("WWW.Example.COM."),
            Host::Name("www.example.com".into())
        );
        assert_eq!(host("203.0.113.5"), Host::Ip(ip("203.0.113.5")));
        assert_eq!(host("[2001:db8::1]"), Host::Ip(ip("2001:db8::1")));
        assert_eq!(Host::parse("2001:db8::1"), None, "IPv6 needs brackets");
        assert_eq!(Host::parse("bad host"), None);
        assert_eq!(Host::parse(""), None);
        assert_eq!(host("[2001:db8::1]").to_string(), "[2001:db8::1]");
    }

    /// (rules, host, resolved addresses, expected outcome, deciding rule, dialable addresses)
    #[test]
    fn decision_table() {
        type Case<'a> = (
            &'a str,
            &'a str,
            Option<&'a [&'a str]>,
            &'a str,
            Option<usize>,
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            // exact names, case and trailing dot
            (
                "web.example.com",
                "web.example.com",
                Some(&["203.0.113.5"]),
                "allow",
                Some(0),
                &["203.0.113.5"],
            ),
            (
                "Web.Example.COM.",
                "WEB.example.com.",
                Some(&["203.0.113.5"]),
                "allow",
                Some(0),
                &["203.0.113.5"],
            ),
            (
                "web.example.com",
                "www.example.com",
                Some(&["203.0.113.5"]),
                "deny",
                None,
                &[],
            ),
            (
                "web.example.com",
                "sub.web.example.com",
                Some(&["203.0.113.5"]),
                "deny",
                None,
                &[],
            ),
            // wildcard domains
            (
                "*.example.com",
                "example.com",
                Some(&["203.0.113.5"]),
                "allow",
                Some(0),
                &["203.0.113.5"],
            ),
            (
                "*.example.com",
                "a.b.example.com",
                Some(&["203.0.113.5"]),
                "allow",
                Some(0),
                &["203.0.113.5"],
            ),
            (
                "*.example.com",
                "badexample.com",
                Some(&["203.0.113.5"]),
                "deny",
                None,
                &[],
            ),
            (
                "*.example.com",
                "example.com.evil.net",
                Some(&["203.0.113.5"]),
                "deny",
                None,
                &[],
            ),
            // IP literals are never matched by name rules, names are by address rules
            ("web.example.com", "203.0.113.5", None, "deny", None, &[]),
            ("*.example.com", "203.0.113.5", None, "deny", None, &[]),
            (
                "203.0.113.5",
                "203.0.113.5",
                None,
                "allow",
                Some(0),
                &["203.0.113.5"],
            ),
            (
                "203.0.113.5",
                "web.example.com",
                Some(&["203.0.113.5"]),
                "allow",
                Some(0),
                &["203.0.113.5"],
            ),
            ("203.0.113.0/24", "[2001:db8::1]", None, "deny", None, &[]),
            (
                "2001:db8::/32",
                "[2001:db8::1]",
                None,
                "allow",
                Some(0),
                &["2001:db8::1"],
            ),
            // only checked addresses are dialable
            (
                "203.0.113.5\n*",
                "multi.example.org",
                Some(&["203.0.113.7", "203.0.113.5"]),
                "allow",
                Some(0),
                &["203.0.113.5"],
            ),
            (
                "*",
                "multi.example.org",
                Some(&["2001:db8::1", "203.0.113.5"]),
                "allow",
                Some(0),
                &["203.0.113.5", "2001:db8::1"],
            ),
            // a name with any address in a denied range is denied
            (
                "!203.0.113.6/32\n*",
                "other.example.net",
                Some(&["203.0.113.5", "203.0.113.6"]),
                "deny",
                Some(0),
                &[],
            ),
            (
                "!203.0.113.6/32\n*",
                "web.example.com",
                Some(&["203.0.113.5"]),
                "allow",
                Some(1),
                &["203.0.113.5"],
            ),
            // first match wins, in both directions
            (
                "!web.example.com\n*.example.com",
                "web.example.com",
                None,
                "deny",
                Some(0),
                &[],
            ),
            (
                "web.example.com\n!*.example.com",
                "web.example.com",
                Some(&["203.0.113.5"]),
                "allow",
                Some(0),
                &["203.0.113.5"],
            ),
            (
                "!*.example.com\n203.0.113.5",
                "web.example.com",
                None,
                "deny",
                Some(0),
                &[],
            ),
            // default deny
            ("203.0.113.9", "203.0.113.5", None, "deny", None, &[]),
            ("!203.0.113.9", "203.0.113.5", None, "deny", None, &[]),
            // resolution needed: address rule reached, or an allow needs addresses
            ("203.0.113.5", "web.example.com", None, "resolve", None, &[]),
            ("*", "web.example.com", None, "resolve", None, &[]),
            (
                "*.example.com",
                "web.example.com",
                None,
                "resolve",
                None,
                &[],
            ),
            (
                "!*.example.net\n203.0.113.5",
                "web.example.net",
                None,
                "deny",
                Some(0),
                &[],
            ),
            // a name that resolved to nothing matches no address rule
            (
                "203.0.113.0/24",
                "empty.example.com",
                Some(&[]),
                "deny",
                None,
                &[],
            ),
        ];
        for (rules, target, resolved, outcome, rule, dial) in cases {
            let rules = parse_rules(rules).unwrap();
            let resolved: Option<Vec<IpAddr>> = resolved.map(|r| r.iter().map(|a| ip(a)).collect());
            let got = decide(&rules, &host(target), resolved.as_deref());
            let expected = match *outcome {
                "allow" => Decision::Allow {
                    rule: rule.unwrap(),
                    addresses: dial.iter().map(|a| ip(a)).collect(),
                },
                "deny" => Decision::Deny { rule: *rule },
                _ => Decision::NeedAddresses,
            };
            assert_eq!(got, expected, "rules {rules:?} target {target}");
        }
    }
}
