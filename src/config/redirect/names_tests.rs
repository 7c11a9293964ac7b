//! Host names where an address stands (SPEC section 13).

use super::*;

fn name(s: &str) -> Target {
    Target::Name(s.into())
}

#[test]
fn a_host_name_stands_where_an_address_does() {
    let parsed =
        parse_destinations("80 tcp DB.Example.COM.\n8080 tcp api.example.com 443\ndb.example.com")
            .unwrap();
    assert_eq!(
        parsed,
        vec![
            Destination::Port {
                port: 80,
                protocol: Protocol::Tcp,
                target: name("db.example.com"),
                target_port: None
            },
            Destination::Port {
                port: 8080,
                protocol: Protocol::Tcp,
                target: name("api.example.com"),
                target_port: Some(443)
            },
            Destination::Fallback(name("db.example.com")),
        ]
    );
    let shown: Vec<String> = parsed.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "80 tcp db.example.com",
            "8080 tcp api.example.com 443",
            "db.example.com"
        ]
    );
    assert_eq!(parsed[0].family(), None);
    assert!(parsed[0].redirects(Family::V4) && parsed[0].redirects(Family::V6));
    assert_eq!(names(&parsed), ["db.example.com", "api.example.com"]);
    assert!(forwards(Family::V6, &parsed));
    assert!(!forwards(
        Family::V6,
        &parse_destinations("203.0.113.7").unwrap()
    ));
}

#[test]
fn a_numeric_last_label_is_an_address_with_every_check_of_one() {
    for (text, reason) in [
        ("80 tcp 203.0.113.500", "is not an IPv4 or IPv6 address"),
        ("80 tcp example.0x7f", "is not an IPv4 or IPv6 address"),
        ("80 tcp 2130706433", "is not an IPv4 or IPv6 address"),
        ("80 tcp 203.0.113.05", "is not an IPv4 or IPv6 address"),
        ("80 tcp 127.0.0.1", "is not a unicast address"),
        ("80 tcp db", "nor a host name with at least one dot"),
        ("80 tcp -db.example.com", "nor a host name"),
        ("80 tcp db..example.com", "nor a host name"),
        ("80 tcp db.example.com/24", "nor a host name"),
        (
            "80 tcp db.example.com:5432",
            "is not an IPv4 or IPv6 address",
        ),
    ] {
        let error = parse_destinations(text).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("EGRESS_DESTINATION: line {text:?}: "))
                && error.contains(reason),
            "{text:?} -> {error}"
        );
    }
}

#[test]
fn a_name_takes_its_port_and_its_fallback_in_every_family() {
    let error = |text: &str| parse_destinations(text).unwrap_err().to_string();
    let duplicate = error("80 tcp db.example.com\n80 tcp 2001:db8:2::5");
    assert!(
        duplicate.contains("local port 80 appears more than once for IPv6"),
        "{duplicate}"
    );
    let duplicate = error("80 tcp 203.0.113.5\n80 udp db.example.com");
    assert!(
        duplicate.contains("local port 80 appears more than once for IPv4"),
        "{duplicate}"
    );
    let duplicate = error("80 tcp a.example.com\n80 tcp b.example.com");
    assert!(
        duplicate.ends_with("local port 80 appears more than once"),
        "{duplicate}"
    );
    let second = error("2001:db8:2::7\ndb.example.com");
    assert!(
        second.contains("\"db.example.com\": is a second IPv6 fallback: a name's fallback is the fallback of every family"),
        "{second}"
    );
    let second = error("db.example.com\n203.0.113.7");
    assert!(
        second.contains("\"203.0.113.7\": is a second IPv4 fallback address"),
        "{second}"
    );
    let after = error("db.example.com\n80 tcp 203.0.113.5");
    assert!(
        after.contains("must come after every port entry"),
        "{after}"
    );
    assert!(
        parse_destinations("80 tcp 203.0.113.5\n443 tcp db.example.com\ndb.example.com").is_ok()
    );
}

#[test]
fn the_cni_plugin_refuses_names_and_says_where_they_work() {
    let entries = ["80 tcp db.example.com".to_string()];
    let error = parse_cni_destinations(&entries).unwrap_err().to_string();
    assert!(
        error.starts_with("destinations: entry \"80 tcp db.example.com\": \"db.example.com\" is a host name: the CNI plugin sets up once and cannot follow DNS")
            && error.contains("init container")
            && error.contains("redirect container"),
        "{error}"
    );
    let fallback = parse_cni_destinations(&["DB.example.com/32".to_string()])
        .unwrap_err()
        .to_string();
    assert!(fallback.contains("is a host name"), "{fallback}");
}
