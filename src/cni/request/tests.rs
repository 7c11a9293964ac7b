use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::*;
use crate::cni::code;

const CONFIG: &str = r#"{"cniVersion": "1.0.0", "name": "egress", "type": "egress-router",
    "podIP": {"egress-*": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1"}}}"#;

const ARGS: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=egress-1;K8S_POD_INFRA_CONTAINER_ID=abc;";

fn env(command: &str, extra: &[(&str, &str)]) -> Vars {
    let mut pairs = vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", "0123abcd-ef.x_y"),
        ("CNI_NETNS", "/var/run/netns/cni-1"),
        ("CNI_IFNAME", "net1"),
        ("CNI_ARGS", ARGS),
        ("CNI_PATH", "/opt/cni/bin::/usr/libexec/cni"),
    ];
    for (key, value) in extra {
        pairs.retain(|(k, _)| k != key);
        if *value != "<unset>" {
            pairs.push((key, value));
        }
    }
    Vars::from_pairs(pairs)
}

fn parse(command: &str, extra: &[(&str, &str)]) -> Result<Request> {
    Request::parse(&env(command, extra), CONFIG.as_bytes())
}

fn env_error(command: &str, extra: &[(&str, &str)]) -> String {
    match parse(command, extra).unwrap_err() {
        Error::Cni { code: 4, message } => message,
        other => panic!("{command} {extra:?}: not code 4: {other:?}"),
    }
}

#[test]
fn add_and_check_carry_the_container_netns_and_config() {
    for command in ["ADD", "CHECK"] {
        let request = parse(command, &[]).unwrap();
        let (Action::Add {
            container,
            netns,
            config,
        }
        | Action::Check {
            container,
            netns,
            config,
        }) = request.action
        else {
            panic!("{command}: {:?}", request.action)
        };
        assert_eq!(container.id, "0123abcd-ef.x_y");
        assert_eq!(container.ifname, "net1");
        assert_eq!(container.pod.name.as_deref(), Some("egress-1"));
        assert_eq!(container.pod.namespace.as_deref(), Some("default"));
        assert_eq!(netns, PathBuf::from("/var/run/netns/cni-1"));
        let ip = config.ip_config(container.pod.name.as_deref()).unwrap();
        assert_eq!(ip.sources[0].to_string(), "192.0.2.99/24");
        assert_eq!(
            request.cni_path,
            [
                PathBuf::from("/opt/cni/bin"),
                PathBuf::from("/usr/libexec/cni")
            ]
        );
    }
}

#[test]
fn del_tolerates_a_missing_or_empty_netns() {
    for netns in ["<unset>", "", "  "] {
        let request = parse("DEL", &[("CNI_NETNS", netns)]).unwrap();
        assert!(
            matches!(request.action, Action::Del { netns: None, .. }),
            "{netns:?}"
        );
    }
    let request = parse("DEL", &[("CNI_ARGS", "<unset>"), ("CNI_PATH", "<unset>")]).unwrap();
    let Action::Del {
        container, netns, ..
    } = request.action
    else {
        panic!()
    };
    assert_eq!(container.pod, Pod::default());
    assert_eq!(netns, Some(PathBuf::from("/var/run/netns/cni-1")));
    assert!(request.cni_path.is_empty());
}

#[test]
fn version_status_and_gc_need_no_container() {
    let bare = |command: &str| Vars::from_pairs([("CNI_COMMAND", command)]);
    let version = Request::parse(&bare("VERSION"), br#"{"cniVersion": "0.3.1"}"#).unwrap();
    assert_eq!(
        version.action,
        Action::Version {
            requested: Some("0.3.1".into())
        }
    );
    let version = Request::parse(&bare("VERSION"), b"").unwrap();
    assert_eq!(version.action, Action::Version { requested: None });
    for command in ["STATUS", "GC"] {
        let request = Request::parse(&bare(command), CONFIG.as_bytes()).unwrap();
        assert!(
            matches!(request.action, Action::Status { .. } | Action::Gc { .. }),
            "{command}"
        );
    }
    let err = Request::parse(&bare("STATUS"), b"{}").unwrap_err();
    assert!(matches!(err, Error::Cni { code: 7, .. }), "{err:?}");
}

#[test]
fn commands_round_trip() {
    for command in Command::ALL {
        let vars = Vars::from_pairs([("CNI_COMMAND", command.as_str())]);
        assert_eq!(Command::from_vars(&vars).unwrap(), command);
        assert_eq!(command.to_string(), command.as_str());
    }
}

/// A command, the variables changed from [`env`], and the start of the error.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn every_bad_variable_is_code_4_naming_it() {
    let cases: &[Case] = &[
        (
            "ADD",
            &[("CNI_COMMAND", "<unset>")],
            "CNI_COMMAND: is required but not set",
        ),
        ("add", &[], "CNI_COMMAND: \"add\" is not one of ADD, DEL"),
        (
            "ADD",
            &[("CNI_CONTAINERID", "<unset>")],
            "CNI_CONTAINERID: is required",
        ),
        (
            "DEL",
            &[("CNI_CONTAINERID", "")],
            "CNI_CONTAINERID: is required",
        ),
        (
            "ADD",
            &[("CNI_CONTAINERID", "-abc")],
            "CNI_CONTAINERID: \"-abc\" must start",
        ),
        (
            "ADD",
            &[("CNI_CONTAINERID", "ab/c")],
            "CNI_CONTAINERID: \"ab/c\" must start",
        ),
        (
            "CHECK",
            &[("CNI_IFNAME", "<unset>")],
            "CNI_IFNAME: is required",
        ),
        (
            "ADD",
            &[("CNI_IFNAME", "a-very-long-name")],
            "CNI_IFNAME: \"a-very-long-name\" is not an interface name",
        ),
        ("ADD", &[("CNI_IFNAME", "net/1")], "CNI_IFNAME: \"net/1\""),
        ("ADD", &[("CNI_IFNAME", "net 1")], "CNI_IFNAME: \"net 1\""),
        ("ADD", &[("CNI_IFNAME", "..")], "CNI_IFNAME: \"..\""),
        ("DEL", &[("CNI_IFNAME", "net:1")], "CNI_IFNAME: \"net:1\""),
        ("ADD", &[("CNI_NETNS", "<unset>")], "CNI_NETNS: is required"),
        ("CHECK", &[("CNI_NETNS", "")], "CNI_NETNS: is required"),
        (
            "ADD",
            &[("CNI_NETNS", "netns/cni-1")],
            "CNI_NETNS: \"netns/cni-1\" is not an absolute path",
        ),
        (
            "DEL",
            &[("CNI_NETNS", "cni-1")],
            "CNI_NETNS: \"cni-1\" is not an absolute path",
        ),
        (
            "ADD",
            &[("CNI_ARGS", "K8S_POD_NAME")],
            "CNI_ARGS: \"K8S_POD_NAME\" is not a KEY=VALUE pair",
        ),
        (
            "ADD",
            &[("CNI_ARGS", "K8S_POD_NAME=a;K8S_POD_NAME=")],
            "CNI_ARGS: K8S_POD_NAME appears more than once",
        ),
    ];
    for (command, extra, want) in cases {
        let message = env_error(command, extra);
        assert!(
            message.starts_with(want),
            "{command} {extra:?} -> {message}"
        );
    }
}

#[test]
fn pod_args_ignore_other_keys_and_empty_values() {
    let request = parse(
        "ADD",
        &[("CNI_ARGS", "K8S_POD_NAME=;X=a=b;;K8S_POD_NAMESPACE=ns")],
    )
    .unwrap();
    let Action::Add { container, .. } = request.action else {
        panic!()
    };
    assert_eq!(
        container.pod,
        Pod {
            name: None,
            namespace: Some("ns".into())
        }
    );
}

#[test]
fn a_non_utf8_cni_variable_is_an_environment_error() {
    let vars = Vars::from_os_pairs([
        (OsString::from("CNI_COMMAND"), OsString::from("ADD")),
        (OsString::from("CNI_IFNAME"), OsString::from_vec(vec![0x80])),
    ]);
    let err = Request::parse(&vars, CONFIG.as_bytes()).unwrap_err();
    assert_eq!(code::of(&err), code::INVALID_ENVIRONMENT);
    assert!(err.to_string().starts_with("CNI_IFNAME: "), "{err}");
}

#[test]
fn container_ids_and_network_names_are_plain() {
    for good in ["a", "0123abcd", "egress-router", "x_y.z-1"] {
        assert!(is_cni_name(good), "{good}");
    }
    for bad in ["", "-a", "_a", ".a", "a/b", "a b", "é"] {
        assert!(!is_cni_name(bad), "{bad:?}");
    }
}

#[test]
fn interface_names_follow_the_kernel_rules() {
    for good in ["net1", "eth0", "a", "egress.router-0", "fifteen-chars-x"] {
        assert!(is_interface_name(good), "{good}");
    }
    for bad in [
        "",
        ".",
        "..",
        "sixteen-chars-xx",
        "a/b",
        "a:b",
        "a b",
        "a\tb",
    ] {
        assert!(!is_interface_name(bad), "{bad:?}");
    }
}
