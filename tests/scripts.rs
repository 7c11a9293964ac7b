//! The shell scripts a newcomer runs first, checked without root: the quiet package
//! install of `tests/apt.sh` (used by `examples/demo.sh` and `tests/run.sh`) prints one
//! line while apt prints dozens, and shows apt's last lines only when it fails; no
//! service is started while it installs (a policy-rc.d refusing starts is in place for
//! the install only, or the machine's own left alone). A fake `apt-get` on `PATH` stands
//! in for apt, so nothing is installed, and the policy file is put in the test's
//! directory (`APT_POLICY_RC_D`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const APT_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/apt.sh");

/// What a fake install saw and left: (exit code, stdout, stderr, the policy's answer
/// while apt-get install ran, whether the policy file is there after).
struct Installed {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    policy_said: String,
    policy_left: bool,
}

/// Runs `apt_install ARGS` with a fake `apt-get` that prints `noise` lines, records
/// what the policy-rc.d answers to a start while it installs, and exits `code`; with
/// `own_policy`, a policy file is there before (the machine's own).
fn install_with_fake_apt(noise: usize, code: i32, args: &str, own_policy: bool) -> Installed {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("egress-router-apt-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy-rc.d");
    if own_policy {
        std::fs::write(&policy, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let said = dir.join("policy-said");
    let fake = dir.join("apt-get");
    let mut script = format!(
        "#!/bin/sh\nif [ \"$1\" = install ]; then \"$APT_POLICY_RC_D\" prometheus start; echo $? >{}; fi\n",
        said.display()
    );
    for i in 0..noise {
        script.push_str(&format!(
            "echo 'Selecting previously unselected package pkg{i}.'\n"
        ));
    }
    script.push_str(&format!("echo 'E: last words of apt'\nexit {code}\n"));
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.display());
    let out = Command::new("bash")
        .args(["-c", &format!("source {APT_SH}; apt_install {args}")])
        .env_clear()
        .env("PATH", path)
        .env("APT_POLICY_RC_D", &policy)
        .output()
        .unwrap();
    let installed = Installed {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        policy_said: std::fs::read_to_string(&said).unwrap_or_default(),
        policy_left: policy.exists(),
    };
    std::fs::remove_dir_all(&dir).unwrap();
    installed
}

#[test]
fn a_successful_install_prints_one_line() {
    let Installed {
        code,
        stdout,
        stderr,
        ..
    } = install_with_fake_apt(40, 0, "iproute2 socat", false);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("installing iproute2 socat (apt-get, log: "),
        "{stdout}"
    );
    assert!(stderr.is_empty(), "{stderr}");
    let log = stdout
        .trim()
        .rsplit("log: ")
        .next()
        .unwrap()
        .trim_end_matches(')');
    assert!(
        !Path::new(log).exists(),
        "the log of a successful install is removed"
    );
}

#[test]
fn a_failed_install_shows_apts_last_lines_and_fails() {
    let Installed {
        code,
        stdout,
        stderr,
        policy_left,
        ..
    } = install_with_fake_apt(40, 100, "iproute2 socat", false);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(!policy_left, "the policy goes after a failed install too");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stderr.contains("E: last words of apt"), "{stderr}");
    assert!(
        stderr.contains("installing iproute2 socat failed: see "),
        "{stderr}"
    );
    assert!(
        stderr.lines().count() <= 21,
        "at most apt's last 20 lines: {stderr}"
    );
    let log = stderr.trim().rsplit("see ").next().unwrap();
    std::fs::remove_file(log).expect("the log of a failed install is kept");
}

#[test]
fn no_service_starts_while_installing_and_the_policy_goes_after() {
    let installed = install_with_fake_apt(3, 0, "--no-install-recommends prometheus", false);
    assert_eq!(installed.code, Some(0), "{}", installed.stderr);
    assert_eq!(
        installed.policy_said.trim(),
        "101",
        "a start asked for during the install is refused"
    );
    assert!(
        !installed.policy_left,
        "the policy made for the install is removed"
    );
    assert!(
        installed
            .stdout
            .starts_with("installing prometheus (apt-get, log: "),
        "options are not named as packages: {}",
        installed.stdout
    );
}

#[test]
fn the_machines_own_policy_is_left_alone() {
    let installed = install_with_fake_apt(3, 0, "prometheus", true);
    assert_eq!(installed.code, Some(0), "{}", installed.stderr);
    assert_eq!(
        installed.policy_said.trim(),
        "0",
        "the machine's policy answered"
    );
    assert!(installed.policy_left, "the machine's policy stays");
}
