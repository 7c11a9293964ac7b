//! The pipe between two sockets, and splice(2) into and out of it.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use nix::fcntl::{self, FcntlArg, OFlag, SpliceFFlags};
use nix::unistd;

/// Moves up to `len` bytes between a socket and a pipe without blocking.
pub(super) fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    fcntl::splice(from, None, to, None, len, flags).map_err(io::Error::from)
}

/// A pipe used as the in-kernel buffer between two sockets.
pub(super) struct Pipe {
    pub(super) read: OwnedFd,
    pub(super) write: OwnedFd,
    /// Its size in bytes.
    pub(super) capacity: usize,
}

impl Pipe {
    pub(super) fn new() -> io::Result<Self> {
        let (read, write) = unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let capacity = fcntl::fcntl(&write, FcntlArg::F_GETPIPE_SZ)?;
        Ok(Pipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(1 << 16),
        })
    }

    /// Asks for a larger (empty) pipe; when the quota refuses, the current size stays.
    pub(super) fn grow(&mut self, size: usize) {
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        if let Ok(granted) = fcntl::fcntl(&self.write, FcntlArg::F_SETPIPE_SZ(size))
            && let Ok(granted) = usize::try_from(granted)
        {
            self.capacity = granted;
        }
    }
}
