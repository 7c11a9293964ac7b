//! A list given in its variable (`EGRESS_HTTP_PROXY_DESTINATION`) or in a file named by
//! the variable with `_FILE` appended (a mounted ConfigMap, SPEC section 9); `read`:
//! reading such a file (only a regular one, capped).

mod read;

use std::path::{Path, PathBuf};

pub use read::{MAX_LIST_FILE, Reading, Stamp, read, stamp};

use crate::config::vars::Vars;
use crate::error::{Error, Result};

/// A list variable and its `_FILE` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListVars {
    /// The variable holding the list.
    pub inline: &'static str,
    /// The variable naming a file that holds it.
    pub file: &'static str,
}

impl ListVars {
    /// Whether either variable is set (either selects the role).
    pub fn is_set(self, vars: &Vars) -> bool {
        vars.is_set(self.inline) || vars.is_set(self.file)
    }

    /// The list's text and, when it came from a file, the file.
    pub fn read(self, vars: &Vars) -> Result<(String, Option<PathBuf>)> {
        match (vars.get(self.inline), vars.get(self.file)) {
            (Some(_), Some(_)) => Err(Error::config(
                self.file,
                format!("is set together with {}: set one of them", self.inline),
            )),
            (Some(text), None) => Ok((text.to_string(), None)),
            (None, Some(path)) => {
                let path = PathBuf::from(path.trim());
                let text = read(&path)
                    .content
                    .map_err(|message| Error::config(self.file, message))?;
                Ok((text, Some(path)))
            }
            (None, None) => Err(Error::config(
                self.inline,
                format!("is required but not set (nor {})", self.file),
            )),
        }
    }

    /// `error`, when it is about the list's text and the text came from `file`, as an
    /// error of the `_FILE` variable that names the file.
    pub fn blame_file(self, error: Error, file: Option<&Path>) -> Error {
        match (error, file) {
            (Error::Config { var, message }, Some(path)) if var == self.inline => {
                Error::config(self.file, format!("{}: {message}", path.display()))
            }
            (other, _) => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: ListVars = ListVars {
        inline: "EGRESS_HTTP_PROXY_DESTINATION",
        file: "EGRESS_HTTP_PROXY_DESTINATION_FILE",
    };

    fn read(pairs: &[(&str, &str)]) -> Result<(String, Option<PathBuf>)> {
        LIST.read(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn the_variable_or_the_file_not_both() {
        let dir = std::env::temp_dir().join(format!("egress-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("list");
        std::fs::write(&file, "*.example.com\n").unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(read(&[(LIST.inline, "*")]).unwrap(), ("*".into(), None));
        assert_eq!(
            read(&[(LIST.file, path)]).unwrap(),
            ("*.example.com\n".into(), Some(file.clone()))
        );
        let both = read(&[(LIST.inline, "*"), (LIST.file, path)])
            .unwrap_err()
            .to_string();
        assert!(
            both.contains(LIST.file) && both.contains("set one of them"),
            "{both}"
        );
        let none = read(&[]).unwrap_err().to_string();
        assert!(
            none.contains(LIST.inline) && none.contains(LIST.file),
            "{none}"
        );
        std::fs::write(&file, "\n  \n").unwrap();
        let empty = read(&[(LIST.file, path)]).unwrap_err().to_string();
        assert!(
            empty.contains("holds no list") && empty.contains(path),
            "{empty}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let gone = read(&[(LIST.file, path)]).unwrap_err().to_string();
        assert!(gone.contains(LIST.file) && gone.contains(path), "{gone}");
    }

    #[test]
    fn a_fifo_is_an_error_of_the_file_variable_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("egress-list-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("list");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let error = read(&[(LIST.file, fifo.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        let want = format!(
            "{}: {} is a FIFO, not a regular file",
            LIST.file,
            fifo.display()
        );
        assert_eq!(error, want);
    }

    #[test]
    fn a_list_error_from_a_file_names_the_file() {
        let error = Error::config(LIST.inline, "line \"x\" is bad");
        let path = PathBuf::from("/etc/egress/list");
        let blamed = LIST.blame_file(error, Some(path.as_path())).to_string();
        assert!(
            blamed.starts_with(LIST.file) && blamed.contains("/etc/egress/list: line"),
            "{blamed}"
        );
    }
}
