//! Opening a file for appending beneath a directory without following a symbolic link
//! or crossing a mount point anywhere on the way: `openat2(2)` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV` relative to the directory, or, where the
//! kernel has no `openat2` (before 5.6, or a seccomp filter refusing it), one
//! `openat(2)` with `O_NOFOLLOW` per component, each on the directory's device. The
//! file is created when missing (mode as given, less the umask); its directories are
//! not. Only a regular file with one link is accepted: a FIFO, a device, a socket or a
//! second name of another file is refused before a byte is written.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};

use crate::error::{Error, Result};

/// How the file is opened: appending, created when missing, never through a link as
/// its last component, never blocking (a FIFO without a reader fails at once), never
/// becoming a controlling terminal.
const FILE: OFlag = OFlag::O_WRONLY
    .union(OFlag::O_APPEND)
    .union(OFlag::O_CREAT)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY);
/// How each directory on the way is opened.
const DIRECTORY: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Opens `dir`/`names[0]`/.../`names[n]` for appending, creating the last with `mode`
/// when missing. Neither `dir` nor any of `names` may be a symbolic link; each of
/// `names` is one plain component (no `/`, `.` or `..`: the caller checked).
pub fn append(dir: &Path, names: &[&OsStr], mode: Mode) -> Result<File> {
    let base = open(dir, DIRECTORY, Mode::empty()).map_err(|e| refused(e, dir))?;
    let opened = match by_openat2(&base, names, mode) {
        Err(Errno::ENOSYS | Errno::EPERM | Errno::E2BIG) => by_walk(&base, names, mode),
        other => other,
    };
    regular(opened.map_err(|e| refused(e, dir))?)
}

/// One `openat2` beneath `base`, refusing every symbolic link and leaving `base` never.
fn by_openat2(base: &OwnedFd, names: &[&OsStr], mode: Mode) -> nix::Result<OwnedFd> {
    let path: PathBuf = names.iter().collect();
    let resolve = ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
        | ResolveFlag::RESOLVE_NO_XDEV;
    let how = OpenHow::new().flags(FILE).mode(mode).resolve(resolve);
    openat2(base, &path, how)
}

/// One `openat` with `O_NOFOLLOW` a component, from `base` down, each on `base`'s
/// device (a mount point on the way is `EXDEV`, as `RESOLVE_NO_XDEV` says it).
fn by_walk(base: &OwnedFd, names: &[&OsStr], mode: Mode) -> nix::Result<OwnedFd> {
    let device = fstat(base)?.st_dev;
    let same_device = |fd: OwnedFd| match fstat(&fd)?.st_dev == device {
        true => Ok(fd),
        false => Err(Errno::EXDEV),
    };
    let (last, on_the_way) = names.split_last().ok_or(Errno::EINVAL)?;
    let mut current: Option<OwnedFd> = None;
    for name in on_the_way {
        let at = current.as_ref().map_or(base.as_fd(), |fd| fd.as_fd());
        current = Some(same_device(openat(at, *name, DIRECTORY, Mode::empty())?)?);
    }
    let at = current.as_ref().map_or(base.as_fd(), |fd| fd.as_fd());
    same_device(openat(at, *last, FILE, mode)?)
}

/// The opened file, when it is a regular file with one link.
fn regular(fd: OwnedFd) -> Result<File> {
    let stat = fstat(&fd).map_err(|e| Error::io("reading what was opened", e.into()))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    let what = match kind {
        SFlag::S_IFREG if stat.st_nlink == 1 => return Ok(File::from(fd)),
        SFlag::S_IFREG => format!(
            "has {} links: a second name of another file is not written through",
            stat.st_nlink
        ),
        SFlag::S_IFIFO => "is a FIFO, not a regular file".into(),
        SFlag::S_IFCHR | SFlag::S_IFBLK => "is a device, not a regular file".into(),
        SFlag::S_IFSOCK => "is a socket, not a regular file".into(),
        _ => "is not a regular file".into(),
    };
    Err(Error::State(what))
}

/// What a refused open means, said without the path (the caller names it).
fn refused(errno: Errno, dir: &Path) -> Error {
    let said = |what: &str| Error::State(what.to_string());
    match errno {
        Errno::ELOOP => said("a symbolic link is on the way, and none is followed"),
        Errno::ENOENT => said("a directory on the way does not exist (none is created)"),
        // what `O_DIRECTORY | O_NOFOLLOW` answers for a link, too
        Errno::ENOTDIR => said("a component on the way is a symbolic link or no directory"),
        Errno::EXDEV => Error::State(format!(
            "leaves {} or crosses a mount point on the way",
            dir.display()
        )),
        Errno::ENXIO => said("is a FIFO or socket without a reader, not a regular file"),
        other => Error::io("cannot be opened for appending", other.into()),
    }
}

#[cfg(test)]
mod tests;
