//! In a directory of the system's temporary directory (no root needed), each case
//! through `openat2` and through the component-wise walk of older kernels.

use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A fresh directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("egress-beneath-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        Scratch(dir)
    }

    fn at(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Opener = fn(&OwnedFd, &[&OsStr], Mode) -> nix::Result<OwnedFd>;
const OPENERS: [(&str, Opener); 2] = [("openat2", by_openat2), ("walk", by_walk)];

/// Opens `relative` beneath `scratch` with `opener`, as [`append`] does.
fn open_with(opener: Opener, scratch: &Scratch, relative: &str) -> Result<File> {
    let base = open(&scratch.0, DIRECTORY, Mode::empty()).unwrap();
    let names: Vec<&OsStr> = relative.split('/').map(OsStr::new).collect();
    let mode = Mode::from_bits_truncate(0o640);
    regular(opener(&base, &names, mode).map_err(|e| refused(e, &scratch.0))?)
}

fn refusal(opener: Opener, scratch: &Scratch, relative: &str) -> String {
    match open_with(opener, scratch, relative) {
        Ok(_) => panic!("{relative} was opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_file_is_created_then_appended_to_in_an_existing_directory() {
    for (how, opener) in OPENERS {
        let scratch = Scratch::new();
        std::fs::create_dir(scratch.at("cni")).unwrap();
        for line in ["one\n", "two\n"] {
            let mut file = open_with(opener, &scratch, "cni/plugin.log").unwrap();
            file.write_all(line.as_bytes()).unwrap();
        }
        let path = scratch.at("cni/plugin.log");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "one\ntwo\n",
            "{how}"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o137, 0, "{how}: created 0640 or tighter: {mode:o}");
        let error = refusal(opener, &scratch, "missing/plugin.log");
        assert!(error.contains("does not exist"), "{how}: {error}");
    }
}

#[test]
fn no_symbolic_link_is_followed_last_or_on_the_way() {
    for (how, opener) in OPENERS {
        let scratch = Scratch::new();
        std::fs::create_dir(scratch.at("elsewhere")).unwrap();
        std::fs::write(scratch.at("elsewhere/target"), "kept\n").unwrap();
        symlink(scratch.at("elsewhere/target"), scratch.at("link.log")).unwrap();
        symlink(scratch.at("elsewhere"), scratch.at("dir")).unwrap();
        symlink("elsewhere", scratch.at("relative")).unwrap();
        symlink(scratch.at("elsewhere/new"), scratch.at("dangling.log")).unwrap();
        for path in ["link.log", "dir/target", "relative/target", "dangling.log"] {
            let error = refusal(opener, &scratch, path);
            assert!(error.contains("symbolic link"), "{how} {path}: {error}");
        }
        assert_eq!(
            std::fs::read_to_string(scratch.at("elsewhere/target")).unwrap(),
            "kept\n"
        );
        assert!(
            !scratch.at("elsewhere/new").exists(),
            "{how}: nothing created at a dangling link's target"
        );
    }
}

#[test]
fn fifos_and_second_names_are_refused() {
    for (how, opener) in OPENERS {
        let scratch = Scratch::new();
        nix::unistd::mkfifo(&scratch.at("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let error = refusal(opener, &scratch, "fifo");
        assert!(error.contains("FIFO"), "{how}: {error}");
        std::fs::write(scratch.at("precious"), "kept\n").unwrap();
        std::fs::hard_link(scratch.at("precious"), scratch.at("second.log")).unwrap();
        let error = refusal(opener, &scratch, "second.log");
        assert!(error.contains("2 links"), "{how}: {error}");
        std::fs::create_dir(scratch.at("a-directory")).unwrap();
        assert!(open_with(opener, &scratch, "a-directory").is_err(), "{how}");
    }
}

#[test]
fn the_directory_itself_may_not_be_a_link() {
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.at("real")).unwrap();
    symlink(scratch.at("real"), scratch.at("log")).unwrap();
    let mode = Mode::from_bits_truncate(0o640);
    let error = append(&scratch.at("log"), &[OsStr::new("x.log")], mode).unwrap_err();
    assert!(error.to_string().contains("symbolic link"), "{error}");
    assert!(!scratch.at("real/x.log").exists());
    let mut file = append(&scratch.at("real"), &[OsStr::new("x.log")], mode).unwrap();
    file.write_all(b"ok\n").unwrap();
}

#[test]
fn a_mount_point_on_the_way_is_not_crossed() {
    // /proc is a file system of its own beneath /: the same as a bind mount put beneath
    // /var/log by whoever can mount on the node.
    let base = open(Path::new("/"), DIRECTORY, Mode::empty()).unwrap();
    let names = [OsStr::new("proc"), OsStr::new("egress-beneath-test.log")];
    for (how, opener) in OPENERS {
        let got = opener(&base, &names, Mode::from_bits_truncate(0o640));
        assert_eq!(got.err(), Some(Errno::EXDEV), "{how}");
    }
    let error = append(Path::new("/"), &names, Mode::from_bits_truncate(0o640))
        .unwrap_err()
        .to_string();
    assert!(error.contains("crosses a mount point"), "{error}");
}
