//! CNI plugin `egress-router` failures end to end, as root (SPEC section 7): an ADD
//! that fails, early or late, leaves the pod and the node as they were, and the DEL
//! that follows leaves them alone.
//!
//! As in every `cni_*` suite, the binary is invoked exactly as a runtime does it
//! (`CNI_*` variables, the configuration on stdin, the answer on stdout), in the node
//! namespace of the CNI variant of the topology (`common::cni`), against real pod
//! namespaces, with real traffic. These tests FAIL (never skip) without root.

mod common;

use common::cni::*;
use common::*;

#[test]
fn add_fails_when_the_pod_already_has_the_interface() {
    let _x = xtables_shared();
    let t = cni_topology();
    let router = t.ns("router");
    let r = router.as_str();
    // the pod's own net1 (another attachment's, say)
    cmd(&[
        "ip",
        "-n",
        r,
        "link",
        "add",
        "net1",
        "type",
        "veth",
        "peer",
        "name",
        "net1-peer",
    ]);
    cmd(&[
        "ip",
        "-n",
        r,
        "addr",
        "add",
        "203.0.113.200/24",
        "dev",
        "net1",
    ]);
    let mac = link_mac(r, "net1");
    let before = t.snapshot("router");
    let node_before = t.snapshot("node");
    let pod = Attachment::router(&t, CONFIG);

    pod.add().error(100, &["net1"]);
    assert_no_node_leftovers(&t, "failed ADD");
    assert_same(&before, &t.snapshot("router"), "pod after the failed ADD");
    assert_same(
        &node_before,
        &t.snapshot("node"),
        "node after the failed ADD",
    );

    // what the runtime does after a failed ADD
    pod.del().ok_silent();
    assert_eq!(
        link_mac(r, "net1"),
        mac,
        "the pod's own net1 is still there"
    );
    assert_same(&before, &t.snapshot("router"), "pod after DEL");
    pod.check(None)
        .error(100, &["net1 was not made by this container's ADD"]);
}

#[test]
fn a_late_failure_undoes_every_step_and_del_leaves_the_pod_alone() {
    let _x = xtables_shared();
    let t = cni_topology();
    let router = t.ns("router");
    // something else already has a default route in table 4552, where ADD keeps the
    // pod's eth0 default route: that step fails, after the interface was created,
    // moved into the pod, given its address and brought up
    cmd(&[
        "ip",
        "-n",
        &router,
        "route",
        "add",
        "blackhole",
        "default",
        "table",
        "4552",
    ]);
    let before = t.snapshot("router");
    let node_before = t.snapshot("node");
    let pod = Attachment::router(&t, CONFIG);

    let msg = pod.add().error(100, &["4552"]);
    assert!(msg.contains("rolled back"), "{msg}");
    assert_no_node_leftovers(&t, "ADD failed late");
    assert!(
        link_line(pod.ns(), "net1").is_none(),
        "net1 left in the pod"
    );
    // the guard went in first, so the rollback may leave empty built-in tables
    let before = before.without_empty_tables();
    assert_same(
        &before,
        &t.snapshot("router").without_empty_tables(),
        "pod after the failed ADD",
    );
    assert_same(
        &node_before,
        &t.snapshot("node"),
        "node after the failed ADD",
    );

    pod.del().ok_silent();
    assert_same(
        &before,
        &t.snapshot("router").without_empty_tables(),
        "pod after the DEL that follows a failed ADD",
    );
}
