//! Descriptors handed from a setup to the detached process that makes its delayed
//! announcements: the sockets were opened in the namespace that was set up, which the
//! helper does not enter.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::libc;

use crate::error::{Error, Result};

/// Takes over descriptor `fd`, inherited from the parent process; `what` names it in
/// errors.
pub fn inherited(fd: RawFd, what: &str) -> Result<OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor; it fails if fd is not open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(Error::io(
            format!("inherited {what} {fd}"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the parent handed this open descriptor to this process alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Lets a child process inherit `fd` (clears close-on-exec); returns its number.
pub fn share_with_child(fd: &OwnedFd, what: &str) -> Result<RawFd> {
    let raw = fd.as_raw_fd();
    // SAFETY: clears FD_CLOEXEC on a descriptor the caller owns.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, 0) } < 0 {
        return Err(Error::io(
            format!("sharing the {what}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(raw)
}
