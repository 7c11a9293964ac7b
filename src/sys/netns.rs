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

    /// The namespace at `path` (e.g. `/var/run/netns/NAME`, `/proc/PID/ns/net`).
    pub fn open(path: &Path) -> Result<Netns> {
        let file = File::open(path)
            .map_err(|e| Error::io(format!("opening network namespace {}", path.display()), e))?;
        Ok(Netns {
            file,
            path: path.to_path_buf(),
            own: false,
        })
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
