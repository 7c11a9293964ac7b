use super::*;
use crate::config::family::Family;

fn vars(pairs: &[(&str, &str)]) -> Vars {
    Vars::from_pairs(pairs.iter().copied())
}

const GOOD: [(&str, &str); 3] = [
    ("EGRESS_SOURCE", "198.51.100.99"),
    ("EGRESS_GATEWAY", "198.51.100.1"),
    ("EGRESS_DESTINATION", "203.0.113.25\n"),
];

fn with(overrides: &[(&str, &str)]) -> Vars {
    let mut pairs: Vec<(&str, &str)> = GOOD
        .iter()
        .copied()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .collect();
    pairs.extend(overrides.iter().copied().filter(|(_, v)| *v != "<unset>"));
    vars(&pairs)
}

#[test]
fn defaults_to_legacy_mode_and_auto_backend_with_a_host_prefix() {
    let config = RouterConfig::from_vars(&with(&[]), None).unwrap();
    assert_eq!(config.mode, RouterMode::Legacy);
    assert_eq!(config.backend, BackendChoice::Auto);
    assert_eq!(
        config.egress,
        vec![EgressPair {
            source: SourceAddress {
                address: "198.51.100.99".parse().unwrap(),
                prefix_len: 32
            },
            gateway: "198.51.100.1".parse().unwrap(),
        }]
    );
    assert_eq!(config.destinations.len(), 1);
}

#[test]
fn accepts_every_mode_and_a_source_prefix() {
    for (text, mode) in [
        ("init", RouterMode::Init),
        ("legacy", RouterMode::Legacy),
        ("http-proxy", RouterMode::HttpProxy),
        ("dns-proxy", RouterMode::DnsProxy),
        ("unit-test", RouterMode::UnitTest),
    ] {
        let config = RouterConfig::from_vars(
            &with(&[
                ("EGRESS_ROUTER_MODE", text),
                ("EGRESS_SOURCE", " 198.51.100.99/24 "),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(config.mode, mode);
        assert_eq!(config.egress[0].source.prefix_len, 24);
    }
}

#[test]
fn the_explicit_mode_wins_over_the_variable() {
    let config = RouterConfig::from_vars(
        &with(&[("EGRESS_ROUTER_MODE", "legacy")]),
        Some(RouterMode::Init),
    )
    .unwrap();
    assert_eq!(config.mode, RouterMode::Init);
}

#[test]
fn proxy_modes_do_not_need_destinations() {
    let config = RouterConfig::from_vars(
        &with(&[
            ("EGRESS_ROUTER_MODE", "http-proxy"),
            ("EGRESS_DESTINATION", "<unset>"),
        ]),
        None,
    )
    .unwrap();
    assert!(config.destinations.is_empty());
}

#[test]
fn backend_choice_is_parsed() {
    for (text, backend) in [
        ("auto", BackendChoice::Auto),
        ("nft", BackendChoice::Nft),
        ("legacy", BackendChoice::Legacy),
    ] {
        let config =
            RouterConfig::from_vars(&with(&[("EGRESS_ROUTER_IPTABLES_BACKEND", text)]), None)
                .unwrap();
        assert_eq!(config.backend, backend);
    }
}

#[test]
fn every_bad_value_names_its_variable_and_quotes_the_value() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[("EGRESS_SOURCE", "<unset>")], "EGRESS_SOURCE", "not set"),
        (&[("EGRESS_SOURCE", "   ")], "EGRESS_SOURCE", "not set"),
        (
            &[("EGRESS_SOURCE", "198.51.100.300")],
            "EGRESS_SOURCE",
            "\"198.51.100.300\"",
        ),
        (
            &[("EGRESS_SOURCE", "198.51.100.99/33")],
            "EGRESS_SOURCE",
            "\"198.51.100.99/33\"",
        ),
        (
            &[("EGRESS_SOURCE", "198.51.100.99/0")],
            "EGRESS_SOURCE",
            "\"198.51.100.99/0\"",
        ),
        (
            &[("EGRESS_SOURCE", "fe80::99")],
            "EGRESS_SOURCE",
            "\"fe80::99\" is link-local",
        ),
        (
            &[("EGRESS_SOURCE", "255.255.255.255")],
            "EGRESS_SOURCE",
            "\"255.255.255.255\"",
        ),
        (
            &[("EGRESS_SOURCE", "198.51.100.0/24")],
            "EGRESS_SOURCE",
            "\"198.51.100.0/24\" is the network address",
        ),
        (
            &[("EGRESS_SOURCE", "198.51.100.255/24")],
            "EGRESS_SOURCE",
            "\"198.51.100.255/24\" is the broadcast address",
        ),
        (
            &[("EGRESS_SOURCE", "0.1.2.3")],
            "EGRESS_SOURCE",
            "\"0.1.2.3\"",
        ),
        (
            &[("EGRESS_SOURCE", "240.0.0.5")],
            "EGRESS_SOURCE",
            "\"240.0.0.5\"",
        ),
        (
            &[("EGRESS_GATEWAY", "0.0.0.0")],
            "EGRESS_GATEWAY",
            "\"0.0.0.0\"",
        ),
        (
            &[("EGRESS_GATEWAY", "<unset>")],
            "EGRESS_GATEWAY",
            "not set",
        ),
        (
            &[("EGRESS_GATEWAY", "gateway.local")],
            "EGRESS_GATEWAY",
            "\"gateway.local\"",
        ),
        (
            &[("EGRESS_GATEWAY", "198.51.100.99")],
            "EGRESS_GATEWAY",
            "same address as EGRESS_SOURCE",
        ),
        (
            &[("EGRESS_DESTINATION", "<unset>")],
            "EGRESS_DESTINATION",
            "not set",
        ),
        (
            &[("EGRESS_DESTINATION", "80 sctp 203.0.113.5")],
            "EGRESS_DESTINATION",
            "\"80 sctp 203.0.113.5\"",
        ),
        (
            &[("EGRESS_SOURCE", "2001:db8:1::99/64")],
            "EGRESS_GATEWAY",
            "\"198.51.100.1\" is an IPv4 gateway, but EGRESS_SOURCE has no IPv4 address",
        ),
        (
            &[("EGRESS_SOURCE", "198.51.100.99,2001:db8:1::99/64")],
            "EGRESS_GATEWAY",
            "has no IPv6 gateway for EGRESS_SOURCE \"2001:db8:1::99/64\"",
        ),
        (
            &[("EGRESS_SOURCE", "198.51.100.99,198.51.100.98")],
            "EGRESS_SOURCE",
            "\"198.51.100.99\" and \"198.51.100.98\" are both IPv4",
        ),
        (
            &[("EGRESS_SOURCE", "198.51.100.99,")],
            "EGRESS_SOURCE",
            "empty entry",
        ),
        (
            &[("EGRESS_SOURCE", "2001:db8:1::/64")],
            "EGRESS_SOURCE",
            "subnet-router anycast address",
        ),
        (
            &[("EGRESS_SOURCE", "::ffff:198.51.100.99")],
            "EGRESS_SOURCE",
            "an IPv4 address written as IPv6: write 198.51.100.99",
        ),
        (
            &[
                ("EGRESS_SOURCE", "2001:db8:1::99/64"),
                ("EGRESS_GATEWAY", "2001:db8:1::"),
            ],
            "EGRESS_GATEWAY",
            "\"2001:db8:1::\" is the subnet-router anycast address of the subnet of 2001:db8:1::99/64",
        ),
        (
            &[("EGRESS_SOURCE", "2001:db8:1::99/129")],
            "EGRESS_SOURCE",
            "not from 1 to 128",
        ),
        (
            &[("EGRESS_DESTINATION", "# web\n 80  tcp 2001:DB8:2::5 ")],
            "EGRESS_DESTINATION",
            "line \"80  tcp 2001:DB8:2::5\": an IPv6 destination, but EGRESS_SOURCE has no IPv6 address",
        ),
        (
            &[("EGRESS_ROUTER_MODE", "bogus")],
            "EGRESS_ROUTER_MODE",
            "\"bogus\"",
        ),
        (
            &[("EGRESS_ROUTER_IPTABLES_BACKEND", "ebpf")],
            "EGRESS_ROUTER_IPTABLES_BACKEND",
            "\"ebpf\"",
        ),
    ];
    for (overrides, var, needle) in cases {
        let err = RouterConfig::from_vars(&with(overrides), None).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::Config { var: v, .. } if v == *var),
            "{overrides:?} -> {message}"
        );
        assert!(message.starts_with(&format!("{var}: ")), "{message}");
        assert!(message.contains(needle), "{overrides:?} -> {message}");
        assert_eq!(err.exit_code(), 2);
    }
}

mod pairs;

#[test]
fn the_metrics_port_is_exempted_from_a_fallback_only_when_set_and_reachable_on_eth0() {
    let exemption = |metrics: &str, destinations: &str, family| {
        let mut pairs = vec![("EGRESS_DESTINATION", destinations)];
        if metrics != "<unset>" {
            pairs.push(("EGRESS_METRICS_ADDRESS", metrics));
        }
        let config = RouterConfig::from_vars(&with(&pairs), None).unwrap();
        config.metrics_exemption(family)
    };
    assert_eq!(exemption(":9090", "203.0.113.25", Family::V4), Some(9090));
    assert_eq!(
        exemption("192.0.2.70:9100", "203.0.113.25", Family::V4),
        Some(9100)
    );
    for (metrics, why) in [
        ("<unset>", "unset keeps the rules as they were"),
        ("", "off"),
        ("127.0.0.1:9090", "loopback is not reached through eth0"),
        (
            "[2001:db8:9::70]:9090",
            "an IPv6 address is no IPv4 exemption",
        ),
    ] {
        assert_eq!(
            exemption(metrics, "203.0.113.25", Family::V4),
            None,
            "{why}"
        );
    }
    assert_eq!(
        exemption(":9090", "80 tcp 203.0.113.25", Family::V4),
        None,
        "no fallback, nothing to exempt"
    );
}
