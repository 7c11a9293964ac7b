//! Replacing a small file in a directory the way node_exporter's textfile collector
//! wants it: never seen half-written (a temporary name beside it, renamed over it),
//! each change made from the file's last content under an exclusive lock on the
//! directory (commands running at once on a node lose no count), nothing followed
//! through a symbolic link, only a regular file read (at most [`MAX_READ`] bytes).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, open, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::error::{Error, Result};

/// The most read of the current file.
const MAX_READ: u64 = 1 << 20;
/// How long the lock is waited for.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Replaces `dir`/`name` with `change` of its current content (empty when missing).
pub fn replace(dir: &Path, name: &str, change: impl FnOnce(&str) -> String) -> Result<()> {
    let fail =
        |what: &str, e: Errno| Error::io(format!("{what} {name} in {}", dir.display()), e.into());
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let dir_fd =
        open(dir, flags, Mode::empty()).map_err(|e| fail("opening the directory of", e))?;
    let lock = lock(dir_fd).map_err(|e| fail("locking the directory of", e))?;
    let at: &OwnedFd = &lock;
    let current = read(at, name).map_err(|e| match e {
        Errno::ELOOP => Error::State(format!(
            "{name} in {} is a symbolic link, never followed",
            dir.display()
        )),
        Errno::EINVAL => Error::State(format!("{name} in {} is not a regular file", dir.display())),
        e => fail("reading", e),
    })?;
    let text = change(&current);
    let temporary = format!(".{name}.tmp");
    match unlinkat(at, temporary.as_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(fail("removing the temporary file of", e)),
    }
    let create =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(
        at,
        temporary.as_str(),
        create,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| fail("creating the temporary file of", e))?;
    let mut file = File::from(fd);
    // the mode whatever the umask (node_exporter often runs as another user), and on
    // disk before it takes the name
    fchmod(&file, Mode::from_bits_truncate(0o644))
        .map_err(|e| fail("setting the mode of the temporary file of", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(format!("writing the temporary file of {name}"), e))?;
    renameat(at, temporary.as_str(), at, name).map_err(|e| fail("renaming over", e))
}

/// The exclusive lock of `dir`, waited for at most [`LOCK_WAIT`].
fn lock(dir: OwnedFd) -> nix::Result<Flock<OwnedFd>> {
    let started = Instant::now();
    let mut dir = dir;
    loop {
        match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((fd, Errno::EWOULDBLOCK)) if started.elapsed() < LOCK_WAIT => {
                dir = fd;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((_, e)) => return Err(e),
        }
    }
}

/// The content of `name` in the locked directory: empty when missing; an error when it
/// is not a regular file.
fn read(dir: &OwnedFd, name: &str) -> nix::Result<String> {
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let kind = SFlag::from_bits_truncate(fstat(&fd)?.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG {
        return Err(Errno::EINVAL);
    }
    let mut bytes = Vec::new();
    File::from(fd)
        .take(MAX_READ)
        .read_to_end(&mut bytes)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_from_its_last_content() {
        let dir = std::env::temp_dir().join(format!("textfile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..3 {
            replace(&dir, "n.prom", |old| format!("{old}x")).unwrap();
        }
        assert_eq!(std::fs::read_to_string(dir.join("n.prom")).unwrap(), "xxx");
        assert!(!dir.join(".n.prom.tmp").exists());
        std::os::unix::fs::symlink("/dev/zero", dir.join("z.prom")).unwrap();
        assert!(replace(&dir, "z.prom", |_| String::new()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
