//! The one error type of the crate.
//!
//! Every variant renders as a single line that names what failed and the value
//! involved, because that line is what an operator sees in `kubectl logs` (or, for
//! the CNI plugin, in the pod's events).

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in egress-router.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration variable is missing or invalid.
    #[error("{var}: {message}")]
    Config {
        /// The environment variable (or CNI field) at fault.
        var: &'static str,
        /// What is wrong, quoting the offending value or line.
        message: String,
    },
    /// A variable of this program holds bytes that are not UTF-8 text.
    #[error("{var}: the value is not valid UTF-8 text")]
    NotUtf8 {
        /// The variable.
        var: String,
    },
    /// The command line or environment does not select any role.
    #[error("{0}")]
    Usage(String),
    /// A netlink request failed.
    #[error("{context}: {source}")]
    Netlink {
        /// What was being done.
        context: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An iptables tool failed or produced unexpected output.
    #[error("{command}: {message}")]
    Iptables {
        /// The command that failed, as run.
        command: String,
        /// Its diagnostic output or the reason it failed.
        message: String,
    },
    /// The pod network is not in the state this step requires.
    #[error("{0}")]
    State(String),
    /// A setup step failed; what had been changed was rolled back.
    #[error("{cause}{}", RollbackNote(.rollback))]
    Setup {
        /// The failure that stopped the setup.
        cause: Box<Error>,
        /// Errors met while undoing earlier steps (empty when the rollback was clean).
        rollback: Vec<Error>,
    },
    /// A CNI request is invalid or cannot be served, with its CNI error code.
    #[error("{message}")]
    Cni {
        /// The CNI error code (see `cni::result::code`).
        code: u32,
        /// What is wrong, naming the field or variable and quoting the value.
        message: String,
    },
}

impl Error {
    /// Builds a configuration error for `var`.
    pub fn config(var: &'static str, message: impl Into<String>) -> Self {
        Error::Config {
            var,
            message: message.into(),
        }
    }

    /// Builds a CNI error with `code`.
    pub fn cni(code: u32, message: impl Into<String>) -> Self {
        Error::Cni {
            code,
            message: message.into(),
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a netlink error with what was being done.
    pub fn netlink(context: impl Into<String>, source: rtnetlink::Error) -> Self {
        Error::Netlink {
            context: context.into(),
            source,
        }
    }

    /// The errno the kernel answered with, when the failure was a refused system call
    /// or netlink request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink {
                source: rtnetlink::Error::NetlinkError(message),
                ..
            } => Some(message.raw_code().abs()).filter(|&code| code != 0),
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Process exit code for this error: 2 for bad input (also when a setup found it
    /// so, such as an address another host holds), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config { .. } | Error::NotUtf8 { .. } | Error::Usage(_) => 2,
            Error::Setup { cause, .. } => cause.exit_code(),
            _ => 1,
        }
    }
}

/// Renders the rollback outcome after the cause of a failed setup.
struct RollbackNote<'a>(&'a [Error]);

impl fmt::Display for RollbackNote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(" (changes rolled back)");
        }
        f.write_str(" (rollback incomplete: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        f.write_str(")")
    }
}
