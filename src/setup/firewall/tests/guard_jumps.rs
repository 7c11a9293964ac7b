//! The guard's jumps: each the first rule of `INPUT` and `FORWARD`, exactly once.

use super::*;

fn filter_lines(script: &str) -> Vec<&str> {
    let start = script.find("*filter\n").expect("a filter section");
    let section = &script[start..];
    section[..section.find("COMMIT").unwrap()]
        .lines()
        .filter(|l| l.starts_with("-I ") || l.starts_with("-D "))
        .collect()
}

#[test]
fn a_jump_standing_first_alone_is_left_as_it_is() {
    let current = "*filter\n:INPUT ACCEPT [0:0]\n\
                   -A INPUT -j EGRESS-ROUTER-INPUT\n-A INPUT -i eth0 -j ACCEPT\n\
                   -A FORWARD -j EGRESS-ROUTER-FORWARD\nCOMMIT\n";
    let script = restore_script(current, &router(None));
    assert!(filter_lines(&script).is_empty(), "{script}");
    assert!(jump_problems(current, &router(None)).is_empty());
}

#[test]
fn a_jump_behind_another_rule_is_moved_to_the_top_and_named_by_the_check() {
    let current = "*filter\n:INPUT ACCEPT [0:0]\n\
                   -A INPUT -i macvlan0 -j ACCEPT\n-A INPUT -j EGRESS-ROUTER-INPUT\n\
                   -A FORWARD -j EGRESS-ROUTER-FORWARD\n-A FORWARD -j EGRESS-ROUTER-FORWARD\nCOMMIT\n";
    let script = restore_script(current, &router(None));
    assert_eq!(
        filter_lines(&script),
        [
            "-D INPUT -j EGRESS-ROUTER-INPUT",
            "-I INPUT 1 -j EGRESS-ROUTER-INPUT",
            "-D FORWARD -j EGRESS-ROUTER-FORWARD",
            "-D FORWARD -j EGRESS-ROUTER-FORWARD",
            "-I FORWARD 1 -j EGRESS-ROUTER-FORWARD",
        ],
        "{script}"
    );
    let problems = jump_problems(current, &router(None)).join("\n");
    assert!(
        problems.contains(
            "the jump `-A INPUT -j EGRESS-ROUTER-INPUT` (filter) is not the first rule of INPUT"
        ),
        "{problems}"
    );
    assert!(
        problems.contains("`-A FORWARD -j EGRESS-ROUTER-FORWARD` (filter) stands 2 times"),
        "{problems}"
    );
}

#[test]
fn teardown_removes_the_guard_and_rollback_knows_the_filter_table() {
    let installed = "*filter\n:INPUT ACCEPT [0:0]\n:EGRESS-ROUTER-INPUT - [0:0]\n:EGRESS-ROUTER-FORWARD - [0:0]\n\
                     -A INPUT -j EGRESS-ROUTER-INPUT\n-A INPUT -i eth0 -j ACCEPT\n\
                     -A FORWARD -j EGRESS-ROUTER-FORWARD\n\
                     -A EGRESS-ROUTER-INPUT -i net1 -j DROP\nCOMMIT\n";
    assert_eq!(
        teardown_script(installed),
        "*filter\n-D INPUT -j EGRESS-ROUTER-INPUT\n-D FORWARD -j EGRESS-ROUTER-FORWARD\n\
         -F EGRESS-ROUTER-INPUT\n-X EGRESS-ROUTER-INPUT\n\
         -F EGRESS-ROUTER-FORWARD\n-X EGRESS-ROUTER-FORWARD\nCOMMIT\n"
    );
    assert_eq!(
        rollback_script("", &["filter"]),
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    );
}

#[test]
fn the_ipv6_guard_alone_changes_the_filter_table_only() {
    let wanted = Wanted::guard_only(Family::V6, "macvlan0");
    assert_eq!(tables(&wanted), ["filter"]);
    let script = restore_script("", &wanted);
    assert!(
        !script.contains("*mangle") && !script.contains("*nat"),
        "{script}"
    );
    assert!(script.contains("--icmpv6-type 135 -j RETURN"), "{script}");
}

#[test]
fn a_chain_of_ours_in_any_table_is_found() {
    assert_eq!(
        our_chain_in("*nat\n:PREROUTING ACCEPT [0:0]\n:EGRESS-ROUTER-DNAT - [0:0]\nCOMMIT\n"),
        Some("EGRESS-ROUTER-DNAT")
    );
    assert_eq!(
        our_chain_in("*filter\n:EGRESS-ROUTER-INPUT - [0:0]\nCOMMIT\n"),
        Some("EGRESS-ROUTER-INPUT")
    );
    assert_eq!(
        our_chain_in("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j EGRESS-ROUTER-INPUTX\nCOMMIT\n"),
        None
    );
}
