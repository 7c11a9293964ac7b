//! `EGRESS_SOURCE` and `EGRESS_GATEWAY` with one address a family.

use super::*;

#[test]
fn a_source_and_gateway_a_family_make_a_dual_stack_or_ipv6_only_router() {
    let dual = RouterConfig::from_vars(
        &with(&[
            ("EGRESS_SOURCE", "2001:db8:1::99/64, 198.51.100.99/24"),
            ("EGRESS_GATEWAY", "198.51.100.1,fe80::1%macvlan0"),
            (
                "EGRESS_DESTINATION",
                "80 tcp 203.0.113.5\n80 tcp 2001:db8:2::5",
            ),
        ]),
        None,
    )
    .unwrap();
    let shown: Vec<String> = dual
        .egress
        .iter()
        .map(|p| format!("{} via {}", p.source, p.gateway))
        .collect();
    assert_eq!(
        shown,
        [
            "198.51.100.99/24 via 198.51.100.1",
            "2001:db8:1::99/64 via fe80::1"
        ],
        "IPv4 first, paired by family"
    );
    assert_eq!(dual.sources(), "198.51.100.99/24,2001:db8:1::99/64");
    let only = RouterConfig::from_vars(
        &with(&[
            ("EGRESS_SOURCE", "2001:db8:1::99"),
            ("EGRESS_GATEWAY", "2001:db8:1::1"),
            ("EGRESS_DESTINATION", "2001:db8:2::7"),
        ]),
        None,
    )
    .unwrap();
    assert_eq!(only.egress.len(), 1);
    assert_eq!(only.egress[0].source.prefix_len, 128);
    assert_eq!(only.egress[0].family(), Family::V6);
    let elsewhere = RouterConfig::from_vars(
        &with(&[
            ("EGRESS_SOURCE", "2001:db8:1::99/64"),
            ("EGRESS_GATEWAY", "fe80::1%eth0"),
        ]),
        None,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        elsewhere,
        "EGRESS_GATEWAY: \"fe80::1%eth0\" names interface \"eth0\": the gateway is on macvlan0"
    );
}

#[test]
fn a_bad_source_is_reported_before_a_missing_gateway() {
    let err = RouterConfig::from_vars(&vars(&[("EGRESS_SOURCE", "198.51.100.300")]), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("EGRESS_SOURCE: \"198.51.100.300\""),
        "{err}"
    );
}
