//! CNI plugin `aws-elastic-ip`, as root (SPEC section 11), in the cloud of
//! `common::cloud` whose VPC follows the EC2 API's state: ADD assigns the source to
//! the node's ENI (found by the master's MAC, or named) and associates the Elastic
//! IP, so the server sees the Elastic IP; without an allocation only the private
//! address is assigned, and an IPv6 source becomes an IPv6 address of the ENI; CHECK
//! names what EC2 lacks; DEL leaves nothing in the API or on the node; ADD and DEL
//! times with the API (median of 10). These tests FAIL (never skip) without root or
//! without the EC2 API's virtual environment.

mod common;

use common::cloud::*;
use common::*;
use serde_json::json;
use std::time::Duration;

fn servers(cloud: &Cloud) -> (Server, Server) {
    (
        Server::tcp_in_netns(&cloud.ns("srv"), CLOUD_SERVER, 80, answer_line),
        Server::tcp_in_netns(&cloud.ns("srv"), CLOUD_SERVER6, 80, answer_line),
    )
}

#[test]
fn the_server_sees_the_elastic_ip_and_del_leaves_nothing() {
    let _x = xtables_shared();
    let cloud = Cloud::new();
    let api = Api::start(&cloud);
    let world = api.world(&cloud);
    let _servers = servers(&cloud);
    let before = cloud.node_state(NODE_A);
    let config = cloud_config("aws-elastic-ip", json!({"allocationId": world.allocation}));
    let pod = cloud_pod(&cloud, NODE_A, 1, &config);

    let add = pod.add().ok();
    let result = add.json();
    assert_eq!(
        api.addresses_of(&world.eni_a).0,
        vec![CLOUD_SOURCE],
        "the source is a secondary address of node A's ENI"
    );
    assert_eq!(
        api.association(&world.allocation),
        Some((world.eni_a.clone(), CLOUD_SOURCE.to_string())),
        "the Elastic IP is associated with the source on node A's ENI"
    );
    assert_eq!(
        seen_from(&cloud, NODE_A),
        Ok(world.public_ip.clone()),
        "the server sees the Elastic IP"
    );
    pod.check(Some(&result)).ok_silent();

    // the same calls again change nothing: CHECK and a second DEL-less look
    api.disassociate(&world.allocation);
    pod.check(Some(&result)).error(
        100,
        &[&format!(
            "EC2: Elastic IP {} ({}) is not associated with {CLOUD_SOURCE} on {}",
            world.public_ip, world.allocation, world.eni_a
        )],
    );

    pod.del().ok_silent();
    assert!(
        api.holders(CLOUD_SOURCE).is_empty(),
        "no ENI holds the source after DEL"
    );
    assert_eq!(
        api.association(&world.allocation),
        None,
        "the Elastic IP is not associated after DEL"
    );
    assert_eq!(
        cloud.node_state(NODE_A),
        before,
        "DEL leaves the node as it was"
    );
    pod.del().ok_silent();
}

#[test]
fn a_named_eni_a_private_address_only_and_ipv6() {
    let _x = xtables_shared();
    let cloud = Cloud::new();
    let api = Api::start(&cloud);
    let world = api.world(&cloud);
    let _servers = servers(&cloud);
    let mut config: serde_json::Value = serde_json::from_str(&cloud_config(
        "aws-elastic-ip",
        json!({"networkInterfaceId": world.eni_b}),
    ))
    .unwrap();
    config["ip"]["addresses"] =
        json!([format!("{CLOUD_SOURCE}/25"), format!("{CLOUD_SOURCE6}/64")]);
    let pod = cloud_pod(&cloud, NODE_B, 2, &config.to_string());
    let result = pod.add().ok().json();
    let (v4, v6) = api.addresses_of(&world.eni_b);
    assert_eq!(v4, vec![CLOUD_SOURCE], "the private address is assigned");
    assert!(
        v6.contains(&CLOUD_SOURCE6.to_string()),
        "the IPv6 source is an IPv6 address of the ENI: {v6:?}"
    );
    assert_eq!(
        api.association(&world.allocation),
        None,
        "no Elastic IP without an allocation"
    );
    assert_eq!(
        seen_from(&cloud, NODE_B),
        Ok(CLOUD_SOURCE.to_string()),
        "the server sees the private source"
    );
    let line = from_pod(&cloud, NODE_B, CLOUD_SERVER6).expect("IPv6 to the server");
    assert!(line.starts_with(&format!("{CLOUD_SOURCE6} ")), "{line}");
    pod.check(Some(&result)).ok_silent();
    pod.del().ok_silent();
    let (v4, v6) = api.addresses_of(&world.eni_b);
    assert!(
        v4.is_empty() && !v6.contains(&CLOUD_SOURCE6.to_string()),
        "DEL unassigned both: {v4:?} {v6:?}"
    );
}

#[test]
fn the_elastic_ip_by_its_address_and_a_repeated_add_makes_no_call() {
    let _x = xtables_shared();
    let cloud = Cloud::new();
    let api = Api::start(&cloud);
    let world = api.world(&cloud);
    let _servers = servers(&cloud);
    let config = cloud_config("aws-elastic-ip", json!({"publicIp": world.public_ip}));
    let pod = cloud_pod(&cloud, NODE_A, 3, &config);
    let add = pod.add().ok();
    assert_eq!(
        add.stderr.matches("EC2 call made").count(),
        2,
        "assign and associate:\n{}",
        add.stderr
    );
    assert_eq!(seen_from(&cloud, NODE_A), Ok(world.public_ip.clone()));
    // a new container of the same pod on the same node, after DEL of the pod side only:
    // EC2 already has everything, so ADD makes no call
    let pod_only = common::cni::Attachment {
        config: cloud_config("routed", json!({})),
        ..pod.clone()
    };
    pod_only.del().ok_silent();
    let again = pod.add().ok();
    assert_eq!(
        again.stderr.matches("EC2 call made").count(),
        0,
        "nothing to change:\n{}",
        again.stderr
    );
    assert_eq!(seen_from(&cloud, NODE_A), Ok(world.public_ip.clone()));
    pod.del().ok_silent();
    assert!(api.holders(CLOUD_SOURCE).is_empty());
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Prints the medians the docs quote (docs/cloud-egress.md): run with `--nocapture`.
#[test]
fn add_and_del_times_with_the_api() {
    let _x = xtables_shared();
    let cloud = Cloud::new();
    let api = Api::start(&cloud);
    let world = api.world(&cloud);
    let kinds = [
        ("routed", json!({})),
        ("aws-elastic-ip", json!({"allocationId": world.allocation})),
    ];
    api.assign(&world.eni_a, "192.0.2.60");
    for (kind, args) in kinds {
        let config = match kind {
            "routed" => cloud_config(kind, args).replace(CLOUD_SOURCE, "192.0.2.60"),
            _ => cloud_config(kind, args),
        };
        let (mut adds, mut dels) = (Vec::new(), Vec::new());
        for n in 0..10 {
            let pod = cloud_pod(&cloud, NODE_A, 100 + n, &config);
            adds.push(pod.add().ok().took);
            dels.push(pod.del().ok_silent().took);
        }
        let (add, del) = (median(adds), median(dels));
        println!(
            "{kind}: ADD median {} ms, DEL median {} ms (10 each, plugin run to exit)",
            add.as_millis(),
            del.as_millis()
        );
        assert!(
            add < Duration::from_secs(5) && del < Duration::from_secs(5),
            "{kind}: {add:?} {del:?}"
        );
    }
    assert!(api.holders(CLOUD_SOURCE).is_empty());
}
