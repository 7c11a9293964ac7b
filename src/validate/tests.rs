use super::*;

fn check(pairs: &[(&str, &str)]) -> Validation {
    validate(&Vars::from_pairs(pairs.iter().copied()))
}

fn shown(v: &Validation) -> Vec<String> {
    v.problems.iter().map(ToString::to_string).collect()
}

/// Every `needle` is in exactly one problem line, and there are no others.
fn assert_problems(v: &Validation, needles: &[&str]) {
    let lines = shown(v);
    for needle in needles {
        let hits = lines.iter().filter(|l| l.contains(needle)).count();
        assert_eq!(hits, 1, "{needle:?} in {lines:#?}");
    }
    assert_eq!(lines.len(), needles.len(), "{lines:#?}");
}

#[test]
fn a_valid_environment_has_no_problem() {
    let v = check(&[
        ("EGRESS_SOURCE", "198.51.100.99/24"),
        ("EGRESS_GATEWAY", "198.51.100.1"),
        (
            "EGRESS_DESTINATION",
            "80 tcp 203.0.113.5\n# fallback\n203.0.113.7",
        ),
        ("EGRESS_ROUTER_MODE", "init"),
    ]);
    assert_eq!(v.role, Some(Role::Router));
    assert_eq!(v.problems, []);
    let v = check(&[(
        "EGRESS_HTTP_PROXY_DESTINATION",
        "203.0.113.5\n*.example.com",
    )]);
    assert_eq!((v.role, v.problems.len()), (Some(Role::HttpProxy), 0));
}

#[test]
fn every_router_problem_at_once_with_line_numbers() {
    let v = check(&[
        ("EGRESS_SOURCE", "198.51.100.0/24"),
        ("EGRESS_GATEWAY", "gateway"),
        (
            "EGRESS_DESTINATION",
            "80 tcp 203.0.113.5\n80 tcp 0.0.0.0\n\n70000 tcp 203.0.113.6\n203.0.113.7",
        ),
        ("EGRESS_ROUTER_IPTABLES_BACKEND", "iptables"),
        ("EGRESS_LOG_FORMAT", "xml"),
    ]);
    assert_problems(
        &v,
        &[
            "EGRESS_SOURCE: \"198.51.100.0/24\"",
            "EGRESS_GATEWAY: \"gateway\"",
            "EGRESS_DESTINATION line 2: ",
            "EGRESS_DESTINATION line 4: ",
            "EGRESS_ROUTER_IPTABLES_BACKEND: \"iptables\"",
            "EGRESS_LOG_FORMAT: \"xml\"",
        ],
    );
}

#[test]
fn a_list_problem_only_the_whole_list_shows_comes_once() {
    let v = check(&[
        (
            "EGRESS_HTTP_PROXY_DESTINATION",
            "*\n203.0.113.5\n10.0.0.0/33",
        ),
        ("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", "soon"),
        ("EGRESS_HTTP_PROXY_MODE", "audit"),
        ("EGRESS_METRICS_ADDRESS", "9090"),
    ]);
    assert_problems(
        &v,
        &[
            "EGRESS_HTTP_PROXY_DESTINATION line 3: line \"10.0.0.0/33\"",
            "EGRESS_HTTP_PROXY_IDLE_TIMEOUT: \"soon\"",
            "EGRESS_HTTP_PROXY_MODE: \"audit\"",
            "EGRESS_METRICS_ADDRESS: \"9090\"",
        ],
    );
    let v = check(&[("EGRESS_HTTP_PROXY_DESTINATION", "*\n203.0.113.5")]);
    assert_problems(
        &v,
        &["EGRESS_HTTP_PROXY_DESTINATION: line \"203.0.113.5\" comes after `*`"],
    );
    let v = check(&[
        (
            "EGRESS_DNS_PROXY_DESTINATION",
            "53 203.0.113.53\n53 203.0.113.54\nx y z w",
        ),
        ("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "maybe"),
    ]);
    assert_problems(
        &v,
        &[
            "EGRESS_DNS_PROXY_DESTINATION line 3: ",
            "EGRESS_DNS_PROXY_ALLOW_UNRESOLVED: \"maybe\"",
        ],
    );
    let v = check(&[
        ("EGRESS_SOURCE", "198.51.100.99"),
        ("EGRESS_GATEWAY", "198.51.100.1"),
        ("EGRESS_DESTINATION", "80 tcp db.example.com\n81 tcp db"),
        ("EGRESS_ROUTER_ALLOW_UNRESOLVED", "maybe"),
    ]);
    assert_problems(
        &v,
        &[
            "EGRESS_DESTINATION line 2: line \"81 tcp db\": \"db\" is not an IPv4 or IPv6 address, nor a host name",
            "EGRESS_ROUTER_ALLOW_UNRESOLVED: \"maybe\" is not true or false",
        ],
    );
    let v = check(&[(
        "EGRESS_DNS_PROXY_DESTINATION",
        "53 203.0.113.53\n53 203.0.113.54",
    )]);
    assert_problems(
        &v,
        &["EGRESS_DNS_PROXY_DESTINATION: line \"53 203.0.113.54\": port 53 appears more than once"],
    );
}

#[test]
fn no_role_and_the_cni_role_are_problems() {
    let v = check(&[("EGRESS_LOG_FORMAT", "json")]);
    assert_eq!(v.role, None);
    assert_problems(&v, &["no role selected"]);
    let v = check(&[("CNI_COMMAND", "ADD")]);
    assert_eq!(v.role, Some(Role::Cni));
    assert_problems(&v, &["CNI_COMMAND: selects the CNI plugin"]);
}

#[test]
fn missing_required_variables_are_named() {
    let v = check(&[("EGRESS_ROUTER_MODE", "init")]);
    assert_problems(
        &v,
        &[
            "EGRESS_SOURCE: is required",
            "EGRESS_GATEWAY: is required",
            "EGRESS_DESTINATION: is required",
        ],
    );
}

#[test]
fn a_list_file_is_checked_line_by_line_under_its_variable() {
    let dir = std::env::temp_dir().join(format!("egress-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules");
    std::fs::write(&file, "*.example.com\n10.0.0.0/33\n").unwrap();
    let path = file.to_str().unwrap();
    let v = check(&[("EGRESS_HTTP_PROXY_DESTINATION_FILE", path)]);
    assert_eq!(v.role, Some(Role::HttpProxy));
    assert_problems(
        &v,
        &["EGRESS_HTTP_PROXY_DESTINATION_FILE line 2: line \"10.0.0.0/33\""],
    );
    let v = check(&[
        ("EGRESS_HTTP_PROXY_DESTINATION_FILE", path),
        ("EGRESS_HTTP_PROXY_DESTINATION", "*"),
    ]);
    assert_problems(
        &v,
        &["EGRESS_HTTP_PROXY_DESTINATION_FILE: is set together with"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let v = check(&[
        ("EGRESS_DNS_PROXY_DESTINATION_FILE", path),
        ("EGRESS_DNS_PROXY_IDLE_TIMEOUT", "soon"),
    ]);
    assert_problems(
        &v,
        &[
            "EGRESS_DNS_PROXY_DESTINATION_FILE: ",
            "EGRESS_DNS_PROXY_IDLE_TIMEOUT: \"soon\"",
        ],
    );
}
