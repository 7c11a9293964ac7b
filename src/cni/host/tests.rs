use super::*;

fn addr(interface: &str, net: &str) -> HostAddress {
    HostAddress {
        interface: interface.into(),
        net: net.parse().unwrap(),
    }
}

fn default(interface: &str, gateway: &str) -> HostDefault {
    HostDefault {
        interface: interface.into(),
        gateway: Some(gateway.parse().unwrap()),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn the_master_is_explicit_or_holds_the_subnet_or_carries_the_default() {
    let addresses = [
        addr("uplink0", "198.51.100.2/24"),
        addr("uplink1", "203.0.113.2/24"),
        addr("pod0", "192.0.2.65/26"),
    ];
    let defaults = [default("uplink1", "203.0.113.1")];
    let choose = |explicit, source: &str, gateway: Option<&str>| {
        let gateways: Vec<IpAddr> = gateway.map(ip).into_iter().collect();
        choose_master(explicit, &[ip(source)], &gateways, &addresses, &defaults)
    };
    assert_eq!(choose(None, "198.51.100.99", None).unwrap(), "uplink0");
    assert_eq!(
        choose(None, "192.0.2.200", Some("198.51.100.1")).unwrap(),
        "uplink0"
    );
    assert_eq!(choose(None, "192.0.2.200", None).unwrap(), "uplink1");
    assert_eq!(choose(Some("pod0"), "198.51.100.99", None).unwrap(), "pod0");
    let err = choose(Some("nope0"), "198.51.100.99", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"nope0\""), "{err}");
    let none = choose_master(None, &[ip("192.0.2.200")], &[], &addresses, &[])
        .unwrap_err()
        .to_string();
    assert!(
        none.contains("uplink0 198.51.100.2/24") && none.contains("found: none"),
        "{none}"
    );
    let twice = [addr("a0", "198.51.100.2/24"), addr("b0", "198.51.100.3/24")];
    let err = choose_master(None, &[ip("198.51.100.99")], &[], &twice, &defaults)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a0, b0"), "{err}");
}

#[test]
fn the_gateway_is_explicit_or_the_masters_default_in_the_subnet() {
    let net: IpNet = "198.51.100.99/24".parse().unwrap();
    let defaults = [
        default("uplink0", "198.51.100.1"),
        default("uplink1", "203.0.113.1"),
    ];
    assert_eq!(
        choose_gateway(None, "uplink0", net, &defaults).unwrap(),
        ip("198.51.100.1")
    );
    assert_eq!(
        choose_gateway(Some(ip("198.51.100.254")), "uplink0", net, &defaults).unwrap(),
        ip("198.51.100.254")
    );
    let err = choose_gateway(None, "uplink1", net, &defaults)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("gateway: ") && err.contains("via 203.0.113.1 dev uplink1"),
        "{err}"
    );
}

#[test]
fn an_ipv6_gateway_is_found_by_family_and_may_be_link_local() {
    let net: IpNet = "2001:db8:1::99/64".parse().unwrap();
    let defaults = [
        default("uplink0", "198.51.100.1"),
        default("uplink0", "fe80::1"),
    ];
    assert_eq!(
        choose_gateway(None, "uplink0", net, &defaults).unwrap(),
        ip("fe80::1")
    );
    let v4: IpNet = "198.51.100.99/24".parse().unwrap();
    assert_eq!(
        choose_gateway(None, "uplink0", v4, &defaults).unwrap(),
        ip("198.51.100.1")
    );
    let elsewhere = [default("uplink0", "2001:db8:7::1")];
    assert!(choose_gateway(None, "uplink0", net, &elsewhere).is_err());
    // one interface carrying both families' defaults is the one default interface
    let addresses = [addr("uplink0", "2001:db8:1::2/64")];
    assert_eq!(
        choose_master(
            None,
            &[ip("2001:db8:5::99")],
            &[ip("fe80::1")],
            &addresses,
            &defaults
        )
        .unwrap(),
        "uplink0"
    );
    // the two families' sources on two interfaces: one attachment cannot serve both
    let split = [
        addr("uplink0", "198.51.100.2/24"),
        addr("uplink1", "2001:db8:1::2/64"),
    ];
    let err = choose_master(
        None,
        &[ip("198.51.100.99"), ip("2001:db8:1::99")],
        &[],
        &split,
        &defaults,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("198.51.100.99 on uplink0, 2001:db8:1::99 on uplink1"),
        "{err}"
    );
}

#[test]
fn a_type_the_kernel_lacks_is_named_and_other_refusals_pass_through() {
    let refused = |errno| {
        Error::io(
            "creating interface egr0",
            std::io::Error::from_raw_os_error(errno),
        )
    };
    let err = creation_failure("ipvlan", "uplink0", refused(95));
    assert!(matches!(err, Error::Cni { code: 100, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("interfaceType ipvlan: ipvlan interfaces are not supported by this node's kernel (creating one on uplink0: creating interface egr0: "),
        "{msg}"
    );
    assert!(msg.ends_with("load the ipvlan module"), "{msg}");
    let other = creation_failure("macvlan", "uplink0", refused(22));
    assert!(matches!(other, Error::Io { .. }), "{other:?}");
    let plain = creation_failure("macvlan", "uplink0", Error::State("x".into()));
    assert_eq!(plain.to_string(), "x");
}

#[test]
fn the_alias_records_the_container_and_whether_replies_were_kept() {
    for (replies4, replies6) in [(false, false), (true, false), (false, true), (true, true)] {
        let owner = Owner {
            container: "0123456789abcdef".into(),
            replies4,
            replies6,
        };
        assert_eq!(Owner::parse(&owner.alias()), Some(owner.clone()));
        assert_eq!(
            Owner::of(Some(&owner.alias()), "0123456789abcdef"),
            Some(owner.clone())
        );
        assert_eq!(Owner::of(Some(&owner.alias()), "0123456789abcdee"), None);
    }
    // what earlier versions wrote: no replies mark
    assert_eq!(
        Owner::parse("egress-router abc"),
        Some(Owner {
            container: "abc".into(),
            replies4: false,
            replies6: false,
        })
    );
    assert_eq!(
        Owner::parse("egress-router abc replies").map(|o| o.replies4),
        Some(true)
    );
    for foreign in [
        "",
        "egress-router ",
        "egress-router a b",
        "uplink of rack 4",
        "egress-router  replies",
    ] {
        assert_eq!(Owner::parse(foreign), None, "{foreign:?}");
    }
    assert_eq!(Owner::of(None, "abc"), None);
}

#[test]
fn temporary_names_are_short_and_differ_per_container() {
    let a = temporary_name("0123456789abcdef0123456789abcdef");
    let b = temporary_name("0123456789abcdef0123456789abcdee");
    assert!(a.len() <= 15 && b.len() <= 15);
    assert_ne!(a, b);
    assert_eq!(a, temporary_name("0123456789abcdef0123456789abcdef"));
}
