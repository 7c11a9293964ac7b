//! A handle on a network namespace, and running a synchronous call inside it.
//!
//! Every socket, file under `/proc/sys/net` and child process is bound to the network
//! namespace of the thread that creates it. [`Netns::run`] moves the calling thread into
//! the namespace for one synchronous call (creating a netlink or packet socket, opening
//! a sysctl, spawning an iptables tool) and back, so what it creates stays bound to the
//! namespace while the thread returns home. The runtime is single-threaded and `run`
//! never awaits, so no other task ever runs in a borrowed namespace.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

use crate::error::{Error, Result};

const CURRENT: &str = "/proc/thread-self/ns/net";

/// An open network namespace.
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
    /// The caller's own namespace: [`Netns::run`] needs no `setns` (and so no
    /// CAP_SYS_ADMIN, which the redirect container does not have).
    own: bool,
}

impl Netns {
    /// The namespace the calling thread is in.
    pub fn current() -> Result<Netns> {
        let mut netns = Netns::open(Path::new(CURRENT))?;
        netns.own = true;
        Ok(netns)
    }

    /// The namespace at `path` (e.g. `/var/run/netns/NAME`, `/proc/PID/ns/net`). A
    /// path that is not a namespace (the plain file a runtime's mount point turns into
    /// once unmounted) is an [`Error::State`] naming it.
    pub fn open(path: &Path) -> Result<Netns> {
        let file = File::open(path)
            .map_err(|e| Error::io(format!("opening network namespace {}", path.display()), e))?;
        if !is_namespace(&file, path)? {
            return Err(Error::State(format!(
                "{} is not a network namespace (no namespace is mounted there)",
                path.display()
            )));
        }
        Ok(Netns {
            file,
            path: path.to_path_buf(),
            own: false,
        })
    }

    /// The namespace at `path`, or `None` when it is gone: the path no longer exists,
    /// or no namespace is mounted there any more (a runtime unmounts a pod's namespace
    /// before it removes the file).
    pub fn open_if_present(path: &Path) -> Result<Option<Netns>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::io(
                    format!("opening network namespace {}", path.display()),
                    e,
                ));
            }
        };
        if !is_namespace(&file, path)? {
            return Ok(None);
        }
        Ok(Some(Netns {
            file,
            path: path.to_path_buf(),
            own: false,
        }))
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How messages name it: "this network namespace" for the caller's own.
    pub fn describe(&self) -> String {
        if self.path == Path::new(CURRENT) {
            "this network namespace".into()
        } else {
            format!("network namespace {}", self.path.display())
        }
    }

    /// Runs `call` with the calling thread in this namespace, then returns the thread
    /// to the namespace it was in.
    pub fn run<T>(&self, call: impl FnOnce() -> T) -> Result<T> {
        if self.own {
            return Ok(call());
        }
        let home = File::open(CURRENT)
            .map_err(|e| Error::io("opening this thread's network namespace", e))?;
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            Error::io(
                format!("entering network namespace {}", self.path.display()),
                e.into(),
            )
        })?;
        let result = call();
        if let Err(e) = setns(home.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Going on in the wrong namespace would change the wrong network.
            panic!(
                "cannot return from network namespace {}: {e}",
                self.path.display()
            );
        }
        Ok(result)
    }

    /// The descriptor, for moving a link into this namespace.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Whether `file` (opened from `path`) is a namespace: a file of the nsfs filesystem,
/// as `/proc/PID/ns/net` and a namespace bind-mounted elsewhere are.
fn is_namespace(file: &File, path: &Path) -> Result<bool> {
    use nix::sys::statfs::{NSFS_MAGIC, fstatfs};
    let stat = fstatfs(file).map_err(|e| {
        Error::io(
            format!("examining network namespace {}", path.display()),
            e.into(),
        )
    })?;
    Ok(stat.filesystem_type() == NSFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_opens_and_a_plain_file_is_none() {
        let own = Path::new("/proc/self/ns/net");
        assert_eq!(Netns::open(own).unwrap().path(), own);
        assert!(Netns::open_if_present(own).unwrap().is_some());

        let dir = std::env::temp_dir().join(format!("netns-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("unmounted");
        std::fs::write(&plain, b"").unwrap();
        let missing = dir.join("missing");
        assert!(Netns::open_if_present(&plain).unwrap().is_none());
        assert!(Netns::open_if_present(&missing).unwrap().is_none());
        let err = Netns::open(&plain).unwrap_err().to_string();
        assert!(
            err.contains("unmounted is not a network namespace"),
            "{err}"
        );
        assert!(Netns::open(&missing).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
