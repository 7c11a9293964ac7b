use serde_json::json;

use super::*;
use crate::cni::ip::PodPattern;
use crate::config::family::Family;
use crate::error::Error;

/// A valid `ip` configuration with `patch` applied to its top level (`null`
/// removes a key).
fn conf(patch: Value) -> Result<NetConf> {
    let mut base = json!({
        "cniVersion": "0.4.0",
        "name": "egress-router",
        "type": "egress-router",
        "ip": {
            "addresses": ["192.0.2.99/24"],
            "destinations": ["203.0.113.10"],
            "gateway": "192.0.2.254"
        }
    });
    for (key, value) in patch.as_object().unwrap() {
        match value {
            Value::Null => base.as_object_mut().unwrap().remove(key),
            other => base
                .as_object_mut()
                .unwrap()
                .insert(key.clone(), other.clone()),
        };
    }
    NetConf::parse(base.to_string().as_bytes())
}

fn error(patch: Value) -> (u32, String) {
    match conf(patch.clone()).unwrap_err() {
        Error::Cni { code, message } => (code, message),
        other => panic!("{patch}: not a CNI error: {other:?}"),
    }
}

#[test]
fn the_documented_example_parses_with_defaults() {
    let conf = conf(json!({})).unwrap();
    assert_eq!(conf.cni_version, CniVersion::V0_4_0);
    assert_eq!(conf.name, "egress-router");
    assert_eq!(conf.plugin_type, "egress-router");
    assert_eq!(
        conf.interface,
        InterfaceSpec {
            kind: InterfaceKind::Macvlan(MacvlanMode::Bridge),
            master: None,
            mtu: None,
            proxy_arp: false,
            aws: None,
        }
    );
    assert_eq!((conf.log_file.as_ref(), conf.log_level), (None, None));
    assert_eq!(conf.prev_result, None);
    let ip = conf.ip_config(None).unwrap();
    assert_eq!(ip.sources[0].to_string(), "192.0.2.99/24");
    assert_eq!(ip.gateway(Family::V4), Some("192.0.2.254".parse().unwrap()));
    assert_eq!(ip.destinations.len(), 1);
}

#[test]
fn unknown_keys_are_ignored_and_logging_and_prev_result_are_kept() {
    let prev = json!({"cniVersion": "0.4.0", "interfaces": [{"name": "net1"}]});
    let conf = conf(json!({
        "log_file": "/var/log/egress-router.log",
        "log_level": "DEBUG",
        "prevResult": prev,
        "capabilities": {"ips": true},
        "runtimeConfig": {"x": 1},
        "args": {"cni": {}},
        "dns": {},
        "somethingNew": [1, 2]
    }))
    .unwrap();
    assert_eq!(
        conf.log_file,
        Some("/var/log/egress-router.log".to_string())
    );
    assert_eq!(conf.log_level, Some(LogLevel::Debug));
    assert_eq!(conf.prev_result, Some(prev));
    for (text, level) in [
        ("panic", LogLevel::Panic),
        ("error", LogLevel::Error),
        ("Verbose", LogLevel::Verbose),
    ] {
        assert_eq!(conf_level(text), level);
    }
}

fn conf_level(text: &str) -> LogLevel {
    conf(json!({"log_level": text})).unwrap().log_level.unwrap()
}

#[test]
fn interface_types_modes_master_and_mtu() {
    let spec = |patch: Value| conf(patch).unwrap().interface;
    let cases = [
        (
            json!({"interfaceType": "macvlan"}),
            InterfaceKind::Macvlan(MacvlanMode::Bridge),
        ),
        (
            json!({"interfaceType": ""}),
            InterfaceKind::Macvlan(MacvlanMode::Bridge),
        ),
        (
            json!({"interfaceArgs": {"mode": "private"}}),
            InterfaceKind::Macvlan(MacvlanMode::Private),
        ),
        (
            json!({"interfaceArgs": {"mode": "VEPA"}}),
            InterfaceKind::Macvlan(MacvlanMode::Vepa),
        ),
        (
            json!({"interfaceArgs": {"mode": "Passthru"}}),
            InterfaceKind::Macvlan(MacvlanMode::Passthru),
        ),
        (
            json!({"interfaceArgs": {"mode": "Bridge"}}),
            InterfaceKind::Macvlan(MacvlanMode::Bridge),
        ),
        (
            json!({"interfaceType": "ipvlan"}),
            InterfaceKind::Ipvlan(IpvlanMode::L2),
        ),
        (
            json!({"interfaceType": "ipvlan", "interfaceArgs": {"mode": "l3"}}),
            InterfaceKind::Ipvlan(IpvlanMode::L3),
        ),
        (
            json!({"interfaceType": "ipvlan", "interfaceArgs": {"mode": "L3S"}}),
            InterfaceKind::Ipvlan(IpvlanMode::L3s),
        ),
    ];
    for (patch, kind) in cases {
        assert_eq!(spec(patch.clone()).kind, kind, "{patch}");
    }
    let args = spec(json!({"interfaceArgs": {"master": "eth1", "mtu": 9000, "other": true}}));
    assert_eq!(
        (args.master.as_deref(), args.mtu),
        (Some("eth1"), Some(9000))
    );
    assert_eq!(
        spec(json!({"interfaceArgs": {"mtu": "1500"}})).mtu,
        Some(1500)
    );
    assert_eq!(spec(json!({"interfaceArgs": {"mtu": 68}})).mtu, Some(68));
    assert_eq!(
        spec(json!({"interfaceArgs": {"mtu": "", "master": ""}})),
        spec(json!({}))
    );
}

#[test]
fn pod_ip_selects_exact_then_longest_wildcard() {
    let ip = |last: u8| json!({"addresses": [format!("198.51.100.{last}/24")], "gateway": "198.51.100.1"});
    let conf = conf(json!({
        "ip": null,
        "interfaceType": "ipvlan",
        "interfaceArgs": {"master": "eth1"},
        "podIP": {"db-router": ip(10), "db-*": ip(11), "db-router-*": ip(12), "*": ip(13)}
    }))
    .unwrap();
    let Addressing::PodIp(entries) = &conf.addressing else {
        panic!("{:?}", conf.addressing)
    };
    assert_eq!(entries[0].pattern, PodPattern::Prefix(String::new()));
    let source = |pod: &str| conf.ip_config(Some(pod)).unwrap().sources[0].to_string();
    assert_eq!(source("db-router"), "198.51.100.10/24");
    assert_eq!(source("db-other"), "198.51.100.11/24");
    assert_eq!(source("db-router-2"), "198.51.100.12/24");
    assert_eq!(source("web"), "198.51.100.13/24");
}

#[test]
fn every_bad_field_is_named_with_its_value_quoted() {
    let cases = [
        (json!({"cniVersion": null}), 7, "cniVersion: is required"),
        (
            json!({"cniVersion": "0.2.0"}),
            1,
            "cniVersion: \"0.2.0\" is not supported",
        ),
        (json!({"cniVersion": 1}), 7, "cniVersion: 1 is not a string"),
        (json!({"name": null}), 7, "name: is required"),
        (json!({"name": "-x"}), 7, "name: \"-x\" must start"),
        (json!({"name": "a/b"}), 7, "name: \"a/b\" must start"),
        (json!({"type": null}), 7, "type: is required"),
        (
            json!({"type": ["egress-router"]}),
            7,
            "type: [\"egress-router\"] is not a string",
        ),
        (
            json!({"ipConfig": {"name": "cm"}}),
            2,
            "ipConfig: is not supported",
        ),
        (
            json!({"ip": null, "ipConfig": {"name": "cm"}}),
            2,
            "ipConfig: is not supported",
        ),
        (json!({"ip": null}), 7, "ip: is required (or `podIP`)"),
        (
            json!({"podIP": {"x": {}}}),
            7,
            "ip: give exactly one of `ip` and `podIP`",
        ),
        (
            json!({"ip": "192.0.2.99"}),
            7,
            "ip: \"192.0.2.99\" is not an object",
        ),
        (
            json!({"interfaceType": "vxlan"}),
            7,
            "interfaceType: \"vxlan\" is not supported: macvlan, ipvlan, routed or aws-elastic-ip",
        ),
        (
            json!({"interfaceType": "Macvlan"}),
            7,
            "interfaceType: \"Macvlan\" is not supported",
        ),
        (
            json!({"interfaceArgs": "eth1"}),
            7,
            "interfaceArgs: \"eth1\" is not an object",
        ),
        (
            json!({"interfaceArgs": {"mode": "l2"}}),
            7,
            "interfaceArgs.mode: \"l2\" is not a macvlan mode",
        ),
        (
            json!({"interfaceType": "ipvlan", "interfaceArgs": {"mode": "bridge"}}),
            7,
            "interfaceArgs.mode: \"bridge\" is not an ipvlan mode",
        ),
        (
            json!({"interfaceArgs": {"master": "eth 1"}}),
            7,
            "interfaceArgs.master: \"eth 1\" is not an interface name",
        ),
        (
            json!({"interfaceArgs": {"master": "a-very-long-name0"}}),
            7,
            "interfaceArgs.master: \"a-very-long-name0\"",
        ),
        (
            json!({"interfaceArgs": {"mtu": 67}}),
            7,
            "interfaceArgs.mtu: 67 is not a whole number from 68 to 65535",
        ),
        (
            json!({"interfaceArgs": {"mtu": 65536}}),
            7,
            "interfaceArgs.mtu: 65536",
        ),
        (
            json!({"interfaceArgs": {"mtu": 1500.5}}),
            7,
            "interfaceArgs.mtu: 1500.5",
        ),
        (
            json!({"interfaceArgs": {"mtu": "+1500"}}),
            7,
            "interfaceArgs.mtu: \"+1500\"",
        ),
        (
            json!({"interfaceArgs": {"mtu": "01500"}}),
            7,
            "interfaceArgs.mtu: \"01500\"",
        ),
        (
            json!({"interfaceArgs": {"mtu": -1}}),
            7,
            "interfaceArgs.mtu: -1",
        ),
        (json!({"log_file": 3}), 7, "log_file: 3 is not a string"),
        (
            json!({"log_level": "info"}),
            7,
            "log_level: \"info\" is not one of panic, error, verbose, debug",
        ),
        (json!({"log_level": 3}), 7, "log_level: 3 is not a string"),
    ];
    for (patch, code, want) in cases {
        let (got_code, message) = error(patch.clone());
        assert!(message.starts_with(want), "{patch} -> {message}");
        assert_eq!(got_code, code, "{patch} -> {message}");
        assert!(!message.contains('\n'), "{message}");
    }
}

#[test]
fn malformed_json_is_a_decode_failure() {
    for text in [
        "",
        "{",
        "[1]",
        "{\"cniVersion\": \"0.4.0\", \"cniVersion\": \"1.0.0\"}",
    ] {
        let err = NetConf::parse(text.as_bytes()).unwrap_err();
        assert!(
            matches!(err, Error::Cni { code: 6, .. }),
            "{text:?} -> {err:?}"
        );
    }
}
