use super::*;

const S: &str = "192.0.2.50";
const C: &str = "c1";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A node's nat dump: kube-proxy's chain and a masquerade, and `ours` in our chain.
fn dump(jump_first: bool, ours: &[&str]) -> String {
    let mut text = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-POSTROUTING - [0:0]\n",
    );
    if !ours.is_empty() {
        text.push_str(&format!(":{NODE_CHAIN} - [0:0]\n"));
    }
    let jump = format!("-A POSTROUTING -j {NODE_CHAIN}\n");
    if !ours.is_empty() && jump_first {
        text.push_str(&jump);
    }
    text.push_str("-A POSTROUTING -j KUBE-POSTROUTING\n-A POSTROUTING -o eth0 -j MASQUERADE\n");
    if !ours.is_empty() && !jump_first {
        text.push_str(&jump);
    }
    for rule in ours {
        text.push_str(&format!("-A {NODE_CHAIN} {rule}\n"));
    }
    text.push_str("COMMIT\n");
    text
}

fn ours(source: &str, out: &str, container: &str) -> String {
    format!("-s {source}/32 -o {out} -m comment --comment \"egress-router {container}\" -j ACCEPT")
}

#[test]
fn a_dump_is_read_for_our_chain_only() {
    let state = NatState::read(&dump(
        true,
        &[&ours(S, "eth0", C), &ours("192.0.2.51", "eth0", "c2")],
    ));
    assert!(state.chain && state.jump_first);
    assert_eq!(state.jumps, 1);
    assert_eq!(state.rules.len(), 2);
    assert!(state.exempts(ip(S), "eth0"));
    assert!(!state.exempts(ip(S), "eth1"));
    assert!(!state.exempts(ip("192.0.2.52"), "eth0"));
    let none = NatState::read("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
    assert_eq!(none, NatState::default());
}

#[test]
fn the_first_exemption_creates_the_chain_and_puts_the_jump_first() {
    let state = NatState::read(&dump(false, &[]));
    let (script, undo) = add_script(&state, ip(S), "eth0", C).unwrap();
    assert_eq!(
        script,
        format!(
            "*nat\n:{NODE_CHAIN} - [0:0]\n-I POSTROUTING 1 -j {NODE_CHAIN}\n-A {NODE_CHAIN} {}\nCOMMIT\n",
            exemption(ip(S), "eth0", C)
        )
    );
    assert_eq!(
        undo,
        format!(
            "*nat\n-D {NODE_CHAIN} {}\n-D POSTROUTING -j {NODE_CHAIN}\n-X {NODE_CHAIN}\nCOMMIT\n",
            exemption(ip(S), "eth0", C)
        )
    );
}

#[test]
fn an_exemption_beside_others_never_declares_the_chain_again() {
    let state = NatState::read(&dump(true, &[&ours("192.0.2.51", "eth0", "c2")]));
    let (script, undo) = add_script(&state, ip(S), "eth0", C).unwrap();
    assert!(
        !script.contains(&format!(":{NODE_CHAIN}")),
        "declaring it would flush the other pod's rule: {script}"
    );
    assert!(!script.contains("POSTROUTING"), "{script}");
    assert!(!undo.contains("-X"), "{undo}");
}

#[test]
fn a_jump_pushed_down_is_moved_first_and_a_stale_rule_replaced() {
    let state = NatState::read(&dump(false, &[&ours(S, "eth1", "old")]));
    let (script, _) = add_script(&state, ip(S), "eth0", C).unwrap();
    assert!(
        script.contains(&format!(
            "-D POSTROUTING -j {NODE_CHAIN}\n-I POSTROUTING 1 -j {NODE_CHAIN}\n"
        )),
        "{script}"
    );
    assert!(
        script.contains(&format!("-D {NODE_CHAIN} {}\n", ours(S, "eth1", "old"))),
        "{script}"
    );
    assert!(
        script.contains(&format!("-A {NODE_CHAIN} {}", exemption(ip(S), "eth0", C))),
        "{script}"
    );
}

#[test]
fn in_place_needs_no_script() {
    let state = NatState::read(&dump(true, &[&ours(S, "eth0", C)]));
    assert_eq!(add_script(&state, ip(S), "eth0", C), None);
    assert!(problems(&state, ip(S), "eth0", C).is_empty());
}

#[test]
fn removal_keeps_other_pods_rules_and_drops_the_chain_with_the_last() {
    let two = NatState::read(&dump(
        true,
        &[&ours(S, "eth0", C), &ours("192.0.2.51", "eth0", "c2")],
    ));
    let script = remove_script(&two, ip(S)).unwrap();
    assert_eq!(
        script,
        format!("*nat\n-D {NODE_CHAIN} {}\nCOMMIT\n", ours(S, "eth0", C))
    );
    let one = NatState::read(&dump(true, &[&ours(S, "eth0", C)]));
    let script = remove_script(&one, ip(S)).unwrap();
    assert!(
        script.ends_with(&format!(
            "-D POSTROUTING -j {NODE_CHAIN}\n-X {NODE_CHAIN}\nCOMMIT\n"
        )),
        "{script}"
    );
    assert_eq!(
        remove_script(&NatState::read(&dump(false, &[])), ip(S)),
        None
    );
    assert_eq!(
        remove_script(&two, ip("192.0.2.52")),
        None,
        "nothing of that source"
    );
}

#[test]
fn problems_name_the_missing_rule_and_a_misplaced_jump() {
    let state = NatState::read(&dump(false, &[&ours("192.0.2.51", "eth0", "c2")]));
    let found = problems(&state, ip(S), "eth0", C);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("is not the first rule of POSTROUTING"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with(&format!(
            "nat rule missing: -A {NODE_CHAIN} -s {S}/32 -o eth0"
        )),
        "{found:?}"
    );
    let v6 = exemption(ip("2001:db8:10::50"), "eth0", C);
    assert!(v6.starts_with("-s 2001:db8:10::50/128 -o eth0"), "{v6}");
}
