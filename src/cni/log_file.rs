//! `log_file`: where the plugin appends its log lines on the node. The plugin runs as
//! root and the path comes from whoever may write a NetworkAttachmentDefinition, so it
//! is held to [`LOG_DIR`]: an absolute, normalized path beneath it (no `.`, `..` or
//! empty component; the rules are pure, [`LogFile::parse`]), opened without following a
//! symbolic link anywhere on the way, created when missing (its directories are not),
//! and only a regular file with one link ([`crate::sys::beneath`]).

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;

use crate::cni::json::invalid;
use crate::error::Result;
use crate::sys::beneath;

/// The one directory a log file may be in (at any depth).
pub const LOG_DIR: &str = "/var/log";
/// The mode of a log file the plugin creates (less the umask).
const MODE: u32 = 0o640;

/// A valid `log_file`: its components beneath [`LOG_DIR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    names: Vec<String>,
}

impl LogFile {
    /// Checks `text` against the rules; an error names `log_file` and quotes `text`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| invalid("log_file", format!("{text:?} {why}"));
        let Some(relative) = text.strip_prefix('/') else {
            return Err(bad("is not an absolute path"));
        };
        if text.contains('\0') {
            return Err(bad("holds a NUL character"));
        }
        let names: Vec<&str> = relative.split('/').collect();
        if names.contains(&"") {
            return Err(bad("has an empty component (`//` or a trailing `/`)"));
        }
        if names.iter().any(|name| *name == "." || *name == "..") {
            return Err(bad("has a `.` or `..` component: write it normalized"));
        }
        let dir: Vec<&str> = LOG_DIR.split('/').skip(1).collect();
        if names.len() <= dir.len() || names[..dir.len()] != dir[..] {
            return Err(bad(&format!(
                "is not beneath {LOG_DIR}/, the only directory a log file may be in"
            )));
        }
        let names = names[dir.len()..].iter().map(|n| n.to_string()).collect();
        Ok(LogFile { names })
    }

    /// The whole path.
    pub fn path(&self) -> PathBuf {
        self.names
            .iter()
            .fold(PathBuf::from(LOG_DIR), |p, n| p.join(n))
    }

    /// Opens it for appending (created when missing); an error names `log_file`, the
    /// path and why.
    pub fn open(&self) -> Result<File> {
        let names: Vec<&OsStr> = self.names.iter().map(OsStr::new).collect();
        let mode = Mode::from_bits_truncate(MODE);
        beneath::append(Path::new(LOG_DIR), &names, mode)
            .map_err(|e| invalid("log_file", format!("{:?}: {e}", self.path())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        let error = LogFile::parse(text).unwrap_err();
        assert_eq!(crate::cni::code::of(&error), 7, "{error}");
        error.to_string()
    }

    #[test]
    fn a_normalized_path_beneath_var_log_is_taken() {
        for (text, names) in [
            ("/var/log/egress-router.log", vec!["egress-router.log"]),
            ("/var/log/cni/egress.log", vec!["cni", "egress.log"]),
            ("/var/log/..hidden", vec!["..hidden"]),
        ] {
            let file = LogFile::parse(text).unwrap();
            assert_eq!(file.names, names, "{text}");
            assert_eq!(file.path(), PathBuf::from(text));
        }
    }

    #[test]
    fn other_paths_are_refused_naming_the_field_and_the_value() {
        for (text, why) in [
            ("egress.log", "is not an absolute path"),
            ("var/log/x.log", "is not an absolute path"),
            ("/var/log/../../etc/passwd", "`..`"),
            ("/var/log/./x.log", "`.`"),
            ("/var/log/cni/..", "`..`"),
            ("/var//log/x.log", "empty component"),
            ("/var/log/x.log/", "empty component"),
            ("/var/log/", "empty component"),
            ("/var/log", "is not beneath /var/log/"),
            ("/tmp/egress-router-log", "is not beneath /var/log/"),
            ("/etc/shadow", "is not beneath /var/log/"),
            ("/var/logs/x.log", "is not beneath /var/log/"),
            ("/var/log\0/x.log", "NUL"),
        ] {
            let message = refusal(text);
            assert!(
                message.starts_with(&format!("log_file: {text:?} ")) && message.contains(why),
                "{text:?}: {message}"
            );
        }
    }
}
