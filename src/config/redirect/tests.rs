use super::*;

fn at(s: &str) -> Target {
    Target::Address(s.parse().unwrap())
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
                target: at("203.0.113.5"),
                target_port: None
            },
            Destination::Port {
                port: 8080,
                protocol: Protocol::Tcp,
                target: at("203.0.113.6"),
                target_port: Some(80)
            },
            Destination::Port {
                port: 53,
                protocol: Protocol::Udp,
                target: at("203.0.113.5"),
                target_port: Some(5353)
            },
            Destination::Fallback(at("203.0.113.7")),
        ]
    );
}

#[test]
fn a_single_address_is_a_fallback_only_list() {
    assert_eq!(
        parse_destinations("203.0.113.25").unwrap(),
        vec![Destination::Fallback(at("203.0.113.25"))]
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
            "not an IPv4 or IPv6 address",
        ),
        (
            "80 tcp [2001:db8::1]",
            "\"80 tcp [2001:db8::1]\"",
            "without brackets",
        ),
        (
            "[2001:db8::1]:80",
            "\"[2001:db8::1]:80\"",
            "without brackets",
        ),
        (
            "80 tcp ::ffff:203.0.113.5",
            "\"80 tcp ::ffff:203.0.113.5\"",
            "an IPv4 address written as IPv6: write 203.0.113.5",
        ),
        (
            "80 tcp fe80::1",
            "\"80 tcp fe80::1\"",
            "not a unicast address a router can forward to",
        ),
        (
            "80 tcp ff02::1",
            "\"80 tcp ff02::1\"",
            "not a unicast address a router can forward to",
        ),
        (
            "80 tcp ::1",
            "\"80 tcp ::1\"",
            "not a unicast address a router can forward to",
        ),
        (
            "2001:db8:2::7\n80 tcp 203.0.113.5",
            "\"80 tcp 203.0.113.5\"",
            "must come after every port entry",
        ),
        (
            "203.0.113.7\n2001:db8:2::7\n203.0.113.8",
            "\"203.0.113.8\"",
            "a second IPv4 fallback address",
        ),
        (
            "2001:db8:2::7\n2001:db8:2::8",
            "\"2001:db8:2::8\"",
            "comes after the fallback address, which must be the last entry",
        ),
        (
            "80 tcp 2001:db8:2::5\n80 udp 2001:db8:2::6",
            "\"80 udp 2001:db8:2::6\"",
            "port 80 appears more than once",
        ),
        (
            "80 tcp example",
            "\"80 tcp example\"",
            "not an IPv4 or IPv6 address, nor a host name with at least one dot",
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
            "not an IPv4 or IPv6 address",
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
            "comes after the fallback address, which must be the last entry",
        ),
        (
            "203.0.113.7\n203.0.113.8",
            "\"203.0.113.8\"",
            "comes after the fallback address, which must be the last entry",
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

#[test]
fn ipv6_lines_take_their_own_ports_and_fallback() {
    let text = "80 tcp 203.0.113.5\n80 tcp 2001:db8:2::5\n8080 tcp 2001:db8:2::6 80\n203.0.113.7\n2001:db8:2::7\n";
    let parsed = parse_destinations(text).unwrap();
    let shown: Vec<String> = parsed.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "80 tcp 203.0.113.5",
            "80 tcp 2001:db8:2::5",
            "8080 tcp 2001:db8:2::6 80",
            "203.0.113.7",
            "2001:db8:2::7",
        ]
    );
    let families: Vec<Option<Family>> = parsed.iter().map(Destination::family).collect();
    assert_eq!(
        families,
        [Family::V4, Family::V6, Family::V6, Family::V4, Family::V6].map(Some)
    );
    // the same port in both families: a dual-stack Service maps it in each
    let message = error_of("80 tcp 2001:db8:2::5\n80 tcp 203.0.113.5\n80 udp 203.0.113.6");
    assert!(
        message.contains("local port 80 appears more than once for IPv4"),
        "{message}"
    );
    // a NAT64 address is an IPv6 destination (a translator beyond the gateway)
    assert_eq!(
        parse_destinations("80 tcp 64:ff9b::cb00:7105").unwrap()[0].family(),
        Some(Family::V6)
    );
    // an IPv6 address's spelling does not matter
    assert_eq!(
        parse_destinations("2001:0DB8:0002:0000::0005").unwrap(),
        vec![Destination::Fallback(at("2001:db8:2::5"))]
    );
}
