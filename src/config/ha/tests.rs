use super::*;

fn read(pairs: &[(&str, &str)]) -> Result<Option<HaConfig>> {
    HaConfig::from_vars(&Vars::from_pairs(pairs.iter().copied()))
}

fn error(pairs: &[(&str, &str)]) -> String {
    read(pairs).unwrap_err().to_string()
}

#[test]
fn unset_is_off_and_the_defaults_are_the_rfcs() {
    assert_eq!(read(&[]).unwrap(), None);
    let config = read(&[(VRID, "51")]).unwrap().unwrap();
    assert_eq!(
        config,
        HaConfig {
            vrid: 51,
            priority: 100,
            advert_interval: Duration::from_millis(100),
            preempt: false,
            peers: Vec::new(),
        }
    );
    assert_eq!(config.interval_centis(), 10);
}

#[test]
fn every_variable_is_read() {
    let config = read(&[
        (VRID, "255"),
        (PRIORITY, "254"),
        (ADVERT_INTERVAL, "1s"),
        (PREEMPT, "TRUE"),
        (PEERS, "198.51.100.11, 198.51.100.12 fe80::2,2001:db8:1::12"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        (config.vrid, config.priority, config.preempt),
        (255, 254, true)
    );
    assert_eq!(config.interval_centis(), 100);
    assert_eq!(config.peers.len(), 4);
    let longest = read(&[(VRID, "1"), (ADVERT_INTERVAL, "40s")])
        .unwrap()
        .unwrap();
    assert_eq!(longest.interval_centis(), 4000);
    let shortest = read(&[(VRID, "1"), (ADVERT_INTERVAL, "10ms")])
        .unwrap()
        .unwrap();
    assert_eq!(shortest.interval_centis(), 1);
}

#[test]
fn a_proxy_with_ha_dials_from_egress_source_alone() {
    let vars = |pairs: &[(&str, &str)]| Vars::from_pairs(pairs.iter().copied());
    assert_eq!(
        proxy_sources(&vars(&[("EGRESS_SOURCE", "198.51.100.99")])).unwrap(),
        None
    );
    let both = vars(&[
        (VRID, "7"),
        ("EGRESS_SOURCE", "198.51.100.99/24, 2001:db8:1::99/64"),
    ]);
    assert_eq!(
        proxy_sources(&both).unwrap().unwrap(),
        [
            "198.51.100.99".parse::<IpAddr>().unwrap(),
            "2001:db8:1::99".parse().unwrap()
        ]
    );
    let missing = proxy_sources(&vars(&[(VRID, "7")]))
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with("EGRESS_SOURCE: is required with EGRESS_HA_VRID"),
        "{missing}"
    );
    let twice = vars(&[
        (VRID, "7"),
        ("EGRESS_SOURCE", "198.51.100.99,198.51.100.98"),
    ]);
    assert!(
        proxy_sources(&twice)
            .unwrap_err()
            .to_string()
            .contains("one address per family")
    );
    let bad = vars(&[(VRID, "0"), ("EGRESS_SOURCE", "198.51.100.99")]);
    assert!(
        proxy_sources(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("EGRESS_HA_VRID")
    );
}

#[test]
fn bad_values_name_their_variable_and_value() {
    for (pairs, expected) in [
        (
            vec![(VRID, "0")],
            "EGRESS_HA_VRID: \"0\" is not a whole number from 1 to 255",
        ),
        (vec![(VRID, "256")], "EGRESS_HA_VRID: \"256\""),
        (
            vec![(VRID, "1"), (PRIORITY, "255")],
            "EGRESS_HA_PRIORITY: \"255\" is not a whole number from 1 to 254",
        ),
        (
            vec![(VRID, "1"), (PRIORITY, "0")],
            "EGRESS_HA_PRIORITY: \"0\"",
        ),
        (
            vec![(VRID, "1"), (ADVERT_INTERVAL, "5ms")],
            "EGRESS_HA_ADVERT_INTERVAL: \"5ms\" is out of range: from 10ms to 40s",
        ),
        (
            vec![(VRID, "1"), (ADVERT_INTERVAL, "41s")],
            "EGRESS_HA_ADVERT_INTERVAL: \"41s\" is out of range",
        ),
        (
            vec![(VRID, "1"), (ADVERT_INTERVAL, "105ms")],
            "EGRESS_HA_ADVERT_INTERVAL: \"105ms\" is not a multiple of 10ms",
        ),
        (
            vec![(VRID, "1"), (ADVERT_INTERVAL, "fast")],
            "EGRESS_HA_ADVERT_INTERVAL: \"fast\" is not a duration",
        ),
        (
            vec![(VRID, "1"), (PREEMPT, "yes")],
            "EGRESS_HA_PREEMPT: \"yes\" is not one of true, false",
        ),
        (
            vec![(VRID, "1"), (PEERS, "198.51.100.300")],
            "EGRESS_HA_PEERS: \"198.51.100.300\" is not an IPv4 or IPv6 address",
        ),
        (
            vec![(VRID, "1"), (PEERS, "224.0.0.18")],
            "EGRESS_HA_PEERS: \"224.0.0.18\" is not a unicast address of a peer",
        ),
        (
            vec![(VRID, "1"), (PEERS, "ff02::12")],
            "EGRESS_HA_PEERS: \"ff02::12\" is not a unicast",
        ),
        (
            vec![(VRID, "1"), (PEERS, "198.51.100.11,198.51.100.11")],
            "EGRESS_HA_PEERS: \"198.51.100.11\" is listed twice",
        ),
        (
            vec![(VRID, "1"), (PEERS, " , ")],
            "EGRESS_HA_PEERS: lists no address",
        ),
        (
            vec![(PRIORITY, "120")],
            "EGRESS_HA_PRIORITY: is set but EGRESS_HA_VRID is not",
        ),
        (
            vec![(PEERS, "198.51.100.11")],
            "EGRESS_HA_PEERS: is set but EGRESS_HA_VRID is not",
        ),
    ] {
        let found = error(&pairs);
        assert!(found.starts_with(expected), "{pairs:?}: {found}");
    }
    assert_eq!(crate::error::Error::config(VRID, "").exit_code(), 2);
}
