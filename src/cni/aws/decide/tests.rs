use super::*;

const S: &str = "192.0.2.50";
const S6: &str = "2001:db8:10::50";

fn v4(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

fn eni(id: &str, secondary: &[&str], ipv6: &[&str]) -> Eni {
    Eni {
        id: id.into(),
        mac: "02:00:00:00:00:0a".into(),
        primary_ipv4: Some(v4("192.0.2.10")),
        secondary_ipv4: secondary.iter().map(|a| v4(a)).collect(),
        ipv6: ipv6.iter().map(|a| a.parse().unwrap()).collect(),
    }
}

fn eip(on: Option<(&str, &str)>) -> ElasticIpState {
    ElasticIpState {
        allocation_id: "eipalloc-1".into(),
        public_ip: v4("198.51.100.10"),
        association_id: on.map(|_| "eipassoc-1".to_string()),
        network_interface_id: on.map(|(e, _)| e.to_string()),
        private_ip: on.map(|(_, p)| v4(p)),
    }
}

fn wanted(v6: bool) -> Wanted {
    Wanted {
        v4: Some(v4(S)),
        v6: v6.then(|| S6.parse().unwrap()),
    }
}

#[test]
fn add_assigns_moves_and_associates_what_is_missing() {
    let found = Found {
        ours: eni("eni-a", &[], &[]),
        v4_holders: vec!["eni-b".into()],
        v6_holders: vec!["eni-b".into()],
        eip: Some(eip(Some(("eni-b", S)))),
    };
    let steps = add_plan(&wanted(true), &found).unwrap();
    let shown: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "AssignPrivateIpAddresses 192.0.2.50 to eni-a (from eni-b)",
            "UnassignIpv6Addresses 2001:db8:10::50 from eni-b",
            "AssignIpv6Addresses 2001:db8:10::50 to eni-a",
            "AssociateAddress eipalloc-1 with 192.0.2.50 on eni-a",
        ]
    );
}

#[test]
fn add_with_everything_in_place_makes_no_call() {
    let found = Found {
        ours: eni("eni-a", &[S], &[S6]),
        eip: Some(eip(Some(("eni-a", S)))),
        ..Found::default()
    };
    assert_eq!(add_plan(&wanted(true), &found).unwrap(), Vec::new());
    assert!(problems(&wanted(true), &found.ours, found.eip.as_ref()).is_empty());
}

#[test]
fn the_primary_address_is_never_a_source() {
    let found = Found {
        ours: eni("eni-a", &[], &[]),
        ..Found::default()
    };
    let wanted = Wanted {
        v4: Some(v4("192.0.2.10")),
        v6: None,
    };
    let message = add_plan(&wanted, &found).unwrap_err();
    assert!(
        message.contains("192.0.2.10 is the primary address of eni-a"),
        "{message}"
    );
}

#[test]
fn release_takes_only_what_is_still_on_this_eni() {
    let here = eni("eni-a", &[S], &[S6]);
    let shown: Vec<String> = release_plan(&wanted(true), &here, Some(&eip(Some(("eni-a", S)))))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            "DisassociateAddress eipassoc-1 (eipalloc-1)",
            "UnassignPrivateIpAddresses 192.0.2.50 from eni-a",
            "UnassignIpv6Addresses 2001:db8:10::50 from eni-a",
        ]
    );
    // the pod moved: the address and the Elastic IP are on another node's ENI
    let moved = eni("eni-a", &[], &[]);
    assert_eq!(
        release_plan(&wanted(true), &moved, Some(&eip(Some(("eni-b", S))))),
        Vec::new()
    );
    // the address is here but the Elastic IP went elsewhere: only the address
    let shown: Vec<String> = release_plan(&wanted(false), &here, Some(&eip(Some(("eni-b", S)))))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["UnassignPrivateIpAddresses 192.0.2.50 from eni-a"]);
}

#[test]
fn rollback_undoes_what_was_attempted_and_is_still_there() {
    let attempted = vec![
        ApiStep::AssignV4 {
            eni: "eni-a".into(),
            address: v4(S),
            from: Some("eni-b".into()),
        },
        ApiStep::UnassignV6 {
            eni: "eni-b".into(),
            address: S6.parse().unwrap(),
        },
        ApiStep::AssignV6 {
            eni: "eni-a".into(),
            address: S6.parse().unwrap(),
        },
        ApiStep::Associate {
            allocation: "eipalloc-1".into(),
            eni: "eni-a".into(),
            private: v4(S),
        },
    ];
    let now = eni("eni-a", &[S], &[S6]);
    let shown: Vec<String> = rollback_plan(&attempted, &now, Some(&eip(Some(("eni-a", S)))))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            "DisassociateAddress eipassoc-1 (eipalloc-1)",
            "UnassignIpv6Addresses 2001:db8:10::50 from eni-a",
            "AssignIpv6Addresses 2001:db8:10::50 to eni-b",
            "AssignPrivateIpAddresses 192.0.2.50 to eni-b (from eni-a)",
        ]
    );
    // a call that timed out without effect: nothing to undo for it
    let untouched = eni("eni-a", &[], &[]);
    let plan = rollback_plan(&attempted[..1], &untouched, None);
    assert_eq!(plan, Vec::new());
    // an address assigned from nowhere is unassigned
    let fresh = vec![ApiStep::AssignV4 {
        eni: "eni-a".into(),
        address: v4(S),
        from: None,
    }];
    let shown: Vec<String> = rollback_plan(&fresh, &now, None)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["UnassignPrivateIpAddresses 192.0.2.50 from eni-a"]);
}

#[test]
fn problems_name_what_ec2_lacks() {
    let found = problems(
        &wanted(true),
        &eni("eni-a", &[], &[]),
        Some(&eip(Some(("eni-b", S)))),
    );
    assert_eq!(
        found,
        [
            "EC2: 192.0.2.50 is not a secondary private address of eni-a",
            "EC2: 2001:db8:10::50 is not an IPv6 address of eni-a",
            "EC2: Elastic IP 198.51.100.10 (eipalloc-1) is not associated with 192.0.2.50 on eni-a: it is on 192.0.2.50 of eni-b",
        ]
    );
    assert!(same_mac("02:00:00:00:00:0A", &[2, 0, 0, 0, 0, 10]));
    assert!(!same_mac("02:00:00:00:00:0b", &[2, 0, 0, 0, 0, 10]));
}
