//! The CNI plugin's `log_file`, as root (README "CNI plugin", Configuration): the plugin
//! runs as root and whoever may write a NetworkAttachmentDefinition chooses the path,
//! so only a file beneath /var/log is written, reached without following a symbolic
//! link anywhere. Each refused `log_file` fails ADD (and CHECK) with error 7 naming the
//! field and the value, before anything changes, and nothing is written where a link
//! points; DEL still tears down. These tests FAIL (never skip) without root.
//!
//! Each test works in a directory of its own beneath /var/log and one outside it (where
//! links point), both removed on drop.

mod common;

use common::cni::{Attachment, cni_topology};
use common::*;
use serde_json::json;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// `/var/log/<test dir>` and a directory outside /var/log, removed on drop.
struct Dirs {
    log: PathBuf,
    elsewhere: PathBuf,
}

impl Dirs {
    fn new(t: &Topology) -> Dirs {
        let dirs = Dirs {
            log: PathBuf::from(format!("/var/log/egress-router-test-{}", t.prefix)),
            elsewhere: std::env::temp_dir().join(format!("{}-elsewhere", t.prefix)),
        };
        for dir in [&dirs.log, &dirs.elsewhere] {
            std::fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        dirs
    }

    fn log(&self, relative: &str) -> String {
        format!("{}/{relative}", self.log.display())
    }

    fn elsewhere(&self, relative: &str) -> PathBuf {
        self.elsewhere.join(relative)
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        // removes links, never what they point at
        let _ = std::fs::remove_dir_all(&self.log);
        let _ = std::fs::remove_dir_all(&self.elsewhere);
    }
}

/// A configuration for the `router` pod logging every command to `log_file`.
fn config(log_file: &str) -> String {
    json!({
        "cniVersion": "0.4.0",
        "name": "egress",
        "type": "egress-router",
        "ip": {
            "addresses": ["198.51.100.99/24"],
            "gateway": "198.51.100.1",
            "destinations": ["80 TCP 203.0.113.5/30", "203.0.113.7"]
        },
        "log_file": log_file,
        "log_level": "debug"
    })
    .to_string()
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[test]
fn a_log_file_that_may_not_be_written_fails_add_and_check_and_changes_nothing() {
    let _x = xtables_shared();
    let t = cni_topology();
    let dirs = Dirs::new(&t);
    std::fs::write(dirs.elsewhere("target"), "kept\n").unwrap();
    symlink(dirs.elsewhere("target"), dirs.log("link.log")).unwrap();
    symlink(dirs.elsewhere("new"), dirs.log("dangling.log")).unwrap();
    symlink(&dirs.elsewhere, dirs.log("dir")).unwrap();
    nix::unistd::mkfifo(
        Path::new(&dirs.log("fifo")),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let dotdot = format!(
        "{}/../../..{}",
        dirs.log.display(),
        dirs.elsewhere("dotdot.log").display()
    );
    let outside = dirs.elsewhere("outside.log").display().to_string();
    let cases = [
        (dirs.log("link.log"), "symbolic link"),
        (dirs.log("dangling.log"), "symbolic link"),
        (dirs.log("dir/through.log"), "symbolic link"),
        (dotdot, "`..`"),
        (outside, "is not beneath /var/log/"),
        (dirs.log("fifo"), "FIFO"),
        (dirs.log("missing/x.log"), "does not exist"),
    ];
    let (router, node) = (t.snapshot("router"), t.snapshot("node"));
    for (log_file, why) in &cases {
        let pod = Attachment::router(&t, &config(log_file));
        let msg = pod.add().error(7, &["log_file", log_file, why]);
        assert!(!msg.contains('\n'), "one line: {msg}");
        pod.check(None).error(7, &["log_file", log_file]);
    }
    assert_same(&router, &t.snapshot("router"), "pod after the refused ADDs");
    assert_same(&node, &t.snapshot("node"), "node after the refused ADDs");
    assert_eq!(read(&dirs.elsewhere("target")).as_deref(), Some("kept\n"));
    for never in ["new", "through.log", "dotdot.log", "outside.log"] {
        assert!(
            !dirs.elsewhere(never).exists(),
            "{never} was created outside /var/log"
        );
    }

    // DEL tears down whatever log_file says, writing nothing through the link.
    let pod = Attachment::router(&t, &config(&dirs.log("link.log")));
    let reply = pod.del().ok_silent();
    assert!(
        reply.stderr.contains("DEL goes on without the log file")
            && reply.stderr.contains("log_file"),
        "DEL warns that it does not log: {reply}"
    );
    assert_eq!(read(&dirs.elsewhere("target")).as_deref(), Some("kept\n"));
}

#[test]
fn a_log_file_beneath_var_log_gets_every_command() {
    let _x = xtables_shared();
    let t = cni_topology();
    let dirs = Dirs::new(&t);
    std::fs::create_dir(dirs.log("cni")).unwrap();
    let log_file = dirs.log("cni/egress-router.log");
    let pod = Attachment::router(&t, &config(&log_file));
    let result = pod.add().ok().json();
    pod.check(Some(&result)).ok_silent();
    pod.del().ok_silent();
    let logged = read(Path::new(&log_file)).unwrap_or_default();
    for command in ["ADD", "CHECK", "DEL"] {
        let line = format!(
            "INFO egress-router {command} container={}: ok",
            pod.container
        );
        assert!(
            logged.contains(&line),
            "{log_file} must hold {line:?}:\n{logged}"
        );
    }
    let mode = std::fs::metadata(&log_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o137, 0, "created 0640 or tighter: {mode:o}");
}
