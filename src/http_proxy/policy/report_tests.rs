//! Report mode: what the list denies is let through with the list's reason; the
//! screens (never dialed, own listener, local-only) refuse as in enforce mode.

use super::*;
use crate::http_proxy::rules::parse_rules;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The proxy listens on 8080 and the namespace has 192.0.2.70.
fn own() -> OwnSockets {
    OwnSockets {
        ports: vec![8080],
        addresses: vec![ip("192.0.2.70")],
    }
}

fn decide_as(
    mode: ListMode,
    rules: &str,
    target: &str,
    port: u16,
    resolved: Option<&[&str]>,
) -> Decision {
    let resolved: Option<Vec<IpAddr>> = resolved.map(|all| all.iter().map(|a| ip(a)).collect());
    decide_in(
        mode,
        &parse_rules(rules).unwrap(),
        &Host::parse(target).unwrap(),
        port,
        resolved.as_deref(),
        &own(),
    )
}

fn report(rules: &str, target: &str, port: u16, resolved: Option<&[&str]>) -> Decision {
    decide_as(ListMode::Report, rules, target, port, resolved)
}

#[test]
fn what_the_list_denies_goes_through_with_the_lists_reason() {
    let rules = "!203.0.113.6\n203.0.113.5\n!bad.example.com";
    assert_eq!(
        report(rules, "203.0.113.6", 443, None),
        Decision::Report {
            denial: Denial::Rule(0),
            addresses: vec![ip("203.0.113.6")]
        }
    );
    assert_eq!(
        report(rules, "203.0.113.7", 443, None),
        Decision::Report {
            denial: Denial::NoRule,
            addresses: vec![ip("203.0.113.7")]
        }
    );
    assert_eq!(
        report(rules, "203.0.113.5", 443, None),
        Decision::Allow {
            rule: 1,
            addresses: vec![ip("203.0.113.5")]
        },
        "what the list allows stays allowed"
    );
    // a name denied by name needs its addresses before it may go through
    assert_eq!(
        report(rules, "bad.example.com", 443, None),
        Decision::NeedAddresses
    );
    assert_eq!(
        report(rules, "bad.example.com", 443, Some(&["203.0.113.9"])),
        Decision::Report {
            denial: Denial::Rule(2),
            addresses: vec![ip("203.0.113.9")]
        }
    );
}

#[test]
fn the_screens_still_refuse() {
    let rules = "203.0.113.5";
    for (target, port) in [("0.0.0.0", 443), ("255.255.255.255", 443), ("[::]", 443)] {
        assert!(
            matches!(
                report(rules, target, port, None),
                Decision::Deny(Denial::Never { .. })
            ),
            "{target}"
        );
    }
    assert!(matches!(
        report(rules, "192.0.2.70", 8081, None),
        Decision::Deny(Denial::PodAddress(_))
    ));
    assert!(matches!(
        report(rules, "127.0.0.1", 8080, None),
        Decision::Deny(Denial::OwnListener(_))
    ));
    for target in ["127.0.0.1", "169.254.169.254", "[::1]"] {
        assert!(
            matches!(
                report(rules, target, 443, None),
                Decision::Deny(Denial::LocalOnly { .. })
            ),
            "{target}"
        );
    }
    assert!(matches!(
        report(rules, "meta.example.com", 443, Some(&["169.254.169.254"])),
        Decision::Deny(Denial::LocalOnly { .. })
    ));
    assert_eq!(
        report(
            rules,
            "mixed.example.com",
            443,
            Some(&["127.0.0.1", "203.0.113.9"])
        ),
        Decision::Report {
            denial: Denial::NoRule,
            addresses: vec![ip("203.0.113.9")]
        },
        "only the addresses the screens let through"
    );
}

#[test]
fn a_name_with_some_screened_addresses_goes_through_to_the_others() {
    let through = |rules: &str, port: u16, answers: &[&str]| {
        report(rules, "mixed.example.com", port, Some(answers))
    };
    let others = Decision::Report {
        denial: Denial::NoRule,
        addresses: vec![ip("203.0.113.9")],
    };
    assert_eq!(
        through("203.0.113.5", 443, &["0.0.0.0", "203.0.113.9"]),
        others
    );
    assert_eq!(
        through("203.0.113.5", 8080, &["192.0.2.70", "203.0.113.9"]),
        others
    );
    assert_eq!(through("::/0", 443, &["::1", "203.0.113.9"]), others);
    assert!(matches!(
        through("203.0.113.5", 443, &["0.0.0.0", "127.0.0.1"]),
        Decision::Deny(Denial::Never { .. } | Denial::LocalOnly { .. })
    ));
    // enforce: refused, as before
    assert!(matches!(
        decide_as(
            ListMode::Enforce,
            "203.0.113.5",
            "mixed.example.com",
            443,
            Some(&["0.0.0.0", "203.0.113.9"])
        ),
        Decision::Deny(Denial::Never { .. })
    ));
}

#[test]
fn enforce_mode_is_the_plain_decision() {
    let rules = "!203.0.113.6\n203.0.113.0/24\n*.example.com";
    for (target, resolved) in [
        ("203.0.113.6", None),
        ("203.0.113.7", None),
        ("198.51.100.1", None),
        ("www.example.com", Some(&["203.0.113.6"][..])),
        ("www.example.net", Some(&["198.51.100.1"][..])),
        ("192.0.2.70", None),
    ] {
        let resolved_ips: Option<Vec<IpAddr>> =
            resolved.map(|all| all.iter().map(|a| ip(a)).collect());
        let plain = decide(
            &parse_rules(rules).unwrap(),
            &Host::parse(target).unwrap(),
            8080,
            resolved_ips.as_deref(),
            &own(),
        );
        assert_eq!(
            decide_as(ListMode::Enforce, rules, target, 8080, resolved),
            plain,
            "{target}"
        );
    }
}
