//! The shell scripts a newcomer runs first, checked without root: the quiet package
//! install of `tests/apt.sh` (used by `examples/demo.sh` and `tests/run.sh`) prints one
//! line while apt prints dozens, and shows apt's last lines only when it fails. A fake
//! `apt-get` on `PATH` stands in for apt, so nothing is installed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const APT_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/apt.sh");

/// Runs `apt_install iproute2 socat` with a fake `apt-get` that prints `noise` lines
/// and exits `code`: (exit code, stdout, stderr).
fn install_with_fake_apt(noise: usize, code: i32) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(format!("egress-router-apt-{}-{code}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("apt-get");
    let mut script = String::from("#!/bin/sh\n");
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
        .args([
            "-c",
            &format!("source {APT_SH}; apt_install iproute2 socat"),
        ])
        .env_clear()
        .env("PATH", path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_successful_install_prints_one_line() {
    let (code, stdout, stderr) = install_with_fake_apt(40, 0);
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
    let (code, stdout, stderr) = install_with_fake_apt(40, 100);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
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
