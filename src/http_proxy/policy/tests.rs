//! The decision table, the screening of special addresses, and a bounded property
//! test: every spelling of an address gets the decision of its canonical form, and an
//! address a leading deny rule covers is never allowed, and report mode lets through
//! only ordinary addresses that are not the proxy.

use super::*;
use crate::http_proxy::rules::parse_rules;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn host(s: &str) -> Host {
    Host::parse(s).unwrap()
}

/// The proxy listens on 8080 and the namespace has 192.0.2.70 and 198.51.100.99.
fn own() -> OwnSockets {
    OwnSockets {
        ports: vec![8080],
        addresses: vec![ip("192.0.2.70"), ip("198.51.100.99")],
    }
}

#[test]
fn hosts_parse_names_and_canonical_literals() {
    assert_eq!(
        host("WWW.Example.COM."),
        Host::Name("www.example.com".into())
    );
    assert_eq!(host("203.0.113.5"), Host::Ip(ip("203.0.113.5")));
    assert_eq!(host("203.0.113.5."), Host::Ip(ip("203.0.113.5")));
    assert_eq!(host("[2001:db8::1]"), Host::Ip(ip("2001:db8::1")));
    assert_eq!(host("[::ffff:203.0.113.5]"), Host::Ip(ip("203.0.113.5")));
    assert_eq!(host("[64:ff9b::cb00:7105]"), Host::Ip(ip("203.0.113.5")));
    for bad in [
        "2001:db8::1",
        "bad host",
        "",
        "2130706433",
        "0x7f.0.0.1",
        "127.1",
        "010.0.0.1",
        "example.0x1",
        "[fe80::1%eth0]",
        "[203.0.113.5]",
    ] {
        assert_eq!(Host::parse(bad), None, "{bad:?}");
    }
    assert_eq!(host("[2001:db8::1]").to_string(), "[2001:db8::1]");
}

fn literal(rules: &str, target: &str, port: u16) -> Decision {
    decide(
        &parse_rules(rules).unwrap(),
        &host(target),
        port,
        None,
        &own(),
    )
}

fn named(rules: &str, name: &str, resolved: &[&str]) -> Decision {
    let addresses: Vec<IpAddr> = resolved.iter().map(|a| ip(a)).collect();
    decide(
        &parse_rules(rules).unwrap(),
        &host(name),
        443,
        Some(&addresses),
        &own(),
    )
}

#[test]
fn special_addresses_are_never_dialed_whatever_the_rules() {
    for target in [
        "0.0.0.0",
        "[::]",
        "0.1.2.3",
        "255.255.255.255",
        "224.0.0.1",
        "[ff02::1]",
        "240.0.0.1",
        "[2002:cb00:7105::1]",
        "[::ffff:0.0.0.0]",
    ] {
        assert!(
            matches!(
                literal("*", target, 80),
                Decision::Deny(Denial::Never { .. })
            ),
            "{target}"
        );
    }
    assert!(matches!(
        named("*", "web.example.com", &["0.0.0.0"]),
        Decision::Deny(Denial::Never { .. })
    ));
    assert_eq!(
        named("*", "web.example.com", &["0.0.0.0", "203.0.113.5"]),
        Decision::Allow {
            rule: 0,
            addresses: vec![ip("203.0.113.5")]
        }
    );
}

#[test]
fn the_own_listener_is_never_dialed() {
    for target in ["127.0.0.1", "[::1]", "127.0.0.5"] {
        assert_eq!(
            literal("127.0.0.0/8\n::1\n*", target, 8080),
            Decision::Deny(Denial::OwnListener(SocketAddr::new(host_ip(target), 8080))),
            "{target}"
        );
    }
    assert!(matches!(
        literal("127.0.0.0/8\n*", "127.0.0.1", 8081),
        Decision::Allow { .. }
    ));
}

#[test]
fn no_address_of_the_pod_is_dialed_on_any_port() {
    for (target, port) in [
        ("192.0.2.70", 8080),
        ("192.0.2.70", 8081),
        ("198.51.100.99", 22),
        ("[::ffff:192.0.2.70]", 5432),
    ] {
        assert_eq!(
            literal("192.0.2.0/24\n198.51.100.99\n*", target, port),
            Decision::Deny(Denial::PodAddress(host_ip(target))),
            "{target}:{port}"
        );
    }
    assert_eq!(
        named("*", "self.example.com", &["192.0.2.70"]),
        Decision::Deny(Denial::PodAddress(ip("192.0.2.70"))),
        "a name answering the pod's address"
    );
    for port in [8080, 8081, 443] {
        let mixed = decide(
            &parse_rules("*").unwrap(),
            &host("mixed.example.com"),
            port,
            Some(&[ip("192.0.2.70"), ip("203.0.113.5")]),
            &own(),
        );
        assert_eq!(
            mixed,
            Decision::Allow {
                rule: 0,
                addresses: vec![ip("203.0.113.5")]
            },
            "only the answers that are not the pod, port {port}"
        );
    }
    let reason = Denial::PodAddress(ip("192.0.2.70")).reason(&[], &host("self.example.com"));
    assert_eq!(
        reason,
        "self.example.com: 192.0.2.70 is an address of this pod, never dialed"
    );
}

fn host_ip(target: &str) -> IpAddr {
    match host(target) {
        Host::Ip(ip) => ip,
        Host::Name(_) => unreachable!(),
    }
}

#[test]
fn loopback_and_link_local_need_an_address_rule_inside_their_range() {
    for target in [
        "127.0.0.1",
        "169.254.169.254",
        "[::1]",
        "[fe80::1]",
        "[::ffff:127.0.0.1]",
    ] {
        assert!(
            matches!(
                literal("*", target, 80),
                Decision::Deny(Denial::LocalOnly { .. })
            ),
            "{target}"
        );
        assert!(
            matches!(
                literal("0.0.0.0/0\n::/0", target, 80),
                Decision::Deny(Denial::LocalOnly { .. })
            ),
            "{target}"
        );
    }
    assert!(matches!(
        literal("127.0.0.0/8", "127.0.0.1", 80),
        Decision::Allow { .. }
    ));
    assert!(matches!(
        literal("169.254.169.254", "169.254.169.254", 80),
        Decision::Allow { .. }
    ));
    assert!(matches!(
        named(
            "*.example.com",
            "metadata.example.com",
            &["169.254.169.254"]
        ),
        Decision::Deny(Denial::LocalOnly { .. })
    ));
    assert_eq!(
        named(
            "*.example.com\n127.0.0.1",
            "local.example.com",
            &["127.0.0.1"]
        ),
        Decision::Allow {
            rule: 1,
            addresses: vec![ip("127.0.0.1")]
        }
    );
}

#[test]
fn mapped_answers_and_literals_meet_the_ipv4_deny_rule() {
    let rules = "!203.0.113.0/24\n*";
    for target in [
        "203.0.113.5",
        "[::ffff:203.0.113.5]",
        "[::203.0.113.5]",
        "[64:ff9b::203.0.113.5]",
        "[::ffff:0:203.0.113.5]",
    ] {
        assert_eq!(
            literal(rules, target, 9000),
            Decision::Deny(Denial::Rule(0)),
            "{target}"
        );
    }
    for answer in ["::ffff:203.0.113.5", "64:ff9b::cb00:7105"] {
        assert_eq!(
            named(rules, "evil.example.net", &[answer]),
            Decision::Deny(Denial::Rule(0)),
            "{answer}"
        );
    }
}

#[test]
fn a_name_without_addresses_falls_through_to_the_following_rules() {
    assert_eq!(
        named("203.0.113.0/24", "nowhere.example.com", &[]),
        Decision::Deny(Denial::NoRule)
    );
    assert_eq!(
        named(
            "203.0.113.0/24\nnowhere.example.com",
            "nowhere.example.com",
            &[]
        ),
        Decision::Allow {
            rule: 1,
            addresses: vec![]
        }
    );
}

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
        let got = decide(&rules, &host(target), 443, resolved.as_deref(), &own());
        let expected = match *outcome {
            "allow" => Decision::Allow {
                rule: rule.unwrap(),
                addresses: dial.iter().map(|a| ip(a)).collect(),
            },
            "deny" => Decision::Deny(rule.map_or(Denial::NoRule, Denial::Rule)),
            _ => Decision::NeedAddresses,
        };
        assert_eq!(got, expected, "rules {rules:?} target {target}");
    }
}

/// A small deterministic generator (xorshift), so the property test needs no crate
/// and every run checks the same bounded set of cases.
struct Gen(u64);

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

const NETS: &[&str] = &[
    "203.0.113.0/24",
    "203.0.113.5",
    "203.0.113.0/28",
    "198.51.100.0/24",
    "0.0.0.0/0",
    "::/0",
    "::ffff:203.0.113.0/120",
    "64:ff9b::cb00:7105",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "2001:db8::/32",
    "192.0.2.64/26",
];
const NAMES: &[&str] = &["web.example.com", "*.example.com", "other.example.net"];
const ADDRESSES: &[&str] = &[
    "203.0.113.5",
    "203.0.113.200",
    "198.51.100.7",
    "127.0.0.1",
    "192.0.2.70",
    "0.0.0.0",
    "169.254.169.254",
    "10.1.2.3",
    "255.255.255.255",
];

/// Every way a client or a DNS answer can spell the IPv4 address `v4`.
fn spellings(v4: std::net::Ipv4Addr) -> Vec<String> {
    let [a, b, c, d] = v4.octets();
    let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    let mut all = vec![
        format!("{v4}"),
        format!("{v4}."),
        format!("[::ffff:{v4}]"),
        format!("[::FFFF:{hi:x}:{lo:X}]"),
        format!("[0:0:0:0:0:ffff:{v4}]"),
        format!("[::ffff:0:{v4}]"),
        format!("[64:ff9b::{hi:x}:{lo:x}]"),
    ];
    // `::` and `::1` are IPv6's own addresses, not compatible spellings of 0.0.0.0/1.
    if u32::from(v4) > 1 {
        all.push(format!("[::{v4}]"));
    }
    all
}

fn random_rules(g: &mut Gen, deny_first: bool) -> String {
    let mut lines = Vec::new();
    for i in 0..1 + g.below(5) {
        let body = if g.below(4) == 0 {
            g.pick(NAMES)
        } else {
            g.pick(NETS)
        };
        let deny = if deny_first {
            i == 0 || g.below(2) == 0
        } else {
            g.below(2) == 0
        };
        lines.push(format!("{}{body}", if deny { "!" } else { "" }));
    }
    if deny_first {
        lines.retain(|l| l.starts_with('!') && !NAMES.iter().any(|n| l.ends_with(n)));
        lines.push(g.pick(NETS).to_string());
    }
    if g.below(2) == 0 {
        lines.push("*".into());
    }
    lines.join("\n")
}

fn never_dialed(address: IpAddr, port: u16) -> bool {
    matches!(address::class(address), Class::Never(_))
        || own().contains(address, port)
        || own().is_pod_address(address)
}

#[test]
fn property_every_spelling_decides_alike_and_deny_rules_hold() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let deny_first = g.below(2) == 0;
        let rules = parse_rules(&random_rules(&mut g, deny_first)).unwrap();
        let v4: std::net::Ipv4Addr = g.pick(ADDRESSES).parse().unwrap();
        let port = [80, 443, 8080][g.below(3)];
        let canonical = decide(&rules, &Host::Ip(IpAddr::V4(v4)), port, None, &own());
        let by_name = |answer: IpAddr| {
            decide(
                &rules,
                &host("web.example.com"),
                port,
                Some(&[answer]),
                &own(),
            )
        };
        let name_canonical = by_name(IpAddr::V4(v4));
        for spelling in spellings(v4) {
            let parsed = Host::parse(&spelling).unwrap_or_else(|| panic!("{spelling}"));
            let got = decide(&rules, &parsed, port, None, &own());
            assert_eq!(got, canonical, "rules {rules:?}, target {spelling}:{port}");
            let answer: IpAddr = spelling
                .trim_start_matches('[')
                .trim_end_matches(['.', ']'])
                .parse()
                .unwrap();
            assert_eq!(
                by_name(answer),
                name_canonical,
                "rules {rules:?}, answer {answer}"
            );
        }
        let reported = decide_in(
            ListMode::Report,
            &rules,
            &Host::Ip(IpAddr::V4(v4)),
            port,
            None,
            &own(),
        );
        if let Decision::Report { addresses, .. } = &reported {
            assert!(
                addresses
                    .iter()
                    .all(|a| !never_dialed(*a, port)
                        && matches!(address::class(*a), Class::Dialable)),
                "rules {rules:?}: report mode lets {reported:?} through"
            );
        }
        // a name answering with this address and another: report mode refuses it only
        // when no answer is an ordinary address other than the proxy's
        let other: IpAddr = g.pick(ADDRESSES).parse().unwrap();
        let answers = [IpAddr::V4(v4), other];
        let ordinary: Vec<IpAddr> = answers
            .iter()
            .map(|a| address::canonical(*a))
            .filter(|a| matches!(address::class(*a), Class::Dialable) && !never_dialed(*a, port))
            .collect();
        let named = decide_in(
            ListMode::Report,
            &rules,
            &host("web.example.com"),
            port,
            Some(&answers),
            &own(),
        );
        match &named {
            Decision::Report { addresses, .. } => assert!(
                addresses.iter().all(|a| ordinary.contains(a)),
                "rules {rules:?}, answers {answers:?}: {named:?}"
            ),
            Decision::Allow { addresses, .. } => assert!(
                addresses.iter().all(|a| !never_dialed(*a, port)),
                "rules {rules:?}, answers {answers:?}: {named:?}"
            ),
            Decision::Deny(_) => assert!(
                ordinary.is_empty(),
                "rules {rules:?}, answers {answers:?}: report mode refused {named:?}"
            ),
            Decision::NeedAddresses => panic!("answers were given: {named:?}"),
        }
        for decision in [&canonical, &name_canonical] {
            if let Decision::Allow { addresses, .. } = decision {
                assert!(
                    addresses.iter().all(|a| !never_dialed(*a, port)),
                    "rules {rules:?}: {decision:?} dials a never-dialed address"
                );
            }
        }
        if deny_first {
            let covered = rules.iter().take_while(|r| r.deny).any(
                |r| matches!(&r.matcher, Matcher::Network(net) if net.contains(&IpAddr::V4(v4))),
            );
            if covered {
                assert!(
                    matches!(canonical, Decision::Deny(_))
                        && matches!(name_canonical, Decision::Deny(_)),
                    "rules {rules:?}: {v4} is covered by a deny rule but {canonical:?} / {name_canonical:?}"
                );
            }
        }
    }
}
