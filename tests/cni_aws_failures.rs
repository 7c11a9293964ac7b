//! CNI plugin `aws-elastic-ip` failing, as root (SPEC section 11): an unknown
//! allocation, an ENI that cannot be found, an API that answers errors (retried when
//! it throttles) or does not answer at all, before or after the address is assigned:
//! each a clear CNI error, ADD within 15 s, nothing left on the node, in the pod or in
//! the API; DEL whose API cleanup fails fails, with the node clean, and a later DEL
//! finishes it; each command counted by result in a `metrics_file` for node_exporter.
//! FAILS (never skips) without root or without the EC2 API's virtual
//! environment.

mod common;

use common::cloud::*;
use common::cni::*;
use common::*;
use serde_json::json;
use std::time::Duration;

/// The cloud, its API and world, node A's state before anything.
fn setup() -> (Cloud, Api, World, String) {
    let cloud = Cloud::new();
    let api = Api::start(&cloud);
    let world = api.world(&cloud);
    let before = cloud.node_state(NODE_A);
    (cloud, api, world, before)
}

/// Nothing of the attachment on node A, in its pod, or in the API.
fn nothing_left(cloud: &Cloud, api: &Api, before: &str, what: &str) {
    assert_eq!(
        cloud.node_state(NODE_A),
        before,
        "{what}: the node is as it was"
    );
    assert!(
        link_line(&cloud.ns("pa"), "net1").is_none(),
        "{what}: net1 left in the pod"
    );
    assert!(
        api.holders(CLOUD_SOURCE).is_empty(),
        "{what}: the source is still assigned"
    );
}

#[test]
fn unknown_allocation_and_missing_eni_are_configuration_errors() {
    let _x = xtables_shared();
    let (cloud, api, world, before) = setup();
    let pod = cloud_pod(
        &cloud,
        NODE_A,
        1,
        &cloud_config(
            "aws-elastic-ip",
            json!({"allocationId": "eipalloc-0123456789abcdef0"}),
        ),
    );
    pod.add().error(
        7,
        &["interfaceArgs.allocationId", "InvalidAllocationID.NotFound"],
    );
    nothing_left(&cloud, &api, &before, "unknown allocation");

    let pod = cloud_pod(
        &cloud,
        NODE_A,
        2,
        &cloud_config(
            "aws-elastic-ip",
            json!({"networkInterfaceId": "eni-0123456789abcdef0"}),
        ),
    );
    pod.add().error(
        7,
        &["interfaceArgs.networkInterfaceId", "eni-0123456789abcdef0"],
    );
    nothing_left(&cloud, &api, &before, "unknown ENI");

    // node B's ENI named on node A: not the master's
    let pod = cloud_pod(
        &cloud,
        NODE_A,
        3,
        &cloud_config("aws-elastic-ip", json!({"networkInterfaceId": world.eni_b})),
    );
    pod.add().error(
        7,
        &[
            "interfaceArgs.networkInterfaceId",
            "it is not this node's ENI on eth0",
        ],
    );
    nothing_left(&cloud, &api, &before, "another node's ENI");
}

#[test]
fn an_api_answering_errors_is_retried_when_it_throttles_and_rolled_back_otherwise() {
    let _x = xtables_shared();
    let (cloud, api, world, before) = setup();
    let config = cloud_config("aws-elastic-ip", json!({"allocationId": world.allocation}));

    api.fault("AssociateAddress", json!({"code": "InternalError", "message": "We encountered an internal error", "status": 500}));
    let pod = cloud_pod(&cloud, NODE_A, 1, &config);
    let failed = pod.add();
    failed.error(
        11,
        &["AssociateAddress: InternalError: We encountered an internal error"],
    );
    assert!(
        failed.stderr.contains("EC2 call undone"),
        "the assignment was undone:\n{failed}"
    );
    nothing_left(&cloud, &api, &before, "AssociateAddress failing");

    api.clear_faults();
    api.fault("AssignPrivateIpAddresses", json!({"code": "RequestLimitExceeded", "message": "Request limit exceeded.", "status": 503, "times": 2}));
    let pod = cloud_pod(&cloud, NODE_A, 2, &config);
    let add = pod.add().ok();
    assert_eq!(
        add.stderr.matches("EC2 call retried").count(),
        2,
        "throttled twice, then done:\n{}",
        add.stderr
    );
    pod.del().ok_silent();
    nothing_left(&cloud, &api, &before, "after the throttled ADD's DEL");
}

#[test]
fn an_api_that_never_answers_fails_add_within_15_s_and_leaves_nothing() {
    let _x = xtables_shared();
    let (cloud, api, world, before) = setup();
    let config = cloud_config("aws-elastic-ip", json!({"allocationId": world.allocation}));

    api.fault("DescribeNetworkInterfaces", json!({"hang": true}));
    let pod = cloud_pod(&cloud, NODE_A, 1, &config);
    let failed = pod.add();
    failed.error(11, &["DescribeNetworkInterfaces: no answer within"]);
    assert!(
        failed.took < Duration::from_secs(15),
        "ADD took {:?}",
        failed.took
    );
    api.clear_faults();
    nothing_left(&cloud, &api, &before, "no answer at all");

    // no answer after the address was assigned: the rollback unassigns it
    api.fault("AssociateAddress", json!({"hang": true}));
    let pod = cloud_pod(&cloud, NODE_A, 2, &config);
    let failed = pod.add();
    failed.error(11, &["AssociateAddress: no answer within"]);
    assert!(
        failed.took < Duration::from_secs(15),
        "ADD took {:?}",
        failed.took
    );
    api.clear_faults();
    nothing_left(&cloud, &api, &before, "no answer to AssociateAddress");
}

#[test]
fn del_fails_while_the_api_fails_and_a_later_del_finishes() {
    let _x = xtables_shared();
    let (cloud, api, world, before) = setup();
    let config = cloud_config("aws-elastic-ip", json!({"allocationId": world.allocation}));
    let pod = cloud_pod(&cloud, NODE_A, 1, &config);
    pod.add().ok();
    api.fault("UnassignPrivateIpAddresses", json!({"code": "InternalError", "message": "We encountered an internal error", "status": 500}));
    pod.del().error(
        11,
        &[
            "UnassignPrivateIpAddresses: InternalError",
            "a repeated DEL finishes the EC2 side",
        ],
    );
    assert_eq!(cloud.node_state(NODE_A), before, "the node is clean anyway");
    assert!(link_line(&cloud.ns("pa"), "net1").is_none(), "and the pod");
    assert_eq!(
        api.holders(CLOUD_SOURCE),
        vec![world.eni_a.clone()],
        "the address is still assigned"
    );
    api.clear_faults();
    pod.del().ok_silent();
    nothing_left(&cloud, &api, &before, "the repeated DEL");
    assert_eq!(api.association(&world.allocation), None);
}

/// node_exporter's textfile directory for one test: created when missing (and then
/// removed, with every directory made for it); the plugin's file put back as it was.
struct TextfileDir {
    file: std::path::PathBuf,
    before: Option<Vec<u8>>,
    made: Vec<std::path::PathBuf>,
}

impl TextfileDir {
    const DIR: &'static str = "/var/lib/node_exporter/textfile_collector";

    fn new() -> Self {
        let mut made = Vec::new();
        let mut path = std::path::PathBuf::from("/");
        for part in Self::DIR.split('/').skip(1) {
            path.push(part);
            if !path.exists() {
                std::fs::create_dir(&path).unwrap();
                made.push(path.clone());
            }
        }
        let file = path.join("egress-router.prom");
        let before = std::fs::read(&file).ok();
        let _ = std::fs::remove_file(&file);
        TextfileDir { file, before, made }
    }
}

impl Drop for TextfileDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        if let Some(before) = &self.before {
            let _ = std::fs::write(&self.file, before);
        }
        for dir in self.made.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn commands_are_counted_for_node_exporter_by_result() {
    let _x = xtables_shared();
    let textfile = TextfileDir::new();
    let (cloud, api, _world, before) = setup();
    let mut config: serde_json::Value = serde_json::from_str(&cloud_config(
        "aws-elastic-ip",
        json!({"allocationId": "eipalloc-0123456789abcdef0"}),
    ))
    .unwrap();
    config["metrics_file"] = json!(textfile.file.to_str().unwrap());
    let pod = cloud_pod(&cloud, NODE_A, 1, &config.to_string());
    pod.add().error(7, &["InvalidAllocationID.NotFound"]);
    pod.add().error(7, &["InvalidAllocationID.NotFound"]);
    nothing_left(&cloud, &api, &before, "unknown allocation, counted");
    pod.del().ok_silent();
    let text = std::fs::read_to_string(&textfile.file).expect("the metrics file written");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&textfile.file).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o644,
        "readable by a node_exporter of another user"
    );
    let series = |command: &str, result: &str| {
        format!(
            "egress_router_cni_commands_total{{network=\"egress\",command=\"{command}\",interface_type=\"aws-elastic-ip\",result=\"{result}\"}}"
        )
    };
    assert!(
        text.contains(&format!("{} 2\n", series("ADD", "7"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} 1\n", series("DEL", "ok"))),
        "{text}"
    );
    assert!(!text.contains(&series("ADD", "ok")), "{text}");
    // what node_exporter reads: valid text format, by Prometheus's own checker
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&textfile.file).unwrap())
        .output()
        .expect("promtool (Debian's prometheus package) runs");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // another collector's file: ADD refused before any change, naming the field
    let other = format!("{}/smartmon.prom", TextfileDir::DIR);
    config["metrics_file"] = json!(other);
    let pod = cloud_pod(&cloud, NODE_A, 2, &config.to_string());
    pod.add().error(7, &["metrics_file", &other]);
    assert!(!std::path::Path::new(&other).exists());
    nothing_left(&cloud, &api, &before, "metrics_file refused");
}
