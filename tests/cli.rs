//! Command line behaviour that needs no root and no namespaces: `unit-test` mode only
//! prints rules, bad input (router, HTTP and DNS proxies), usage and `--help`.

mod common;

use common::{ChildGuard, PATH, PLANNED_RULES, assert_error_exit, bin};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run egress-router")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn unit_test_env(dest: &str) -> Vec<(&str, &str)> {
    vec![
        ("EGRESS_SOURCE", "198.51.100.99"),
        ("EGRESS_GATEWAY", "198.51.100.1"),
        ("EGRESS_DESTINATION", dest),
        ("EGRESS_ROUTER_MODE", "unit-test"),
    ]
}

/// stdout must be exactly these lines (a final newline is allowed, nothing else).
fn assert_stdout_lines(out: &Output, want: &[&str]) {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "exit {:?}\nstderr:\n{stderr}",
        out.status
    );
    let body = stdout.strip_suffix('\n').unwrap_or(&stdout);
    assert_eq!(
        body,
        want.join("\n"),
        "unit-test stdout must be exactly the NAT rules\nstderr:\n{stderr}"
    );
}

#[test]
fn unit_test_prints_exactly_the_nat_rules() {
    let out = run(
        &[],
        &unit_test_env("80 tcp 203.0.113.5\n8080 tcp 203.0.113.6 80\n203.0.113.7"),
    );
    assert_stdout_lines(
        &out,
        &[
            "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5",
            "-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 203.0.113.6:80",
            "-A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7",
            "-A POSTROUTING -j SNAT --to-source 198.51.100.99",
        ],
    );
}

#[test]
fn unit_test_skips_comments_blank_lines_and_handles_udp() {
    let out = run(&[], &unit_test_env(common::DESTINATION));
    assert_stdout_lines(&out, &PLANNED_RULES);
}

#[test]
fn unit_test_source_prefix_is_not_in_snat() {
    let mut env = unit_test_env("203.0.113.7");
    env[0] = ("EGRESS_SOURCE", "198.51.100.99/24");
    let out = run(&[], &env);
    assert_stdout_lines(
        &out,
        &[
            "-A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7",
            "-A POSTROUTING -j SNAT --to-source 198.51.100.99",
        ],
    );
}

#[test]
fn unit_test_prints_the_metrics_ports_exemption_only_when_the_address_is_set() {
    let mut env = unit_test_env("80 tcp 203.0.113.5\n203.0.113.7");
    env.push(("EGRESS_METRICS_ADDRESS", ":9090"));
    assert_stdout_lines(
        &run(&[], &env),
        &[
            "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5",
            "-A PREROUTING -i eth0 -p tcp --dport 9090 -j RETURN",
            "-A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7",
            "-A POSTROUTING -j SNAT --to-source 198.51.100.99",
        ],
    );
    env.pop();
    env.push(("EGRESS_METRICS_ADDRESS", "127.0.0.1:9090"));
    assert_stdout_lines(
        &run(&[], &env),
        &[
            "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5",
            "-A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7",
            "-A POSTROUTING -j SNAT --to-source 198.51.100.99",
        ],
    );
}

#[test]
fn unit_test_prints_the_ipv4_rules_unchanged_then_the_ipv6_ones() {
    let list = "80 tcp 203.0.113.5\n80 tcp 2001:db8:2::5\n8080 tcp 2001:db8:2::6 80\n203.0.113.7\n2001:db8:2::7";
    let mut env = unit_test_env(list);
    env[0] = ("EGRESS_SOURCE", "198.51.100.99,2001:db8:1::99/64");
    env[1] = ("EGRESS_GATEWAY", "198.51.100.1,fe80::1");
    assert_stdout_lines(
        &run(&[], &env),
        &[
            "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5",
            "-A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7",
            "-A POSTROUTING -j SNAT --to-source 198.51.100.99",
            "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 2001:db8:2::5",
            "-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination [2001:db8:2::6]:80",
            "-A PREROUTING -i eth0 -j DNAT --to-destination 2001:db8:2::7",
            "-A POSTROUTING -j SNAT --to-source 2001:db8:1::99",
        ],
    );
    // IPv6 alone: an IPv6-only router prints its lines only
    env[0] = ("EGRESS_SOURCE", "2001:db8:1::99/64");
    env[1] = ("EGRESS_GATEWAY", "2001:db8:1::1");
    env[2] = ("EGRESS_DESTINATION", "2001:db8:2::7");
    assert_stdout_lines(
        &run(&[], &env),
        &[
            "-A PREROUTING -i eth0 -j DNAT --to-destination 2001:db8:2::7",
            "-A POSTROUTING -j SNAT --to-source 2001:db8:1::99",
        ],
    );
}

#[test]
fn unit_test_describes_name_lines_and_resolves_nothing() {
    // No resolv.conf is read and no name is looked up: a name that exists nowhere
    // prints the same, at once.
    let list = "80 tcp 203.0.113.5\n8080 tcp api.nowhere.invalid 443\ndb.nowhere.invalid";
    let mut env = unit_test_env(list);
    env[0] = ("EGRESS_SOURCE", "198.51.100.99,2001:db8:1::99/64");
    env[1] = ("EGRESS_GATEWAY", "198.51.100.1,fe80::1");
    let started = std::time::Instant::now();
    assert_stdout_lines(
        &run(&[], &env),
        &[
            "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5",
            "-A PREROUTING -i eth0 -p tcp --dport 8080 -j EGRESS-ROUTER-N-2",
            "-A PREROUTING -i eth0 -j EGRESS-ROUTER-N-3",
            "-A POSTROUTING -j SNAT --to-source 198.51.100.99",
            "# EGRESS-ROUTER-N-2: DNAT to every IPv4 address of api.nowhere.invalid, port 443, spread over them (resolved by init, kept current by the redirect container)",
            "# EGRESS-ROUTER-N-3: DNAT to every IPv4 address of db.nowhere.invalid, spread over them (resolved by init, kept current by the redirect container)",
            "-A PREROUTING -i eth0 -p tcp --dport 8080 -j EGRESS-ROUTER-N-2",
            "-A PREROUTING -i eth0 -j EGRESS-ROUTER-N-3",
            "-A POSTROUTING -j SNAT --to-source 2001:db8:1::99",
            "# EGRESS-ROUTER-N-2: DNAT to every IPv6 address of api.nowhere.invalid, port 443, spread over them (resolved by init, kept current by the redirect container)",
            "# EGRESS-ROUTER-N-3: DNAT to every IPv6 address of db.nowhere.invalid, spread over them (resolved by init, kept current by the redirect container)",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    for (value, ok) in [
        ("true", true),
        ("false", true),
        ("yes", false),
        ("1", false),
    ] {
        let mut env = unit_test_env("80 tcp db.example.com");
        env.push(("EGRESS_ROUTER_ALLOW_UNRESOLVED", value));
        let out = run(&[], &env);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.success(), ok, "{value}: {stderr}");
        if !ok {
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains(&format!(
                    "EGRESS_ROUTER_ALLOW_UNRESOLVED: {value:?} is not true or false"
                )),
                "{stderr}"
            );
        }
    }
}

#[test]
fn an_ipv6_destination_without_an_ipv6_source_is_refused() {
    for (dest, quoted) in [
        (
            "80 tcp 2001:db8:2::5",
            "an IPv6 destination, but EGRESS_SOURCE has no IPv6 address",
        ),
        ("[2001:db8:2::5]:80", "without brackets"),
    ] {
        let out = run(&[], &unit_test_env(dest));
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains("EGRESS_DESTINATION") && stderr.contains(quoted),
            "{stderr}"
        );
    }
}

#[test]
fn unit_test_bad_destination_names_the_variable() {
    let out = run(&[], &unit_test_env("80 sctp 203.0.113.5\n203.0.113.7"));
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "bad destination accepted:\n{stdout}");
    assert!(
        stderr.lines().any(|l| l.trim_start().starts_with("error:")
            && l.contains("EGRESS_DESTINATION")
            && l.contains("80 sctp 203.0.113.5")),
        "no `error:` line naming EGRESS_DESTINATION and quoting the line:\n{stderr}"
    );
    assert!(
        !stdout.contains("-A "),
        "no rules may be printed for bad input:\n{stdout}"
    );
}

#[test]
fn unit_test_rejects_disguised_ports_and_special_addresses() {
    for (dest, quoted) in [
        ("+80 tcp 203.0.113.5", "+80 tcp 203.0.113.5"),
        ("080 tcp 203.0.113.5", "080 tcp 203.0.113.5"),
        ("80 tcp 0.1.2.3", "80 tcp 0.1.2.3"),
        ("240.0.0.9", "240.0.0.9"),
    ] {
        let out = run(&[], &unit_test_env(dest));
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{dest:?} accepted:\n{stdout}");
        assert_error_exit(
            out.status.into(),
            &stderr,
            2,
            &["EGRESS_DESTINATION", quoted],
            dest,
        );
        assert!(
            stdout.is_empty(),
            "{dest:?}: nothing may be printed:\n{stdout}"
        );
    }
    for source in ["198.51.100.0/24", "198.51.100.255/24", "0.1.2.3"] {
        let mut env = unit_test_env("203.0.113.7");
        env[0] = ("EGRESS_SOURCE", source);
        let out = run(&[], &env);
        let (_, stderr) = text(&out);
        assert_error_exit(
            out.status.into(),
            &stderr,
            2,
            &["EGRESS_SOURCE", source],
            source,
        );
    }
}

/// A variable of ours that is not UTF-8 is an error naming it: never "not set", so it
/// cannot switch the role (here EGRESS_SOURCE would otherwise be skipped and the HTTP
/// proxy started).
#[test]
fn a_non_utf8_variable_is_an_error_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", PATH)
        .env(
            "EGRESS_SOURCE",
            std::ffi::OsStr::from_bytes(b"198.51.100.\xff"),
        )
        .env("EGRESS_HTTP_PROXY_DESTINATION", "*")
        .env("EGRESS_HTTP_PROXY_PORT", "18081");
    let mut child = ChildGuard::spawn(cmd);
    let status = child.wait_timeout(Duration::from_secs(5));
    child.stop();
    assert_error_exit(
        status,
        &child.stderr(),
        2,
        &["EGRESS_SOURCE", "not valid UTF-8"],
        "non-UTF-8 EGRESS_SOURCE",
    );
}

#[test]
fn no_environment_prints_usage_and_fails() {
    let out = run(&[], &[]);
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "no env must fail\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        format!("{stdout}{stderr}").to_lowercase().contains("usage"),
        "no usage shown\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[test]
fn help_mentions_every_role() {
    let out = run(&["--help"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "--help failed: {stderr}");
    let help = stdout.to_lowercase();
    for role in [
        "init",
        "legacy",
        "redirect",
        "http-proxy",
        "dns-proxy",
        "cni",
        "reload",
        "egress_metrics_address",
        "egress_http_proxy_destination_file",
        "egress_ha_vrid",
        "egress_ha_priority",
        "egress_ha_advert_interval",
        "egress_ha_preempt",
        "egress_ha_peers",
        "sidecar",
    ] {
        assert!(
            help.contains(role),
            "--help does not mention {role}:\n{stdout}"
        );
    }
}

#[test]
fn reload_names_the_process_it_cannot_signal() {
    // PID 2^22 + 1 is above the kernel's highest (pid_max): no such process.
    let out = run(&["reload", "--pid", "4194305"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: sending SIGHUP to process 4194305"),
        "{stderr}"
    );
    // 0 would signal this process's group, -1 every process it may signal.
    for pid in ["0", "-1"] {
        let out = run(&["reload", &format!("--pid={pid}")], &[]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "--pid={pid}: {stderr}");
        assert!(stderr.contains("--pid"), "{stderr}");
    }
}

/// Run the binary for at most 5 s (a proxy that wrongly accepts its input would serve
/// forever); returns the exit status (None if it was still running) and stderr.
fn run_bounded(args: &[&str], env: &[(&str, &str)]) -> (Option<ExitStatus>, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_clear().env("PATH", PATH);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = ChildGuard::spawn(cmd);
    let status = child.wait_timeout(Duration::from_secs(5));
    child.stop();
    (status, child.stderr())
}

/// Exit 2 and an `error:` line that names `var` and contains every one of `quoted`.
fn assert_startup_error(args: &[&str], env: &[(&str, &str)], var: &str, quoted: &[&str]) {
    let (status, stderr) = run_bounded(args, env);
    let mut needles = vec![var];
    needles.extend(quoted);
    assert_error_exit(status, &stderr, 2, &needles, &format!("{env:?}"));
}

/// Each (variable, bad value) next to a valid `list` in `list_var` is a startup error
/// that names the variable and quotes the value.
fn assert_bad_settings(list_var: &str, list: &str, cases: &[(&str, &str)]) {
    for (var, value) in cases {
        assert_startup_error(&[], &[(list_var, list), (var, value)], var, &[value]);
    }
}

/// An empty list in `var` (role from `subcommand`) and each of `lists` are startup
/// errors; `quote(bad)` must be in the error line.
fn assert_bad_lists(
    subcommand: &str,
    var: &str,
    lists: &[(&str, &str)],
    quote: impl Fn(&str) -> String,
) {
    // empty: the subcommand selects the role, a blank value would not
    assert_startup_error(&[subcommand], &[(var, "")], var, &[]);
    assert_startup_error(&[subcommand], &[(var, "# nothing\n\n")], var, &[]);
    for (list, bad) in lists {
        assert_startup_error(&[], &[(var, list)], var, &[&quote(bad)]);
    }
}

#[test]
fn http_proxy_bad_rule_lists_are_startup_errors() {
    assert_bad_lists(
        "http-proxy",
        "EGRESS_HTTP_PROXY_DESTINATION",
        &[
            ("*\n203.0.113.5", "*"),
            ("203.0.113.5\n203.0.113.0/33", "203.0.113.0/33"),
            ("web.example.com\n!", "!"),
            ("*.", "*."),
            ("203.0.113.5\nfoo bar\n*", "foo bar"),
            ("2001:db8::/129", "2001:db8::/129"),
            ("2130706433", "2130706433"),
            ("0x7f.0.0.1", "0x7f.0.0.1"),
            ("!127.1\n*", "!127.1"),
        ],
        str::to_string,
    );
}

#[test]
fn http_proxy_bad_settings_are_startup_errors() {
    assert_bad_settings(
        "EGRESS_HTTP_PROXY_DESTINATION",
        "*",
        &[
            ("EGRESS_HTTP_PROXY_CONNECT_TIMEOUT", "soon"),
            ("EGRESS_HTTP_PROXY_HEADER_TIMEOUT", "-1s"),
            ("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", "5 parsecs"),
            ("EGRESS_HTTP_PROXY_GRACE_PERIOD", "forever"),
            ("EGRESS_HTTP_PROXY_MAX_CONNECTIONS", "lots"),
            ("EGRESS_HTTP_PROXY_MAX_HEADER_BYTES", "big"),
            ("EGRESS_HTTP_PROXY_PORT", "70000"),
            ("EGRESS_HTTP_PROXY_PORT", "+8080"),
            ("EGRESS_HTTP_PROXY_PORT", "08080"),
            ("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", "10000000000000000000"),
            ("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", "25h"),
            ("EGRESS_HTTP_PROXY_CONNECT_TIMEOUT", "10ms"),
            ("EGRESS_HTTP_PROXY_GRACE_PERIOD", "2h"),
            ("EGRESS_HTTP_PROXY_MODE", "audit"),
            ("EGRESS_HTTP_PROXY_TLS_SNI", "report"),
            // more than the open-file limit allows (1,000,000 x 6 descriptors)
            ("EGRESS_HTTP_PROXY_MAX_CONNECTIONS", "1000000"),
        ],
    );
}

#[test]
fn dns_proxy_bad_lists_are_startup_errors() {
    // every other line is valid, so the error must quote the bad one; a bad line that
    // were accepted by mistake could not make the binary resolve a name (no DNS traffic)
    assert_bad_lists(
        "dns-proxy",
        "EGRESS_DNS_PROXY_DESTINATION",
        &[
            ("80", "80"),
            ("80 203.0.113.5 81 82", "80 203.0.113.5 81 82"),
            ("80 203.0.113.5\n0 203.0.113.6", "0 203.0.113.6"),
            ("65536 203.0.113.5", "65536 203.0.113.5"),
            ("http 203.0.113.5", "http 203.0.113.5"),
            ("80 203.0.113.5 0", "80 203.0.113.5 0"),
            ("80 203.0.113.5 65536", "80 203.0.113.5 65536"),
            ("80 0.0.0.0", "80 0.0.0.0"),
            ("80 224.0.0.1", "80 224.0.0.1"),
            ("# no dot\n80 localhost", "80 localhost"),
            ("80 [2001:db8::1]", "80 [2001:db8::1]"),
            ("80 ::1", "80 ::1"),
            ("80 203.0.113.5\n80 203.0.113.6", "80 203.0.113.6"),
            ("+80 203.0.113.5", "+80 203.0.113.5"),
            ("080 203.0.113.5", "080 203.0.113.5"),
            ("80 0.1.2.3", "80 0.1.2.3"),
            ("80 240.0.0.1", "80 240.0.0.1"),
            ("80 2130706433", "80 2130706433"),
        ],
        |bad| format!("line {bad:?}"),
    );
}

#[test]
fn dns_proxy_bad_settings_are_startup_errors() {
    assert_bad_settings(
        "EGRESS_DNS_PROXY_DESTINATION",
        "18080 203.0.113.5",
        &[
            ("EGRESS_DNS_PROXY_CONNECT_TIMEOUT", "soon"),
            ("EGRESS_DNS_PROXY_CONNECT_TIMEOUT", "-1s"),
            ("EGRESS_DNS_PROXY_IDLE_TIMEOUT", "5 parsecs"),
            ("EGRESS_DNS_PROXY_IDLE_TIMEOUT", "25h"),
            ("EGRESS_DNS_PROXY_IDLE_TIMEOUT", "10000000000000000000"),
            ("EGRESS_DNS_PROXY_MAX_CONNECTIONS", "1000000"),
            ("EGRESS_DNS_PROXY_GRACE_PERIOD", "forever"),
            ("EGRESS_DNS_PROXY_MAX_CONNECTIONS", "lots"),
            ("EGRESS_DNS_PROXY_MAX_CONNECTIONS", "0"),
            ("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "maybe"),
            ("EGRESS_DNS_PROXY_ANSWER_ADDRESS", "192.0.2.300"),
            ("EGRESS_DNS_PROXY_ANSWER_ADDRESS", "2001:db8::1"),
            ("EGRESS_DNS_PROXY_ANSWER_PORT", "70000"),
        ],
    );
}

#[test]
fn bad_log_settings_are_startup_errors_in_every_role() {
    let roles: [&[(&str, &str)]; 3] = [
        &[("EGRESS_HTTP_PROXY_DESTINATION", "*")],
        &[("EGRESS_DNS_PROXY_DESTINATION", "53 203.0.113.53")],
        &unit_test_env("203.0.113.7"),
    ];
    for role in roles {
        for (var, value) in [
            ("EGRESS_LOG_FORMAT", "yaml"),
            ("RUST_LOG", "egress_router=loud"),
        ] {
            let mut env = role.to_vec();
            env.push((var, value));
            assert_startup_error(&[], &env, var, &[value]);
        }
    }
}

#[test]
fn validate_reports_every_problem_at_once_and_changes_nothing() {
    // from the environment: exit 1, a line per problem with the list's line number
    let out = run(
        &["validate"],
        &[
            (
                "EGRESS_HTTP_PROXY_DESTINATION",
                "203.0.113.5\n\n10.0.0.0/33\n*",
            ),
            ("EGRESS_HTTP_PROXY_PORT", "0"),
            ("EGRESS_LOG_FORMAT", "yaml"),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for needle in [
        "EGRESS_HTTP_PROXY_DESTINATION line 3: line \"10.0.0.0/33\"",
        "EGRESS_HTTP_PROXY_PORT: \"0\"",
        "EGRESS_LOG_FORMAT: \"yaml\"",
        "invalid: HTTP proxy configuration, 3 problems",
    ] {
        assert!(stdout.contains(needle), "{needle:?} in:\n{stdout}");
    }
    // nothing starts: no listening line, no error line
    assert!(stderr.is_empty(), "{stderr}");

    // from an env file (quoted multi-line list): valid, exit 0
    let dir = std::env::temp_dir().join(format!("egress-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("router.env");
    std::fs::write(
        &file,
        "# the init container\nEGRESS_SOURCE=198.51.100.99/24\nexport EGRESS_GATEWAY=198.51.100.1\n\
         EGRESS_DESTINATION=\"80 tcp 203.0.113.5\\n203.0.113.7\"\nEGRESS_ROUTER_MODE=init\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = run(&["validate", "--env-file", path], &[("RUST_LOG", "=bad=")]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "valid: router configuration", "{stderr}");

    // the init container of the HTTP proxy: its mode comes from its args
    std::fs::write(
        &file,
        "EGRESS_SOURCE=198.51.100.99/24\nEGRESS_GATEWAY=198.51.100.1\n",
    )
    .unwrap();
    let out = run(
        &["validate", "--env-file", path, "--mode", "http-proxy"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let out = run(&["validate", "--env-file", path], &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "legacy needs a list: {stdout}");
    assert!(
        stdout.contains("EGRESS_DESTINATION: is required"),
        "{stdout}"
    );

    // a broken env file names its line
    std::fs::write(
        &file,
        "EGRESS_SOURCE=198.51.100.99\nEGRESS_GATEWAY=\"open\n",
    )
    .unwrap();
    let out = run(&["validate", "--env-file", path], &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("{path}:2: EGRESS_GATEWAY: no closing")),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unit_test_prints_the_vrrp_exemption_only_with_high_availability() {
    let mut env = unit_test_env("203.0.113.7");
    env.push(("EGRESS_HA_VRID", "51"));
    assert_stdout_lines(
        &run(&[], &env),
        &[
            "-A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7",
            "-A POSTROUTING -p 112 -j RETURN",
            "-A POSTROUTING -j SNAT --to-source 198.51.100.99",
        ],
    );
    env.pop();
    env.push(("EGRESS_HA_PRIORITY", "120"));
    let out = run(&[], &env);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: EGRESS_HA_PRIORITY: is set but EGRESS_HA_VRID is not"),
        "{stderr}"
    );
}

#[test]
fn ha_without_its_sidecar_variables_is_an_error_naming_them() {
    let out = run(
        &["ha"],
        &[
            ("EGRESS_SOURCE", "198.51.100.99"),
            ("EGRESS_GATEWAY", "198.51.100.1"),
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: EGRESS_HA_VRID: is required by `egress-router ha`"),
        "{stderr}"
    );
    let out = run(
        &["http-proxy"],
        &[
            ("EGRESS_HTTP_PROXY_DESTINATION", "*"),
            ("EGRESS_HA_VRID", "51"),
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: EGRESS_SOURCE: is required with EGRESS_HA_VRID in a proxy"),
        "{stderr}"
    );
}
