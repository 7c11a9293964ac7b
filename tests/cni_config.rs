//! CNI plugin `egress-router` configurations end to end, as root (SPEC section 7):
//! `podIP` chosen by pod name, the cluster network operator's rendering, `ipvlan`, and
//! the commands about versions (VERSION, STATUS, GC, unsupported versions).
//!
//! As in every `cni_*` suite, the binary is invoked exactly as a runtime does it
//! (`CNI_*` variables, the configuration on stdin, the answer on stdout), in the node
//! namespace of the CNI variant of the topology (`common::cni`), against real pod
//! namespaces, with real traffic. These tests FAIL (never skip) without root.

mod common;

use common::cni::*;
use common::*;
use serde_json::{Value, json};

#[test]
fn pod_ip_chooses_by_pod_name() {
    let _x = xtables_shared();
    let t = cni_topology();
    let config = r#"{
        "cniVersion": "0.4.0",
        "name": "egress",
        "type": "egress-router",
        "podIP": {
            "exact-pod": {"addresses": ["198.51.100.98/24"], "gateway": "198.51.100.1"},
            "alpha-*": {"addresses": ["198.51.100.97/24"], "gateway": "198.51.100.1"},
            "alpha-be*": {"addresses": ["198.51.100.96/24"], "gateway": "198.51.100.1",
                          "destinations": ["203.0.113.5"]}
        }
    }"#;
    let before = t.snapshot("router");
    for (pod_name, source) in [
        ("alpha-beta", "198.51.100.96/24"),
        ("alpha-gamma", "198.51.100.97/24"),
        ("exact-pod", "198.51.100.98/24"),
    ] {
        let pod = Attachment {
            pod: pod_name.into(),
            ..Attachment::router(&t, config)
        };
        let result = pod.add().ok().json();
        assert_result(&result, &pod, "0.4.0", source);
        assert_eq!(inets(pod.ns(), "net1"), vec![source], "{pod_name}");
        pod.check(Some(&result)).ok_silent();
        pod.del().ok_silent();
    }

    let _srv = t.tcp_server(80);
    let pod = Attachment {
        pod: "alpha-beta".into(),
        ..Attachment::router(&t, config)
    };
    pod.add().ok();
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.96 203.0.113.5:80",
        "alpha-beta's own destinations and source",
    );
    pod.del().ok_silent();

    let unmatched = Attachment {
        pod: "beta-pod".into(),
        ..Attachment::router(&t, config)
    };
    unmatched.add().error(7, &["podIP", "\"beta-pod\""]);
    assert_no_node_leftovers(&t, "ADD for an unmatched pod");
    assert_same(
        &without_allowed_leftovers(before),
        &without_allowed_leftovers(t.snapshot("router")),
        "pod after the ADD for an unmatched pod",
    );
}

#[test]
fn the_operator_rendered_config_works_end_to_end() {
    let _x = xtables_shared();
    let t = cni_topology();
    let _tcp = t.tcp_server(80);
    let _udp = t.udp_server(80);
    let log = TempFile(std::path::PathBuf::from(format!(
        "/var/log/{}-egress-router.log",
        t.prefix
    )));
    // as the cluster network operator renders an EgressRouter CR (redirect mode):
    // upper-case protocols, destinations with a prefix, a bare fallback last, the
    // master named, macvlan in bridge mode, its log settings
    let config = format!(
        r#"{{ "cniVersion": "0.4.0", "type": "egress-router", "name": "egress-router-cni-nad",
  "ip": {{ "addresses": [ "198.51.100.99/24" ],
  "destinations": [ "80 UDP 203.0.113.7/30","8080 TCP 203.0.113.5/30 80","8443 TCP 203.0.113.6/30 443","203.0.113.6" ],
  "gateway": "198.51.100.1" }},
  "interfaceType": "macvlan", "interfaceArgs": {{ "master": "uplink0", "mode": "bridge" }},
  "log_file": "{}", "log_level": "debug" }}"#,
        log.0.display()
    );
    let pod = Attachment::router(&t, &config);
    let result = pod.add().ok().json();
    assert_result(&result, &pod, "0.4.0", "198.51.100.99/24");
    assert_eq!(
        link_parent(pod.ns(), "net1"),
        link_index(&t.ns("node"), "uplink0")
    );

    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:8080"),
        "198.51.100.99 203.0.113.5:80",
        "client -> 192.0.2.70:8080 (8080 TCP 203.0.113.5/30 80)",
    );
    expect_reply(
        &t,
        t.udp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.7:80",
        "client -> 192.0.2.70:80/udp (80 UDP 203.0.113.7/30)",
    );
    expect_reply(
        &t,
        t.tcp_from_client("192.0.2.70:80"),
        "198.51.100.99 203.0.113.6:80",
        "client -> 192.0.2.70:80/tcp (fallback 203.0.113.6)",
    );
    pod.check(Some(&result)).ok_silent();
    pod.del().ok_silent();

    let logged = std::fs::read_to_string(&log.0).unwrap_or_default();
    for command in ["ADD", "CHECK", "DEL"] {
        let line = format!("{command} container={}: ok", pod.container);
        assert!(
            logged.contains(&line),
            "log_file at debug level must hold {line:?}:\n{logged}"
        );
    }
}

#[test]
fn version_status_and_gc_answer_and_unsupported_versions_are_code_1() {
    let _x = xtables_shared();
    let t = cni_topology();
    let pod = Attachment::router(&t, CONFIG);
    let supported = json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
    // podman (libcni) asks with CNI_NETNS=dummy and the newest version it knows
    let mut vars = pod.vars("VERSION", Some("dummy"));
    vars.retain(|(k, _)| k != "CNI_IFNAME" && k != "CNI_ARGS");
    for (stdin, answered) in [
        (r#"{"cniVersion":"1.0.0"}"#, "1.0.0"),
        (r#"{"cniVersion":"0.4.0"}"#, "0.4.0"),
        ("", "1.0.0"),
    ] {
        let reply = run_plugin(&pod.node, &vars, stdin, format!("VERSION with {stdin:?}")).ok();
        let answer = reply.json();
        assert_eq!(answer["supportedVersions"], supported, "{reply}");
        assert_eq!(answer["cniVersion"], json!(answered), "{reply}");
    }

    // STATUS and GC of CNI 1.1.0, as a runtime sends them: no container, no namespace
    let current = CONFIG.replace("0.4.0", "1.1.0");
    for command in ["STATUS", "GC"] {
        let vars = envs(&[("CNI_COMMAND", command), ("CNI_PATH", "/opt/cni/bin")]);
        let mut config: Value = serde_json::from_str(&current).unwrap();
        if command == "GC" {
            config["cni.dev/valid-attachments"] =
                json!([{"containerID": pod.container, "ifname": "net1"}]);
        }
        let reply = run_plugin(&pod.node, &vars, &config.to_string(), command.into());
        reply.ok_silent();
    }

    let before = t.snapshot("router");
    for version in ["0.2.0", "2.0.0"] {
        let config = CONFIG.replace("0.4.0", version);
        let add = pod.call_with("ADD", Some(&pod.netns), &config);
        add.error(1, &["cniVersion", version]);
        assert_eq!(add.json()["cniVersion"], json!(version), "{add}");
    }
    assert_same(&before, &t.snapshot("router"), "pod after refused ADDs");
    assert_no_node_leftovers(&t, "refused ADDs");
}

/// Whether this kernel can make an ipvlan interface (on the node's uplink0).
fn ipvlan_available(t: &Topology) -> Result<(), String> {
    let out = t.run(
        "node",
        &[
            "ip",
            "link",
            "add",
            "ipvl-probe",
            "link",
            "uplink0",
            "type",
            "ipvlan",
            "mode",
            "l2",
        ],
        &[],
    );
    if out.status.success() {
        t.sh("node", &["ip", "link", "del", "ipvl-probe"]);
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let unsupported = ["Unknown device type", "not supported", "Not supported"];
    assert!(
        unsupported.iter().any(|u| why.contains(u)),
        "creating an ipvlan link failed for another reason than missing support:\n{why}"
    );
    Err(why)
}

#[test]
fn ipvlan_works_or_fails_cleanly_where_the_kernel_lacks_it() {
    let _x = xtables_shared();
    let t = cni_topology();
    let _srv = t.tcp_server(80);
    let config = CONFIG.replace(
        r#""type": "egress-router","#,
        r#""type": "egress-router", "interfaceType": "ipvlan","#,
    );
    assert!(config.contains("ipvlan"));
    let pod = Attachment::router(&t, &config);
    match ipvlan_available(&t) {
        Ok(()) => {
            let result = pod.add().ok().json();
            assert_result(&result, &pod, "0.4.0", "198.51.100.99/24");
            let details = link_line(pod.ns(), "net1").unwrap();
            assert!(details.contains("ipvlan"), "net1 is an ipvlan: {details}");
            expect_reply(
                &t,
                t.tcp_from_client("192.0.2.70:80"),
                "198.51.100.99 203.0.113.5:80",
                "client -> pod over ipvlan",
            );
            pod.check(Some(&result)).ok_silent();
            pod.del().ok_silent();
            assert!(link_line(pod.ns(), "net1").is_none());
        }
        Err(why) => {
            eprintln!(
                "NOTE: ipvlan is not available on this kernel ({why}); \
                 only the error path of interfaceType ipvlan was tested"
            );
            let before = t.snapshot("router");
            let node_before = t.snapshot("node");
            pod.add().error(100, &["ipvlan", "not supported"]);
            assert_no_node_leftovers(&t, "ipvlan ADD");
            assert_same(&before, &t.snapshot("router"), "pod after the ipvlan ADD");
            assert_same(
                &node_before,
                &t.snapshot("node"),
                "node after the ipvlan ADD",
            );
            pod.del().ok_silent();
        }
    }
}
