use serde_json::json;

use super::super::NetConf;
use super::*;
use crate::error::Error;

/// A valid configuration with `patch` applied to its top level.
fn conf(patch: serde_json::Value) -> crate::error::Result<NetConf> {
    let mut base = json!({
        "cniVersion": "1.0.0",
        "name": "egress",
        "type": "egress-router",
        "ip": {"addresses": ["192.0.2.50/25"]}
    });
    for (key, value) in patch.as_object().unwrap() {
        base[key] = value.clone();
    }
    NetConf::parse(base.to_string().as_bytes())
}

#[test]
fn arguments_of_another_kind_and_bad_values_are_refused_naming_the_field() {
    let cases = [
        (
            json!({"interfaceType": "aws-elastic-ip", "interfaceArgs": {"mode": "l2"}}),
            7,
            "interfaceArgs.mode: is not an argument of interfaceType aws-elastic-ip",
        ),
        (
            json!({"interfaceType": "routed", "interfaceArgs": {"allocationId": "eipalloc-12345678"}}),
            7,
            "interfaceArgs.allocationId: is not an argument of interfaceType routed",
        ),
        (
            json!({"interfaceType": "routed", "interfaceArgs": {"proxyARP": true}}),
            7,
            "interfaceArgs.proxyARP: is not an argument of interfaceType routed",
        ),
        (
            json!({"interfaceArgs": {"proxyArp": true}}),
            7,
            "interfaceArgs.proxyArp: is not an argument of interfaceType macvlan",
        ),
        (
            json!({"interfaceType": "routed", "interfaceArgs": {"proxyArp": "yes"}}),
            7,
            "interfaceArgs.proxyArp: \"yes\" is not true or false",
        ),
        (
            json!({"interfaceType": "aws-elastic-ip", "interfaceArgs": {"networkInterfaceId": "eni-XYZ"}}),
            7,
            "interfaceArgs.networkInterfaceId: \"eni-XYZ\" is not an ID of the form eni-",
        ),
        (
            json!({"interfaceType": "aws-elastic-ip", "interfaceArgs": {"allocationId": "eipalloc-123"}}),
            7,
            "interfaceArgs.allocationId: \"eipalloc-123\" is not an ID of the form eipalloc-",
        ),
        (
            json!({"interfaceType": "aws-elastic-ip", "interfaceArgs": {"publicIp": "203.0.113.300"}}),
            7,
            "interfaceArgs.publicIp: \"203.0.113.300\" is not an IPv4 unicast address",
        ),
        (
            json!({"interfaceType": "aws-elastic-ip", "interfaceArgs": {"publicIp": "2001:db8::1"}}),
            7,
            "interfaceArgs.publicIp: \"2001:db8::1\" is not an IPv4 unicast address",
        ),
        (
            json!({"interfaceType": "aws-elastic-ip", "interfaceArgs": {"allocationId": "eipalloc-12345678", "publicIp": "203.0.113.10"}}),
            7,
            "interfaceArgs.publicIp: give allocationId or publicIp, not both",
        ),
    ];
    for (patch, code, want) in cases {
        match conf(patch.clone()).unwrap_err() {
            Error::Cni { code: got, message } => {
                assert!(message.starts_with(want), "{patch} -> {message}");
                assert_eq!(got, code, "{patch} -> {message}");
            }
            other => panic!("{patch}: {other:?}"),
        }
    }
}

#[test]
fn the_routed_kinds_and_their_arguments() {
    let routed = conf(json!({"interfaceType": "routed", "interfaceArgs": {"proxyArp": true, "mtu": 9001, "master": "eth1"}})).unwrap();
    assert_eq!(
        routed.interface,
        InterfaceSpec {
            kind: InterfaceKind::Routed,
            master: Some("eth1".into()),
            mtu: Some(9001),
            proxy_arp: true,
            aws: None,
        }
    );
    assert!(routed.interface.kind.is_routed());
    let aws = conf(json!({
        "interfaceType": "aws-elastic-ip",
        "interfaceArgs": {"networkInterfaceId": "eni-0123456789abcdef0", "allocationId": "eipalloc-89abcdef"}
    }))
    .unwrap();
    assert_eq!(aws.interface.kind, InterfaceKind::AwsElasticIp);
    assert_eq!(
        aws.interface.aws,
        Some(AwsArgs {
            network_interface_id: Some("eni-0123456789abcdef0".into()),
            elastic_ip: Some(ElasticIp::Allocation("eipalloc-89abcdef".into())),
        })
    );
    let by_address = conf(
        json!({"interfaceType": "aws-elastic-ip", "interfaceArgs": {"publicIp": "203.0.113.10"}}),
    )
    .unwrap();
    assert_eq!(
        by_address.interface.aws.unwrap().elastic_ip,
        Some(ElasticIp::PublicIp("203.0.113.10".parse().unwrap()))
    );
    let plain = conf(json!({"interfaceType": "aws-elastic-ip"})).unwrap();
    assert_eq!(
        plain.interface.aws,
        Some(AwsArgs::default()),
        "no Elastic IP: the private address only"
    );
    assert!(!plain.interface.proxy_arp);
    // macvlan keeps accepting keys it does not know, as it always did
    assert!(conf(json!({"interfaceArgs": {"foo": 1}})).is_ok());
}

#[test]
fn aws_ids_are_a_prefix_and_8_or_17_hex_digits() {
    assert!(is_aws_id("eni-12345678", "eni"));
    assert!(is_aws_id("eni-0123456789abcdef0", "eni"));
    for bad in [
        "eni-1234567",
        "eni-0123456789ABCDEF0",
        "eni-123456789",
        "eni12345678",
        "eipalloc-12345678",
        "eni-1234567g",
    ] {
        assert!(!is_aws_id(bad, "eni"), "{bad}");
    }
}
