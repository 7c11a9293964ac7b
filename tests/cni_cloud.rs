//! CNI plugin `routed` in a cloud, as root (SPEC section 11): in the VPC of
//! `common::cloud` (frames only from the ENI's MAC, packets only from the ENI's
//! addresses, an address delivered to the node whose ENI holds it), macvlan egress
//! fails and `routed` works, with a node rule masquerading everything that leaves by
//! `eth0` in place; CHECK names each node piece that goes missing; DEL leaves the node
//! as it was; two pods of one node with different sources both work.
//!
//! The source is assigned to the node's ENI by the test, as an operator does for
//! `routed` (for `aws-elastic-ip` the plugin does it: `cni_aws*.rs`). These tests FAIL
//! (never skip) without root or without the EC2 API's virtual environment.

mod common;

use common::cloud::*;
use common::cni::*;
use common::*;
use serde_json::json;

fn servers(cloud: &Cloud) -> (Server, Server) {
    (
        Server::tcp_in_netns(&cloud.ns("srv"), CLOUD_SERVER, 80, answer_line),
        Server::tcp_in_netns(&cloud.ns("srv"), CLOUD_SERVER6, 80, answer_line),
    )
}

#[test]
fn macvlan_fails_in_the_cloud_and_routed_works_past_the_node_masquerade() {
    let _x = xtables_shared();
    let cloud = Cloud::new();
    let api = Api::start(&cloud);
    let world = api.world(&cloud);
    let _servers = servers(&cloud);
    api.assign(&world.eni_a, CLOUD_SOURCE);

    let macvlan = cloud_pod(&cloud, NODE_A, 1, &cloud_config("macvlan", json!({})));
    macvlan.add().ok();
    let dropped_before = cloud.mac_drops("ca");
    let got = seen_from(&cloud, NODE_A);
    assert!(
        got.is_err(),
        "macvlan must not get through the cloud: {got:?}"
    );
    assert!(
        cloud.mac_drops("ca") > dropped_before,
        "the cloud dropped the macvlan's frames for their MAC"
    );
    macvlan.del().ok_silent();

    let before = cloud.node_state(NODE_A);
    let routed = cloud_pod(&cloud, NODE_A, 2, &cloud_config("routed", json!({})));
    let result = routed.add().ok().json();
    assert_eq!(
        result["ips"][0]["address"],
        json!("192.0.2.50/25"),
        "{result}"
    );
    assert_eq!(result["ips"][0]["gateway"], json!("192.0.2.1"), "{result}");
    let masquerade = cloud.sh("na", "iptables-save -t nat");
    assert!(
        masquerade.contains("-A POSTROUTING -o eth0 -j MASQUERADE"),
        "the node masquerades what leaves by eth0:\n{masquerade}"
    );
    assert_eq!(
        seen_from(&cloud, NODE_A),
        Ok(CLOUD_SOURCE.to_string()),
        "the server sees the source, not the node's masquerade"
    );
    routed.check(Some(&result)).ok_silent();

    routed.del().ok_silent();
    assert_eq!(
        cloud.node_state(NODE_A),
        before,
        "DEL leaves the node as it was"
    );
    assert!(
        link_line(&cloud.ns("pa"), "net1").is_none(),
        "net1 left in the pod"
    );
}

/// A dual-stack `routed` configuration (the IPv6 source in the VPC's IPv6 subnet).
fn dual_stack() -> String {
    let mut config: serde_json::Value =
        serde_json::from_str(&cloud_config("routed", json!({}))).unwrap();
    config["ip"]["addresses"] =
        json!([format!("{CLOUD_SOURCE}/25"), format!("{CLOUD_SOURCE6}/64")]);
    config.to_string()
}

#[test]
fn dual_stack_routed_and_check_names_each_missing_piece() {
    let _x = xtables_shared();
    let cloud = Cloud::new();
    let api = Api::start(&cloud);
    let world = api.world(&cloud);
    let _servers = servers(&cloud);
    api.assign(&world.eni_a, CLOUD_SOURCE);
    api.assign6(&world.eni_a, CLOUD_SOURCE6);
    let before = cloud.node_state(NODE_A);
    let pod = cloud_pod(&cloud, NODE_A, 3, &dual_stack());
    let result = pod.add().ok().json();
    assert_eq!(seen_from(&cloud, NODE_A), Ok(CLOUD_SOURCE.to_string()));
    let line = from_pod(&cloud, NODE_A, CLOUD_SERVER6).expect("IPv6 to the server");
    assert!(
        line.starts_with(&format!("{CLOUD_SOURCE6} ")),
        "the server sees the IPv6 source: {line}"
    );
    pod.check(Some(&result)).ok_silent();

    // each piece removed by hand is named
    let node_end = cloud
        .sh("na", "ip -o link")
        .lines()
        .find_map(|l| {
            l.split(':')
                .nth(1)
                .map(str::trim)
                .filter(|n| n.starts_with("egv"))
                .map(|n| n.split('@').next().unwrap().to_string())
        })
        .expect("the node end egv... on the node");
    cloud.sh(
        "na",
        &format!("ip rule del from {CLOUD_SOURCE} priority 4553"),
    );
    cloud.sh("na", "ip6tables -t nat -F EGRESS-ROUTER-ROUTED");
    cloud.sh("na", "sysctl -qw net.ipv4.conf.eth0.forwarding=0");
    cloud.sh("pa", &format!("ip neigh del {VPC_GATEWAY} dev net1"));
    let message = pod.check(Some(&result)).error(
        100,
        &[
            &format!("node: ip rule `from {CLOUD_SOURCE} lookup TABLE priority 4553"),
            &format!("node: ip6tables nat rule missing: -A EGRESS-ROUTER-ROUTED -s {CLOUD_SOURCE6}/128 -o eth0"),
            "node: net.ipv4.conf.eth0.forwarding is 0, not 1",
            &format!("the gateway {VPC_GATEWAY} is not pinned to"),
        ],
    );
    assert!(
        !message.contains("is down"),
        "nothing else is named: {message}"
    );
    cloud.sh("na", &format!("ip link del {node_end}"));
    pod.check(Some(&result))
        .error(100, &["interface net1 is missing", "node: interface egv"]);

    pod.del().ok_silent();
    pod.del().ok_silent();
    assert_eq!(
        cloud.node_state(NODE_A),
        before,
        "DEL leaves the node as it was"
    );
}

#[test]
fn two_pods_of_one_node_each_leave_from_their_own_source() {
    let _x = xtables_shared();
    let cloud = Cloud::new();
    let api = Api::start(&cloud);
    let world = api.world(&cloud);
    let _servers = servers(&cloud);
    api.assign(&world.eni_a, CLOUD_SOURCE);
    api.assign(&world.eni_a, "192.0.2.51");
    let second = PodNs::new(&cloud, "pa2");
    let first = cloud_pod(&cloud, NODE_A, 4, &cloud_config("routed", json!({})));
    let other = Attachment {
        netns: second.netns(),
        container: container_id(5),
        config: cloud_config("routed", json!({})).replace(CLOUD_SOURCE, "192.0.2.51"),
        ..first.clone()
    };
    first.add().ok();
    other.add().ok();
    assert_eq!(seen_from(&cloud, NODE_A), Ok(CLOUD_SOURCE.to_string()));
    assert_eq!(second.seen(), Ok("192.0.2.51".to_string()));

    // the same source again on this node, while its attachment lives: refused
    let third = PodNs::new(&cloud, "pa3");
    let again = Attachment {
        netns: third.netns(),
        container: container_id(6),
        ..first.clone()
    };
    again.add().error(
        11,
        &[&format!("{CLOUD_SOURCE} is routed on this node to egv")],
    );
    assert!(
        link_line(&third.name, "net1").is_none(),
        "nothing made in the refused pod"
    );

    first.del().ok_silent();
    assert_eq!(
        second.seen(),
        Ok("192.0.2.51".to_string()),
        "the other pod still works"
    );
    again.add().ok();
    again.del().ok_silent();
    other.del().ok_silent();
}
