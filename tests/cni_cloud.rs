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
