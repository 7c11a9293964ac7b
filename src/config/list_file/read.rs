//! Reading a list file so that whoever can replace it cannot stall or exhaust the
//! proxy: only a regular file (symbolic links followed, as a ConfigMap's
//! `list -> ..data/list` needs), opened without blocking (a FIFO would block the open
//! until a writer came), at most [`MAX_LIST_FILE`] bytes (a link to `/dev/zero` reads
//! forever), each refusal naming the file. A [`Reading`] also carries the file's
//! [`Stamp`] when it was judged and after the read, so that the watcher applies only a
//! file that stopped changing.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

/// The largest list file read: 4 MiB, four times what a ConfigMap may hold (1 MiB).
pub const MAX_LIST_FILE: u64 = 4 << 20;

/// What tells one version of a file from another: its device and inode (another file
/// renamed over it, a ConfigMap's `..data` swapped), its size and its modification and
/// change times (a write in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        Stamp {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The stamp of the file `path` leads to (symbolic links followed), if there is one.
pub fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path).ok().map(|meta| Stamp::of(&meta))
}

/// One read of a list file.
#[derive(Debug)]
pub struct Reading {
    /// The file's whole text, or why it cannot be used (naming the file).
    pub content: Result<String, String>,
    /// The file's stamp when it was judged (opened or refused), and after the read.
    pub stamps: (Option<Stamp>, Option<Stamp>),
}

impl Reading {
    /// Whether the file kept the stamp `seen` from then until the read ended.
    pub fn unchanged_since(&self, seen: Option<Stamp>) -> bool {
        self.stamps == (seen, seen)
    }
}

/// Reads the list file at `path`: a regular file of at most [`MAX_LIST_FILE`] bytes
/// holding UTF-8 text with at least one line that is not blank.
pub fn read(path: &Path) -> Reading {
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let refused = |content: Result<String, String>, stamp| Reading {
        content,
        stamps: (stamp, stamp),
    };
    // The path first, so that a FIFO or a device is not even opened...
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return refused(Err(failed(e)), None),
    };
    let seen = Some(Stamp::of(&meta));
    if let Err(why) = usable(path, &meta) {
        return refused(Err(why), seen);
    }
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
    {
        Ok(file) => file,
        Err(e) => return refused(Err(failed(e)), seen),
    };
    // ...then the file opened, which may be another one by now.
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return refused(Err(failed(e)), seen),
    };
    let before = Some(Stamp::of(&meta));
    if let Err(why) = usable(path, &meta) {
        return refused(Err(why), before);
    }
    let content = read_text(path, &file, meta.size());
    let after = file.metadata().ok().map(|meta| Stamp::of(&meta));
    Reading {
        content,
        stamps: (before, after),
    }
}

/// Why the file `meta` describes cannot be a list file, if it cannot.
fn usable(path: &Path, meta: &Metadata) -> Result<(), String> {
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return match meta.size() > MAX_LIST_FILE {
            true => Err(too_large(path)),
            false => Ok(()),
        };
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "of another kind"
    };
    Err(format!("{} is {what}, not a regular file", path.display()))
}

fn too_large(path: &Path) -> String {
    format!(
        "{} is larger than {} MiB",
        path.display(),
        MAX_LIST_FILE >> 20
    )
}

/// The text of `file` (of `size` bytes when it was judged), read up to one byte over
/// the cap, so that a file that grew since is refused rather than read on.
fn read_text(path: &Path, file: &File, size: u64) -> Result<String, String> {
    let capacity = usize::try_from(size.min(MAX_LIST_FILE) + 1).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(MAX_LIST_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_LIST_FILE {
        return Err(too_large(path));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{}: the file is not UTF-8 text", path.display()))?;
    if text.trim().is_empty() {
        return Err(format!("{}: the file holds no list", path.display()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
