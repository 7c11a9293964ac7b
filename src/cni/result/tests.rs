use serde_json::json;

use super::*;

fn ip_config() -> IpConfig {
    let value = json!({"addresses": ["192.0.2.99/24", "192.0.2.100"], "gateway": "192.0.2.1"});
    IpConfig::parse(value.as_object().unwrap(), "ip").unwrap()
}

fn add_result(version: CniVersion) -> String {
    let interface = Interface::new(
        "net1",
        [0x1a, 0x9b, 0x80, 0xa1, 0x1e, 0x09],
        Path::new("/var/run/netns/cni-1"),
    );
    SuccessResult::new(
        version,
        interface,
        &ip_config(),
        &["192.0.2.1".parse().unwrap()],
    )
    .to_json()
}

#[test]
fn add_results_before_1_0_carry_the_ip_version() {
    for version in ["0.3.0", "0.3.1", "0.4.0"] {
        assert_eq!(
            add_result(CniVersion::parse(version).unwrap()),
            format!(r#"{{"cniVersion":"{version}","#)
                + r#""interfaces":[{"name":"net1","mac":"1a:9b:80:a1:1e:09","sandbox":"/var/run/netns/cni-1"}],"#
                + r#""ips":[{"version":"4","interface":0,"address":"192.0.2.99/24","gateway":"192.0.2.1"},"#
                + r#"{"version":"4","interface":0,"address":"192.0.2.100/32"}],"#
                + r#""routes":[{"dst":"0.0.0.0/0","gw":"192.0.2.1"}],"dns":{}}"#
        );
    }
}

#[test]
fn add_results_from_1_0_have_no_ip_version() {
    for version in ["1.0.0", "1.1.0"] {
        assert_eq!(
            add_result(CniVersion::parse(version).unwrap()),
            format!(r#"{{"cniVersion":"{version}","#)
                + r#""interfaces":[{"name":"net1","mac":"1a:9b:80:a1:1e:09","sandbox":"/var/run/netns/cni-1"}],"#
                + r#""ips":[{"interface":0,"address":"192.0.2.99/24","gateway":"192.0.2.1"},"#
                + r#"{"interface":0,"address":"192.0.2.100/32"}],"#
                + r#""routes":[{"dst":"0.0.0.0/0","gw":"192.0.2.1"}],"dns":{}}"#
        );
    }
}

#[test]
fn version_answers_in_the_requested_version_or_1_0_0() {
    let supported = r#""supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#;
    for (requested, answered) in [
        (Some("0.4.0"), "0.4.0"),
        (Some("1.1.0"), "1.1.0"),
        (None, "1.0.0"),
        (Some("0.2.0"), "1.0.0"),
        (Some("9.9.9"), "1.0.0"),
    ] {
        assert_eq!(
            VersionResult::new(requested).to_json(),
            format!(r#"{{"cniVersion":"{answered}",{supported}"#),
            "{requested:?}"
        );
    }
}

#[test]
fn error_objects_carry_code_message_and_meaning() {
    let err = Error::cni(
        code::INVALID_NETWORK_CONFIG,
        r#"ip.gateway: "x" is not a unicast IPv4 address"#,
    );
    assert_eq!(
        ErrorResult::from_error(&err, Some("0.4.0")).to_json(),
        r#"{"cniVersion":"0.4.0","code":7,"msg":"ip.gateway: \"x\" is not a unicast IPv4 address","details":"invalid network config"}"#
    );
    let unsupported = CniVersion::requested("0.2.0").unwrap_err();
    let object = ErrorResult::from_error(&unsupported, Some("0.2.0"));
    assert_eq!((object.cni_version.as_str(), object.code), ("0.2.0", 1));
    assert_eq!(object.details, "incompatible CNI version");
    assert_eq!(ErrorResult::from_error(&err, None).cni_version, "1.0.0");
}

#[test]
fn every_error_maps_to_a_code() {
    let io = || {
        Error::io(
            "opening /var/run/netns/cni-1",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    };
    let cases = [
        (Error::cni(code::TRY_AGAIN_LATER, "busy"), 11),
        (Error::config("destinations", "entry \"x\": bad"), 7),
        (
            Error::NotUtf8 {
                var: "CNI_ARGS".into(),
            },
            4,
        ),
        (io(), 5),
        (
            Error::Setup {
                cause: Box::new(io()),
                rollback: vec![],
            },
            5,
        ),
        (Error::State("net1 already exists".into()), 100),
    ];
    for (err, want) in cases {
        assert_eq!(code::of(&err), want, "{err:?}");
    }
    let named = [
        (
            code::UNSUPPORTED_FIELD,
            "unsupported field in network configuration",
        ),
        (
            code::UNKNOWN_CONTAINER,
            "container unknown or does not exist",
        ),
        (
            code::INVALID_ENVIRONMENT,
            "invalid necessary environment variables",
        ),
        (code::IO_FAILURE, "I/O failure"),
        (code::DECODE_FAILURE, "failed to decode content"),
        (code::PLUGIN_NOT_AVAILABLE, "plugin not available"),
        (code::PLUGIN_FAILURE, "egress-router setup failed"),
        (101, "plugin-specific error"),
    ];
    for (code, meaning) in named {
        assert_eq!(code::meaning(code), meaning);
    }
    let rolled_back = Error::Setup {
        cause: Box::new(Error::State("x".into())),
        rollback: vec![],
    };
    assert_eq!(
        ErrorResult::from_error(&rolled_back, None).msg,
        "x (changes rolled back)"
    );
}

#[test]
fn a_dual_stack_result_lists_both_families_with_their_gateways_and_routes() {
    let value = json!({"addresses": ["192.0.2.99/24", "2001:db8:1::99/64"], "gateway": "192.0.2.1,fe80::1"});
    let ip = IpConfig::parse(value.as_object().unwrap(), "ip").unwrap();
    let interface = Interface::new("net1", [2, 0, 0, 0, 0, 1], Path::new("/run/netns/p"));
    let gateways = ["192.0.2.1".parse().unwrap(), "fe80::1".parse().unwrap()];
    let old = SuccessResult::new(
        CniVersion::parse("0.4.0").unwrap(),
        interface.clone(),
        &ip,
        &gateways,
    );
    let text = old.to_json();
    assert!(
        text.contains(r#""ips":[{"version":"4","interface":0,"address":"192.0.2.99/24","gateway":"192.0.2.1"},{"version":"6","interface":0,"address":"2001:db8:1::99/64","gateway":"fe80::1"}]"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#""routes":[{"dst":"0.0.0.0/0","gw":"192.0.2.1"},{"dst":"::/0","gw":"fe80::1"}]"#
        ),
        "{text}"
    );
}
