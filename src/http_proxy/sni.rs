//! SNI-checked tunnels (pure): a CONNECT tunnel that a name rule allowed carries TLS
//! only to a server name the same list allows. The client's ClientHello
//! ([`client_hello`](super::client_hello)) names the server a shared front end (a CDN)
//! will route to; a name the list does not allow closes the tunnel before a byte of it
//! reaches the target. Tunnels an address rule allowed are not judged (the address
//! decision stands), nor is data that is not TLS, nor a ClientHello that names no
//! server.

use super::client_hello::Peek;
use super::policy::{self, Decision, Host};
use super::rules::{Matcher, Rule};
use crate::config::address::OwnSockets;
use crate::config::names::normalize_host_name;

/// `EGRESS_HTTP_PROXY_TLS_SNI`: whether tunnels are judged by their TLS server name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SniCheck {
    /// Judged; a server name the list does not allow closes the tunnel.
    #[default]
    Enforce,
    /// Not judged.
    Off,
}

/// Whether the tunnel to `host` that `rule` allowed is judged by its server name: a
/// host name allowed by a name rule (`name`, `*.domain`), and anything `*` allowed
/// (an address too: a server name the list denies is denied behind any address). A
/// tunnel an address rule allowed is not: the address decision stands.
pub fn judged(check: SniCheck, rule: &Rule, host: &Host) -> bool {
    check == SniCheck::Enforce
        && match rule.matcher {
            Matcher::Any => true,
            Matcher::Name(_) | Matcher::Domain(_) => matches!(host, Host::Name(_)),
            Matcher::Network(_) => false,
        }
}

/// What becomes of a judged tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Relayed, unjudged: not TLS, or no server name.
    Unjudged(&'static str),
    /// Relayed: the list allows the server name (by this rule).
    Allowed {
        /// The server name.
        name: String,
        /// The rule that allows it.
        rule: String,
    },
    /// Closed before relaying (in report mode: relayed and reported).
    Refused {
        /// Why, naming the server name when there is one.
        reason: String,
        /// The rule that refuses it, `default` when none allows it, `tls` when the
        /// bytes are no readable ClientHello.
        rule: String,
    },
}

/// The verdict of `rules` on a tunnel to port `port` whose client began with what
/// `peek` read (never [`Peek::Incomplete`]: the caller reads until it is not). The
/// server name is compared as request hosts are (case, one trailing dot, wildcards),
/// against the name rules only: a server name is never looked up, so an address rule
/// never allows one.
pub fn verdict(rules: &[Rule], port: u16, peek: &Peek) -> Verdict {
    let refused = |reason: String, rule: &str| Verdict::Refused {
        reason,
        rule: rule.to_string(),
    };
    let sent = match peek {
        Peek::NotTls => return Verdict::Unjudged("not TLS"),
        Peek::Hello(None) => return Verdict::Unjudged("a ClientHello without a server name"),
        Peek::Hello(Some(sent)) => sent,
        Peek::Malformed(reason) => {
            return refused(
                format!("TLS without a readable ClientHello: {reason}"),
                "tls",
            );
        }
        Peek::Incomplete => return refused("the ClientHello never ended".into(), "tls"),
    };
    let Some(name) = normalize_host_name(sent) else {
        return refused(
            format!("TLS server name {sent:?} is not a host name"),
            "tls",
        );
    };
    let host = Host::Name(name.clone());
    match policy::decide(rules, &host, port, Some(&[]), &OwnSockets::default()) {
        Decision::Allow { rule, .. } => Verdict::Allowed {
            name,
            rule: rules[rule].text.clone(),
        },
        Decision::Deny(denial) => refused(
            format!("TLS server name: {}", denial.reason(rules, &host)),
            &denial.log_rule(rules),
        ),
        Decision::NeedAddresses | Decision::Report { .. } => {
            refused(format!("TLS server name: no rule allows {host}"), "default")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_proxy::rules::parse_rules;

    fn rules(text: &str) -> Vec<Rule> {
        parse_rules(text).unwrap()
    }

    fn hello(name: &str) -> Peek {
        Peek::Hello(Some(name.into()))
    }

    #[test]
    fn a_name_the_list_allows_passes_and_any_other_is_refused() {
        let list = rules("api.example.com\n!bad.cdn.example\n*.cdn.example\n203.0.113.0/24");
        for (sent, allowed_by) in [
            ("api.example.com", "api.example.com"),
            ("API.Example.COM.", "api.example.com"),
            ("img.cdn.example", "*.cdn.example"),
        ] {
            assert_eq!(
                verdict(&list, 443, &hello(sent)),
                Verdict::Allowed {
                    name: normalize_host_name(sent).unwrap(),
                    rule: allowed_by.into()
                },
                "{sent}"
            );
        }
        for (sent, rule, reason) in [
            (
                "forbidden.example",
                "default",
                "no rule allows forbidden.example",
            ),
            ("bad.cdn.example", "!bad.cdn.example", "is denied by rule"),
            // an address is no server name (RFC 6066), and never looked up
            ("203.0.113.5", "tls", "is not a host name"),
            ("www.example.org", "default", "no rule allows"),
            ("x..example", "tls", "is not a host name"),
        ] {
            match verdict(&list, 443, &hello(sent)) {
                Verdict::Refused {
                    reason: r,
                    rule: found,
                } => {
                    assert_eq!(found, rule, "{sent}");
                    assert!(r.contains(reason), "{sent}: {r}");
                }
                other => panic!("{sent}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_data_and_unnamed_hellos_pass_and_broken_tls_does_not() {
        let list = rules("api.example.com");
        assert!(matches!(
            verdict(&list, 443, &Peek::NotTls),
            Verdict::Unjudged(_)
        ));
        assert!(matches!(
            verdict(&list, 443, &Peek::Hello(None)),
            Verdict::Unjudged(_)
        ));
        assert!(matches!(
            verdict(&list, 443, &Peek::Malformed("x")),
            Verdict::Refused { rule, .. } if rule == "tls"
        ));
    }

    #[test]
    fn tunnels_allowed_by_name_rules_or_star_are_judged() {
        let list = rules("api.example.com\n*.example.net\n203.0.113.0/24\n*");
        let name = Host::Name("api.example.com".into());
        let address = Host::Ip("203.0.113.5".parse().unwrap());
        assert!(judged(SniCheck::Enforce, &list[0], &name));
        assert!(judged(SniCheck::Enforce, &list[1], &name));
        assert!(
            !judged(SniCheck::Enforce, &list[2], &name),
            "an address rule decided"
        );
        assert!(judged(SniCheck::Enforce, &list[3], &name));
        assert!(
            judged(SniCheck::Enforce, &list[3], &address),
            "`*` allowed an address: `!name` before it still denies the name behind it"
        );
        assert!(
            !judged(SniCheck::Enforce, &list[2], &address),
            "an address rule decided"
        );
        assert!(!judged(SniCheck::Off, &list[0], &name));
    }
}
