//! The CNI dialect of the redirect list, and the variable's refusal of it.

use super::*;

fn at(s: &str) -> Target {
    Target::Address(s.parse().unwrap())
}

fn error_of(text: &str) -> String {
    let message = parse_destinations(text).unwrap_err().to_string();
    assert!(
        message.starts_with("EGRESS_DESTINATION: line "),
        "{message}"
    );
    message
}

#[test]
fn the_variable_rejects_the_operator_forms() {
    for (text, reason) in [
        ("80 TCP 203.0.113.5", "protocol \"TCP\" is not tcp or udp"),
        ("80 Udp 203.0.113.5", "protocol \"Udp\""),
        ("80 SCTP 203.0.113.5", "protocol \"SCTP\""),
        (
            "80 tcp 203.0.113.26/30",
            "\"203.0.113.26/30\" is not an IPv4 or IPv6 address",
        ),
        (
            "203.0.113.7/32",
            "\"203.0.113.7/32\" is not an IPv4 or IPv6 address",
        ),
    ] {
        let message = error_of(text);
        assert!(message.contains(reason), "{text:?} -> {message}");
    }
}

fn cni(entries: &[&str]) -> Result<Vec<Destination>> {
    let owned: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    parse_cni_destinations(&owned)
}

#[test]
fn cni_entries_take_the_variable_forms_and_the_operator_forms() {
    let parsed = cni(&[
        "80 UDP 203.0.113.0/30",
        "8080 TCP 203.0.113.26/30 80",
        "9000 sctp 203.0.113.5",
        "9001 Sctp 203.0.113.6 9",
        "53 udp 203.0.113.5 5353",
        " 203.0.113.7/24 ",
    ])
    .unwrap();
    let port = |port, protocol, address: &str, target_port| Destination::Port {
        port,
        protocol,
        target: at(address),
        target_port,
    };
    assert_eq!(
        parsed,
        vec![
            port(80, Protocol::Udp, "203.0.113.0", None),
            port(8080, Protocol::Tcp, "203.0.113.26", Some(80)),
            port(9000, Protocol::Sctp, "203.0.113.5", None),
            port(9001, Protocol::Sctp, "203.0.113.6", Some(9)),
            port(53, Protocol::Udp, "203.0.113.5", Some(5353)),
            Destination::Fallback(at("203.0.113.7")),
        ]
    );
    assert_eq!(
        cni(&["203.0.113.7"]).unwrap(),
        vec![Destination::Fallback(at("203.0.113.7"))]
    );
    assert_eq!(cni(&["80 tcp 203.0.113.5/0"]).unwrap().len(), 1);
    assert_eq!(
        cni(&["8080 TCP 2001:db8:2::6/64 80", "2001:db8:2::7/128"]).unwrap(),
        vec![
            Destination::Port {
                port: 8080,
                protocol: Protocol::Tcp,
                target: at("2001:db8:2::6"),
                target_port: Some(80),
            },
            Destination::Fallback(at("2001:db8:2::7")),
        ]
    );
    assert_eq!(cni(&[]).unwrap(), vec![]);
}

#[test]
fn every_cni_error_names_the_field_and_quotes_the_entry() {
    let cases: [(&[&str], &str, &str); 14] = [
        (
            &["80 icmp 203.0.113.5"],
            "\"80 icmp 203.0.113.5\"",
            "is not tcp, udp or sctp",
        ),
        (
            &["80 tcp 203.0.113.5/33"],
            "\"80 tcp 203.0.113.5/33\"",
            "prefix length",
        ),
        (
            &["80 tcp 203.0.113.5/"],
            "\"80 tcp 203.0.113.5/\"",
            "prefix length",
        ),
        (
            &["80 tcp 203.0.113.5/024"],
            "\"80 tcp 203.0.113.5/024\"",
            "prefix length",
        ),
        (&["203.0.113.5/x"], "\"203.0.113.5/x\"", "prefix length"),
        (
            &["80 tcp 203.0.113.5/24/1"],
            "\"80 tcp 203.0.113.5/24/1\"",
            "prefix length",
        ),
        (
            &["80 tcp 2001:db8::5/129"],
            "\"80 tcp 2001:db8::5/129\"",
            "not from 0 to 128",
        ),
        (&["224.0.0.1/4"], "\"224.0.0.1/4\"", "not a unicast address"),
        (
            &["0 TCP 203.0.113.5"],
            "\"0 TCP 203.0.113.5\"",
            "port \"0\"",
        ),
        (&[""], "\"\"", "expected `IP`"),
        (&["# comment"], "\"# comment\"", "expected `IP`"),
        (
            &["203.0.113.7", "80 tcp 203.0.113.5"],
            "\"80 tcp 203.0.113.5\"",
            "must be the last entry",
        ),
        (
            &["80 TCP 203.0.113.5", "80 sctp 203.0.113.6"],
            "\"80 sctp 203.0.113.6\"",
            "port 80 appears more than once",
        ),
        (
            &["80 tcp 203.0.113.5 65536"],
            "\"80 tcp 203.0.113.5 65536\"",
            "port \"65536\"",
        ),
    ];
    for (entries, quoted, reason) in cases {
        let err = cni(entries).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    var: "destinations",
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.starts_with("destinations: entry "), "{message}");
        assert!(message.contains(quoted), "{entries:?} -> {message}");
        assert!(message.contains(reason), "{entries:?} -> {message}");
    }
}
