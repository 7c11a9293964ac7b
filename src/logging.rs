//! Logging: the settings read from the environment, and the subscriber.
//!
//! Lines are text (`tracing`'s format: time, level, span, target, message, fields) or
//! JSON (one object a line: `timestamp`, `level`, `message` and the event's fields at
//! the top level), per `EGRESS_LOG_FORMAT`. The filter
//! covers this crate only: `EGRESS_ROUTER_DEBUG` turns on its debug lines, while the
//! libraries under it (hyper, hickory) stay at warnings; `RUST_LOG` replaces the filter
//! whole. Output goes through [`batch`], so [`flush`] must run before the process exits.

use std::io::{self, IsTerminal};

use tracing_subscriber::EnvFilter;

use crate::config::vars::Vars;
use crate::error::{Error, Result};

mod batch;

pub use batch::flush;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `tracing`'s text lines (the default).
    Text,
    /// One JSON object a line.
    Json,
}

/// What to log and how, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The line format (`EGRESS_LOG_FORMAT`).
    pub format: LogFormat,
    /// `tracing` filter directives: `RUST_LOG`, or this crate at info (debug with
    /// `EGRESS_ROUTER_DEBUG` or `EGRESS_DNS_PROXY_DEBUG`) and the rest at warn.
    pub filter: String,
}

impl LogSettings {
    /// Reads `EGRESS_LOG_FORMAT`, `RUST_LOG`, `EGRESS_ROUTER_DEBUG` and
    /// `EGRESS_DNS_PROXY_DEBUG`; a bad format or filter is an error naming the variable.
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        let format = match vars.get("EGRESS_LOG_FORMAT").map(str::trim) {
            None => LogFormat::Text,
            Some(text) if text.eq_ignore_ascii_case("text") => LogFormat::Text,
            Some(json) if json.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(other) => {
                return Err(Error::config(
                    "EGRESS_LOG_FORMAT",
                    format!("{other:?} is not a log format: text or json"),
                ));
            }
        };
        let filter = match vars.get("RUST_LOG") {
            Some(directives) => {
                EnvFilter::try_new(directives)
                    .map_err(|e| Error::config("RUST_LOG", format!("{directives:?}: {e}")))?;
                directives.to_string()
            }
            None => {
                let debug =
                    vars.is_set("EGRESS_ROUTER_DEBUG") || vars.is_set("EGRESS_DNS_PROXY_DEBUG");
                let level = if debug { "debug" } else { "info" };
                format!("warn,egress_router={level}")
            }
        };
        Ok(LogSettings { format, filter })
    }
}

/// Installs the subscriber (once per process; later calls change nothing).
pub fn init(settings: &LogSettings) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&settings.filter))
        .with_writer(batch::Batched);
    let _ = match settings.format {
        LogFormat::Text => builder.with_ansi(io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            // the module path would collide with the lines' own `target` field
            .with_target(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests;
