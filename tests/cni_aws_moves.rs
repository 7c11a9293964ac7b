//! CNI plugin `aws-elastic-ip` when the pod moves, as root (SPEC section 11): ADD on
//! node B takes the address (and the Elastic IP with it) from node A, traffic flows
//! from B, a late DEL on A leaves B's address and Elastic IP alone and cleans A, and
//! DEL on B leaves nothing in the API. FAILS (never skips) without root or without
//! the EC2 API's virtual environment.

mod common;

use common::cloud::*;
use common::*;
use serde_json::json;

#[test]
fn the_pod_moves_and_a_late_del_on_the_old_node_leaves_the_new_one_alone() {
    let _x = xtables_shared();
    let cloud = Cloud::new();
    let api = Api::start(&cloud);
    let world = api.world(&cloud);
    let _server = Server::tcp_in_netns(&cloud.ns("srv"), CLOUD_SERVER, 80, answer_line);
    let (before_a, before_b) = (cloud.node_state(NODE_A), cloud.node_state(NODE_B));
    let config = cloud_config("aws-elastic-ip", json!({"allocationId": world.allocation}));
    let on_a = cloud_pod(&cloud, NODE_A, 1, &config);
    let on_b = cloud_pod(&cloud, NODE_B, 2, &config);

    on_a.add().ok();
    assert_eq!(
        seen_from(&cloud, NODE_A),
        Ok(world.public_ip.clone()),
        "from A"
    );
    on_b.add().ok();
    assert_eq!(
        api.holders(CLOUD_SOURCE),
        vec![world.eni_b.clone()],
        "the address moved to B's ENI"
    );
    assert_eq!(
        api.association(&world.allocation),
        Some((world.eni_b.clone(), CLOUD_SOURCE.to_string())),
        "the Elastic IP moved along"
    );
    assert_eq!(
        seen_from(&cloud, NODE_B),
        Ok(world.public_ip.clone()),
        "from B"
    );

    // the late DEL of the old pod on A
    let late = on_a.del().ok_silent();
    assert!(
        !late.stderr.contains("EC2 call made"),
        "A's DEL makes no EC2 call:\n{}",
        late.stderr
    );
    assert_eq!(
        api.holders(CLOUD_SOURCE),
        vec![world.eni_b.clone()],
        "B keeps the address"
    );
    assert_eq!(
        api.association(&world.allocation),
        Some((world.eni_b.clone(), CLOUD_SOURCE.to_string())),
        "B keeps the Elastic IP"
    );
    assert_eq!(cloud.node_state(NODE_A), before_a, "A is as it was");
    assert_eq!(
        seen_from(&cloud, NODE_B),
        Ok(world.public_ip.clone()),
        "traffic still flows from B"
    );

    on_b.del().ok_silent();
    assert!(
        api.holders(CLOUD_SOURCE).is_empty(),
        "nothing left in the API"
    );
    assert_eq!(
        api.association(&world.allocation),
        None,
        "the Elastic IP is free"
    );
    assert_eq!(cloud.node_state(NODE_B), before_b, "B is as it was");
}
