use serde_json::json;

use super::*;
use crate::config::family::Family;

fn ip(value: Value) -> Result<IpConfig> {
    IpConfig::parse(value.as_object().unwrap(), "ip")
}

fn message(err: Error) -> (u32, String) {
    match err {
        Error::Cni { code, message } => (code, message),
        other => panic!("not a CNI error: {other:?}"),
    }
}

fn rules_text(rules: &[Rule]) -> String {
    rules.iter().map(|r| format!("{r}\n")).collect()
}

#[test]
fn addresses_gateway_and_operator_destinations() {
    let config = ip(json!({
        "addresses": ["192.0.2.99", "192.0.2.100/24", "192.0.2.101/31"],
        "gateway": "192.0.2.1",
        "destinations": ["80 UDP 203.0.113.0/30", "8080 TCP 203.0.113.26/30 80", "203.0.113.7/32"]
    }))
    .unwrap();
    let addresses: Vec<String> = config.addresses().map(|a| a.to_string()).collect();
    assert_eq!(
        addresses,
        ["192.0.2.99/32", "192.0.2.100/24", "192.0.2.101/31"]
    );
    assert_eq!(config.sources[0].to_string(), "192.0.2.99/32");
    assert_eq!(
        config.gateway(Family::V4),
        Some("192.0.2.1".parse().unwrap())
    );
    assert_eq!(
        rules_text(&config.nat_rules("net1", &config.sources[0])),
        "-A EGRESS-ROUTER-DNAT ! -i net1 -p udp --dport 80 -j DNAT --to-destination 203.0.113.0\n\
         -A EGRESS-ROUTER-DNAT ! -i net1 -p tcp --dport 8080 -j DNAT --to-destination 203.0.113.26:80\n\
         -A EGRESS-ROUTER-DNAT ! -i net1 -j DNAT --to-destination 203.0.113.7\n\
         -A EGRESS-ROUTER-SNAT -o net1 -j SNAT --to-source 192.0.2.99\n"
    );
}

#[test]
fn without_destinations_or_gateway_only_the_snat_remains() {
    for destinations in [json!(null), json!([])] {
        let config =
            ip(json!({"addresses": ["198.51.100.5/30"], "destinations": destinations})).unwrap();
        assert_eq!(config.gateway(Family::V4), None);
        assert_eq!(
            rules_text(&config.nat_rules("egress0", &config.sources[0])),
            "-A EGRESS-ROUTER-SNAT -o egress0 -j SNAT --to-source 198.51.100.5\n"
        );
    }
}

#[test]
fn every_bad_ip_field_is_named_with_its_value() {
    let cases = [
        (json!({}), "ip.addresses: needs at least one address"),
        (
            json!({"addresses": []}),
            "ip.addresses: needs at least one address",
        ),
        (
            json!({"addresses": "192.0.2.99"}),
            "ip.addresses: \"192.0.2.99\" is not an array of strings",
        ),
        (
            json!({"addresses": [5]}),
            "ip.addresses[0]: 5 is not a string",
        ),
        (
            json!({"addresses": ["192.0.2.99/33"]}),
            "ip.addresses[0]: \"192.0.2.99/33\" has a prefix length that is not from 1 to 32",
        ),
        (
            json!({"addresses": ["192.0.2.99/0"]}),
            "ip.addresses[0]: \"192.0.2.99/0\" has a prefix length",
        ),
        (
            json!({"addresses": ["192.0.2.99/024"]}),
            "ip.addresses[0]: \"192.0.2.99/024\" has a prefix length",
        ),
        (
            json!({"addresses": ["fe80::1/64"]}),
            "ip.addresses[0]: \"fe80::1/64\" is link-local",
        ),
        (
            json!({"addresses": ["192.0.2.9"], "gateway": "2001:db8::1"}),
            "ip.gateway: \"2001:db8::1\" is an IPv6 gateway, but addresses has no IPv6 address",
        ),
        (
            json!({"addresses": ["2001:db8::9/64"], "gateway": "fe80::1%net1"}),
            "ip.gateway: \"fe80::1%net1\": leave out the %zone",
        ),
        (
            json!({"addresses": ["2001:db8::9/64", "192.0.2.9"], "gateway": "2001:db8::1,2001:db8::2"}),
            "ip.gateway: \"2001:db8::1,2001:db8::2\" has two IPv6 gateways",
        ),
        (
            json!({"addresses": ["192.0.2.9"], "destinations": ["2001:db8:2::5"]}),
            "ip.destinations: entry \"2001:db8:2::5\" is IPv6, but addresses has no IPv6 address",
        ),
        (
            json!({"addresses": ["192.0.2.99", "224.0.0.1"]}),
            "ip.addresses[1]: \"224.0.0.1\" is not a unicast IPv4 or IPv6",
        ),
        (
            json!({"addresses": ["127.0.0.1"]}),
            "ip.addresses[0]: \"127.0.0.1\" is not a unicast IPv4",
        ),
        (
            json!({"addresses": ["192.0.2.0/24"]}),
            "ip.addresses[0]: \"192.0.2.0/24\" is the network address of its subnet",
        ),
        (
            json!({"addresses": ["192.0.2.255/24"]}),
            "ip.addresses[0]: \"192.0.2.255/24\" is the broadcast address of its subnet",
        ),
        (
            json!({"addresses": ["192.0.2.3/30"]}),
            "ip.addresses[0]: \"192.0.2.3/30\" is the broadcast address",
        ),
        (
            json!({"addresses": ["192.0.2.9", "192.0.2.9/24"]}),
            "ip.addresses[1]: \"192.0.2.9/24\" repeats an earlier address",
        ),
        (
            json!({"addresses": ["192.0.2.9"], "gateway": "192.0.2.9"}),
            "ip.gateway: \"192.0.2.9\" is one of the addresses",
        ),
        (
            json!({"addresses": ["192.0.2.9"], "gateway": "192.0.2.1/24"}),
            "ip.gateway: \"192.0.2.1/24\" is not a unicast IPv4 or IPv6 address",
        ),
        (
            json!({"addresses": ["192.0.2.9/24"], "gateway": "192.0.2.255"}),
            "ip.gateway: \"192.0.2.255\" is the broadcast address of the subnet of 192.0.2.9/24",
        ),
        (
            json!({"addresses": ["192.0.2.9/30"], "gateway": "192.0.2.8"}),
            "ip.gateway: \"192.0.2.8\" is the network address of the subnet of 192.0.2.9/30",
        ),
        (
            json!({"addresses": ["192.0.2.9"], "gateway": "0.0.0.0"}),
            "ip.gateway: \"0.0.0.0\" is not a unicast IPv4 or IPv6 address",
        ),
        (
            json!({"addresses": ["192.0.2.9"], "destinations": "203.0.113.7"}),
            "ip.destinations: \"203.0.113.7\" is not an array of strings",
        ),
        (
            json!({"addresses": ["192.0.2.9"], "destinations": ["80 icmp 203.0.113.7"]}),
            "ip.destinations: entry \"80 icmp 203.0.113.7\": protocol \"icmp\"",
        ),
        (
            json!({"addresses": ["192.0.2.9"], "destinations": ["203.0.113.7", "203.0.113.8"]}),
            "ip.destinations: entry \"203.0.113.8\": comes after the fallback",
        ),
    ];
    for (value, want) in cases {
        let (code, text) = message(ip(value.clone()).unwrap_err());
        assert_eq!(code, code::INVALID_NETWORK_CONFIG, "{value}");
        assert!(text.starts_with(want), "{value} -> {text}");
    }
    assert!(ip(json!({"addresses": ["192.0.2.0/31", "192.0.2.1/31"]})).is_ok());
    assert!(ip(json!({"addresses": ["192.0.2.9"], "gateway": "192.0.2.255"})).is_ok());
}

fn addressing(conf: Value) -> Result<Addressing> {
    let map = conf.as_object().unwrap().clone();
    Addressing::parse(&Fields::new(&map, ""))
}

#[test]
fn pod_selection_prefers_exact_names_then_longer_prefixes() {
    let entry = |last: u8| json!({"addresses": [format!("203.0.113.{last}")]});
    let pods = addressing(json!({"podIP": {
        "router": entry(1), "router-*": entry(2), "rou*": entry(3), "other": entry(4)
    }}))
    .unwrap();
    let chosen = |pod: &str| {
        pods.select(Some(pod))
            .map(|ip| ip.sources[0].address.to_string())
    };
    assert_eq!(chosen("router").unwrap(), "203.0.113.1");
    assert_eq!(chosen("router-7").unwrap(), "203.0.113.2");
    assert_eq!(chosen("route").unwrap(), "203.0.113.3");
    assert_eq!(chosen("other").unwrap(), "203.0.113.4");
    let (code, text) = message(chosen("web-1").unwrap_err());
    assert_eq!(
        (code, text.as_str()),
        (7, "podIP: no entry matches pod \"web-1\"")
    );
    let (code, text) = message(pods.select(None).unwrap_err());
    assert_eq!(code, code::INVALID_ENVIRONMENT);
    assert!(
        text.starts_with("CNI_ARGS: K8S_POD_NAME is not set"),
        "{text}"
    );
    let single = addressing(json!({"ip": entry(9)})).unwrap();
    assert_eq!(
        single.select(None).unwrap().sources[0].address.to_string(),
        "203.0.113.9"
    );
}

#[test]
fn pod_patterns_and_their_errors() {
    assert_eq!(
        PodPattern::parse("db").unwrap(),
        PodPattern::Exact("db".into())
    );
    assert_eq!(
        PodPattern::parse("db-*").unwrap(),
        PodPattern::Prefix("db-".into())
    );
    assert_eq!(
        PodPattern::parse("*").unwrap(),
        PodPattern::Prefix(String::new())
    );
    let cases = [
        (json!({"podIP": {}}), "podIP: has no entries"),
        (json!({"podIP": []}), "podIP: [] is not an object"),
        (
            json!({"podIP": {"db": "203.0.113.1"}}),
            "podIP[\"db\"]: \"203.0.113.1\" is not an object",
        ),
        (
            json!({"podIP": {"": {"addresses": ["203.0.113.1"]}}}),
            "podIP[\"\"]: a pod name must not be empty",
        ),
        (
            json!({"podIP": {"d*b": {"addresses": ["203.0.113.1"]}}}),
            "podIP[\"d*b\"]: \"d*b\": `*` may only end",
        ),
        (
            json!({"podIP": {"**": {"addresses": ["203.0.113.1"]}}}),
            "podIP[\"**\"]: \"**\": `*` may only end",
        ),
        (
            json!({"podIP": {"db": {"addresses": ["203.0.113.1"], "gateway": "x"}}}),
            "podIP[\"db\"].gateway: \"x\" is not a unicast",
        ),
        (
            json!({"podIP": {"db-*": {"addresses": ["203.0.113.1"], "destinations": ["80 tcp"]}}}),
            "podIP[\"db-*\"].destinations: entry \"80 tcp\": expected",
        ),
    ];
    for (conf, want) in cases {
        let (code, text) = message(addressing(conf.clone()).unwrap_err());
        assert_eq!(code, code::INVALID_NETWORK_CONFIG, "{conf}");
        assert!(text.starts_with(want), "{conf} -> {text}");
    }
}

#[test]
fn one_address_a_family_each_with_its_gateway_and_nat() {
    let config = ip(json!({
        "addresses": ["2001:db8:1::99/64", "192.0.2.99/24"],
        "gateway": "192.0.2.1, fe80::1",
        "destinations": ["80 TCP 2001:db8:2::5", "80 tcp 203.0.113.5", "2001:db8:2::7"]
    }))
    .unwrap();
    let sources: Vec<String> = config.sources.iter().map(ToString::to_string).collect();
    assert_eq!(sources, ["2001:db8:1::99/64", "192.0.2.99/24"]);
    assert!(config.additional.is_empty());
    assert_eq!(config.gateway(Family::V6), Some("fe80::1".parse().unwrap()));
    assert_eq!(
        rules_text(&config.nat_rules("net1", &config.sources[0])),
        "-A EGRESS-ROUTER-DNAT ! -i net1 -p tcp --dport 80 -j DNAT --to-destination 2001:db8:2::5\n\
         -A EGRESS-ROUTER-DNAT ! -i net1 -j DNAT --to-destination 2001:db8:2::7\n\
         -A EGRESS-ROUTER-SNAT -o net1 -j SNAT --to-source 2001:db8:1::99\n"
    );
    assert_eq!(
        rules_text(&config.nat_rules("net1", &config.sources[1])),
        "-A EGRESS-ROUTER-DNAT ! -i net1 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5\n\
         -A EGRESS-ROUTER-SNAT -o net1 -j SNAT --to-source 192.0.2.99\n"
    );
}
