use super::*;
use crate::config::router::{RouterConfig, RouterMode};
use crate::config::vars::Vars;
use crate::setup::firewall::{Inbound, NatChains, Wanted, restore_script, router_nat_plan};
use crate::setup::firewall::{all_rules, router_name_chains};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config(source: &str, gateway: &str, list: &str) -> RouterConfig {
    let vars = Vars::from_pairs([
        ("EGRESS_SOURCE", source),
        ("EGRESS_GATEWAY", gateway),
        ("EGRESS_DESTINATION", list),
        ("EGRESS_METRICS_ADDRESS", ":9090"),
    ]);
    RouterConfig::from_vars(&vars, Some(RouterMode::Init)).unwrap()
}

fn chain(family: Family, protocol: Option<Protocol>, target_port: Option<u16>) -> NameChain {
    NameChain {
        chain: name_chain(2),
        label: "80 tcp db.example.com".into(),
        name: "db.example.com".into(),
        family,
        shape: Shape {
            protocol,
            target_port,
        },
        addresses: None,
    }
}

fn text(rules: &[Rule]) -> String {
    rules.iter().map(|r| format!("{r}\n")).collect()
}

#[test]
fn every_address_takes_an_equal_share_of_new_connections() {
    let tcp = chain(Family::V4, Some(Protocol::Tcp), None);
    let three = [ip("203.0.113.5"), ip("203.0.113.6"), ip("203.0.113.7")];
    assert_eq!(
        text(&tcp.rules(&three)),
        "-A EGRESS-ROUTER-N-2 -p tcp -m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 203.0.113.5\n\
         -A EGRESS-ROUTER-N-2 -p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 203.0.113.6\n\
         -A EGRESS-ROUTER-N-2 -p tcp -j DNAT --to-destination 203.0.113.7\n"
    );
    assert_eq!(
        text(&tcp.rules(&three[..1])),
        "-A EGRESS-ROUTER-N-2 -p tcp -j DNAT --to-destination 203.0.113.5\n"
    );
    let v6 = chain(Family::V6, Some(Protocol::Udp), Some(443));
    assert_eq!(
        text(&v6.rules(&[ip("2001:db8:2::5"), ip("2001:db8:2::6")])),
        "-A EGRESS-ROUTER-N-2 -p udp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination [2001:db8:2::5]:443\n\
         -A EGRESS-ROUTER-N-2 -p udp -j DNAT --to-destination [2001:db8:2::6]:443\n"
    );
    let fallback = chain(Family::V4, None, None);
    assert_eq!(
        text(&fallback.rules(&[ip("203.0.113.5")])),
        "-A EGRESS-ROUTER-N-2 -j DNAT --to-destination 203.0.113.5\n"
    );
}

#[test]
fn a_name_without_addresses_is_refused_not_passed_on() {
    let tcp = chain(Family::V4, Some(Protocol::Tcp), None);
    assert_eq!(
        text(&tcp.rules(&[])),
        "-A EGRESS-ROUTER-N-2 -j MARK --set-xmark 0x200000/0x200000\n-A EGRESS-ROUTER-N-2 -j ACCEPT\n"
    );
    let refusals = text(&refusal_rules(Family::V6));
    assert_eq!(
        refusals,
        "-A EGRESS-ROUTER-INPUT -p tcp -m mark --mark 0x200000/0x200000 -j REJECT --reject-with tcp-reset\n\
         -A EGRESS-ROUTER-INPUT -m mark --mark 0x200000/0x200000 -j REJECT --reject-with icmp6-port-unreachable\n\
         -A EGRESS-ROUTER-FORWARD -p tcp -m mark --mark 0x200000/0x200000 -j REJECT --reject-with tcp-reset\n\
         -A EGRESS-ROUTER-FORWARD -m mark --mark 0x200000/0x200000 -j REJECT --reject-with icmp6-port-unreachable\n"
    );
    assert!(
        refusal_rules(Family::V4)[1]
            .spec
            .ends_with("icmp-port-unreachable")
    );
}

#[test]
fn the_chain_is_read_back_from_a_dump_and_judged_whole() {
    let tcp = chain(Family::V4, Some(Protocol::Tcp), Some(5432));
    let dump = |rules: &str| {
        format!(
            "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:EGRESS-ROUTER-N-2 - [0:0]\n\
             [3:180] -A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j EGRESS-ROUTER-N-2\n{rules}COMMIT\n"
        )
    };
    let two = "[1:60] -A EGRESS-ROUTER-N-2 -p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 203.0.113.6:5432\n\
               [1:60] -A EGRESS-ROUTER-N-2 -p tcp -j DNAT --to-destination 203.0.113.9:5432\n";
    assert_eq!(
        tcp.held(&dump(two)),
        Ok(vec![ip("203.0.113.6"), ip("203.0.113.9")])
    );
    let refused = "-A EGRESS-ROUTER-N-2 -j MARK --set-xmark 0x200000/0x200000\n-A EGRESS-ROUTER-N-2 -j ACCEPT\n";
    assert_eq!(tcp.held(&dump(refused)), Ok(Vec::new()));
    assert_eq!(tcp.held("*nat\nCOMMIT\n"), Err("is missing".into()));
    let extra = format!("{two}-A EGRESS-ROUTER-N-2 -j DNAT --to-destination 192.0.2.1\n");
    assert!(
        tcp.held(&dump(&extra))
            .unwrap_err()
            .starts_with("holds other rules than those of its addresses")
    );
    let loopback = "-A EGRESS-ROUTER-N-2 -p tcp -j DNAT --to-destination 127.0.0.1:5432\n";
    assert!(
        tcp.held(&dump(loopback))
            .unwrap_err()
            .contains("sends to 127.0.0.1, which a name never does")
    );
    let unspread = "-A EGRESS-ROUTER-N-2 -p tcp -j DNAT --to-destination 203.0.113.6:5432\n\
                    -A EGRESS-ROUTER-N-2 -p tcp -j DNAT --to-destination 203.0.113.9:5432\n";
    assert!(
        tcp.held(&dump(unspread)).is_err(),
        "the second gets nothing"
    );
}

#[test]
fn an_update_replaces_one_chain_and_keeps_the_counters_of_rules_it_keeps() {
    let tcp = chain(Family::V4, Some(Protocol::Tcp), None);
    let counted = "*nat\n:PREROUTING ACCEPT [0:0]\n:EGRESS-ROUTER-N-2 - [0:0]\n:EGRESS-ROUTER-N-3 - [0:0]\n\
        [9:540] -A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j EGRESS-ROUTER-N-2\n\
        [4:240] -A EGRESS-ROUTER-N-2 -p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 203.0.113.5\n\
        [5:300] -A EGRESS-ROUTER-N-2 -p tcp -j DNAT --to-destination 203.0.113.6\n\
        [7:420] -A EGRESS-ROUTER-N-3 -j DNAT --to-destination 203.0.113.9\nCOMMIT\n";
    let new = tcp.rules(&[ip("203.0.113.5"), ip("203.0.113.7")]);
    assert_eq!(
        update_script(counted, &[("EGRESS-ROUTER-N-2", new)]),
        "*nat\n:EGRESS-ROUTER-N-2 - [0:0]\n\
         [4:240] -A EGRESS-ROUTER-N-2 -p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 203.0.113.5\n\
         -A EGRESS-ROUTER-N-2 -p tcp -j DNAT --to-destination 203.0.113.7\n\
         COMMIT\n"
    );
}

#[test]
fn name_lines_jump_to_their_chains_where_they_stand() {
    let config = config(
        "198.51.100.99,2001:db8:1::99/64",
        "198.51.100.1,fe80::1",
        "80 tcp 203.0.113.5\n8080 tcp api.example.com 443\ndb.example.com",
    );
    let shown = |source: &str| -> Vec<String> {
        router_nat_plan(&config, ip(source))
            .iter()
            .map(|(purpose, rule)| format!("{purpose} = {rule}"))
            .collect()
    };
    assert_eq!(
        shown("198.51.100.99"),
        [
            "80 tcp 203.0.113.5 = -A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5",
            "8080 tcp api.example.com 443 = -A PREROUTING -i eth0 -p tcp --dport 8080 -j EGRESS-ROUTER-N-2",
            "metrics-port = -A PREROUTING -i eth0 -p tcp --dport 9090 -j RETURN",
            "db.example.com = -A PREROUTING -i eth0 -j EGRESS-ROUTER-N-3",
            "snat = -A POSTROUTING -j SNAT --to-source 198.51.100.99",
        ]
    );
    assert_eq!(
        shown("2001:db8:1::99"),
        [
            "8080 tcp api.example.com 443 = -A PREROUTING -i eth0 -p tcp --dport 8080 -j EGRESS-ROUTER-N-2",
            "metrics-port = -A PREROUTING -i eth0 -p tcp --dport 9090 -j RETURN",
            "db.example.com = -A PREROUTING -i eth0 -j EGRESS-ROUTER-N-3",
            "snat = -A POSTROUTING -j SNAT --to-source 2001:db8:1::99",
        ]
    );
    let mut resolved = Resolved::default();
    resolved.insert(
        "api.example.com",
        vec![ip("203.0.113.9"), ip("2001:db8:2::9"), ip("203.0.113.8")],
    );
    let chains = router_name_chains(&config, Family::V4, Some(&resolved));
    assert_eq!(chains.len(), 2);
    assert_eq!(
        (chains[0].chain.as_str(), chains[0].label.as_str()),
        ("EGRESS-ROUTER-N-2", "8080 tcp api.example.com 443")
    );
    assert_eq!(
        chains[0].addresses,
        Some(vec![ip("203.0.113.8"), ip("203.0.113.9")])
    );
    assert_eq!(
        chains[1].addresses,
        Some(Vec::new()),
        "not resolved: refused"
    );
    assert_eq!(
        chains[0].describe(),
        "# EGRESS-ROUTER-N-2: DNAT to every IPv4 address of api.example.com, port 443, spread over them (resolved by init, kept current by the redirect container)"
    );
    assert!(
        router_name_chains(&config, Family::V6, None)[0]
            .addresses
            .is_none()
    );
}

#[test]
fn init_declares_fills_and_guards_the_name_chains_and_drops_stale_ones() {
    let config = config("198.51.100.99", "198.51.100.1", "80 tcp db.example.com");
    let mut resolved = Resolved::default();
    resolved.insert("db.example.com", vec![ip("203.0.113.5")]);
    let wanted = Wanted {
        family: Family::V4,
        egress: "macvlan0".into(),
        replies: Some(Inbound::On("eth0".into())),
        nat: Some((
            NatChains::Builtin,
            router_nat_plan(&config, ip("198.51.100.99"))
                .into_iter()
                .map(|(_, r)| r)
                .collect(),
        )),
        names: router_name_chains(&config, Family::V4, Some(&resolved)),
        vrrp: None,
    };
    let current = "*nat\n:PREROUTING ACCEPT [0:0]\n:EGRESS-ROUTER-N-1 - [0:0]\n:EGRESS-ROUTER-N-4 - [0:0]\nCOMMIT\n";
    let script = restore_script(current, &wanted);
    let nat = &script[script.find("*nat\n").unwrap()..];
    assert_eq!(
        nat,
        "*nat\n-F PREROUTING\n-F POSTROUTING\n:EGRESS-ROUTER-N-1 - [0:0]\n\
         -A PREROUTING -i eth0 -p tcp --dport 80 -j EGRESS-ROUTER-N-1\n\
         -A POSTROUTING -j SNAT --to-source 198.51.100.99\n\
         -A EGRESS-ROUTER-N-1 -p tcp -j DNAT --to-destination 203.0.113.5\n\
         -F EGRESS-ROUTER-N-4\n-X EGRESS-ROUTER-N-4\nCOMMIT\n"
    );
    assert!(
        script.contains("-A EGRESS-ROUTER-INPUT -p tcp -m mark --mark 0x200000/0x200000 -j REJECT --reject-with tcp-reset\n"),
        "{script}"
    );
    let checked = text(&all_rules(&wanted));
    assert!(
        checked.contains("-A EGRESS-ROUTER-FORWARD -m mark"),
        "{checked}"
    );
    assert!(
        !checked.contains("-A EGRESS-ROUTER-N-1"),
        "the content is judged from the dump"
    );
}
