//! The plugin's entry point: read the invocation, run the command, answer the CNI way
//! (a result or an error object on stdout, a non-zero exit on failure, logs on stderr
//! and, when the configuration names one, in `log_file` at `log_level`, a file beneath
//! `/var/log` opened before anything changes: see [`super::log_file`]), and, when it
//! names a `metrics_file`, the command counted there ([`super::metrics_file`]).

use std::fs::File;
use std::io::{Read, Write};

use super::attach;
use super::config::{LogLevel, NetConf};
use super::detach;
use super::log_file::LogFile;
use super::metrics_file::{Counts, METRICS_DIR, MetricsFile, Series};
use super::request::{Action, Request};
use super::result::{ErrorResult, VersionResult};
use super::version::peek_version;
use crate::config::vars::Vars;
use crate::error::{Error, Result};
use crate::sys::textfile;

/// Runs the plugin for the invocation in `vars` and on stdin. On failure the error
/// object is already on stdout; the error is returned for the exit status.
pub async fn run(vars: &Vars) -> Result<()> {
    let mut stdin = Vec::new();
    std::io::stdin()
        .read_to_end(&mut stdin)
        .map_err(|e| Error::io("reading the network configuration from stdin", e))?;
    let outcome = match Request::parse(vars, &stdin) {
        Ok(request) => execute(&request).await,
        Err(e) => Err(e),
    };
    let (answer, result) = match outcome {
        Ok(answer) => (answer, Ok(())),
        Err(e) => {
            let object = ErrorResult::from_error(&e, peek_version(&stdin).as_deref());
            (Some(object.to_json()), Err(e))
        }
    };
    if let Some(json) = answer {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{json}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("writing the result to stdout", e))?;
    }
    result
}

/// Runs one command; the JSON to print on success, if the command answers with one.
/// The log file is opened before the command changes anything.
async fn execute(request: &Request) -> Result<Option<String>> {
    match &request.action {
        Action::Version { requested } => {
            Ok(Some(VersionResult::new(requested.as_deref()).to_json()))
        }
        Action::Add {
            container,
            netns,
            config,
        } => {
            let log = log_file(config)?;
            let metrics = metrics_file(config)?;
            let outcome = attach::add(container, netns, config).await;
            counted(config, metrics, "ADD", &outcome);
            logged(config, log, "ADD", &container.id, outcome).map(|r| Some(r.to_json()))
        }
        Action::Del {
            container,
            netns,
            config,
        } => {
            // Tearing down never waits on logging: an attachment made with a log_file
            // that is refused now (or cannot be opened) is still removed.
            let log = log_file(config).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "DEL goes on without the log file");
                None
            });
            let metrics = metrics_file(config).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "DEL goes on without the metrics file");
                None
            });
            let outcome = detach::del(container, netns.as_deref(), config).await;
            counted(config, metrics, "DEL", &outcome);
            logged(config, log, "DEL", &container.id, outcome).map(|()| None)
        }
        Action::Check {
            container,
            netns,
            config,
        } => {
            let log = log_file(config)?;
            let metrics = metrics_file(config)?;
            let outcome = detach::check(container, netns, config).await;
            counted(config, metrics, "CHECK", &outcome);
            logged(config, log, "CHECK", &container.id, outcome).map(|()| None)
        }
        // Ready whenever it can run; the node holds nothing of this plugin to collect.
        Action::Status { .. } | Action::Gc { .. } => Ok(None),
    }
}

/// The configuration's `log_file`, checked ([`LogFile`]), and opened (created when
/// missing) unless its `log_level` is `panic`, which writes nothing.
fn log_file(config: &NetConf) -> Result<Option<File>> {
    let Some(text) = &config.log_file else {
        return Ok(None);
    };
    let file = LogFile::parse(text)?;
    if config.log_level == Some(LogLevel::Panic) {
        return Ok(None);
    }
    file.open().map(Some)
}

/// The configuration's `metrics_file`, checked ([`MetricsFile`]).
fn metrics_file(config: &NetConf) -> Result<Option<MetricsFile>> {
    config
        .metrics_file
        .as_deref()
        .map(MetricsFile::parse)
        .transpose()
}

/// Counts the command's outcome in `metrics`; a file that cannot be written is logged
/// and never fails the command.
fn counted<T>(config: &NetConf, metrics: Option<MetricsFile>, command: &str, outcome: &Result<T>) {
    let Some(file) = metrics else {
        return;
    };
    let code = outcome.as_ref().err().map(super::code::of);
    let series = Series::new(
        &config.name,
        command,
        config.interface.kind.type_name(),
        code,
    );
    let written = textfile::replace(std::path::Path::new(METRICS_DIR), file.name(), |old| {
        let mut counts = Counts::read(old);
        counts.count(series);
        counts.render()
    });
    if let Err(e) = written {
        tracing::warn!(metrics_file = %file.path().display(), error = %e, "cannot count the command");
    }
}

/// Writes the outcome to stderr and to the opened `log` at the configuration's
/// `log_level` (`error`: failures only; `verbose`, `debug`: every command; `panic`:
/// nothing), then passes it on.
fn logged<T>(
    config: &NetConf,
    log: Option<File>,
    command: &str,
    container: &str,
    outcome: Result<T>,
) -> Result<T> {
    let line = match &outcome {
        Ok(_) => format!("{command} container={container}: ok"),
        Err(e) => format!("{command} container={container}: {e}"),
    };
    match &outcome {
        Ok(_) => tracing::info!("{line}"),
        Err(_) => tracing::error!("{line}"),
    }
    let wanted = match config.log_level.unwrap_or(LogLevel::Error) {
        LogLevel::Panic => false,
        LogLevel::Error => outcome.is_err(),
        LogLevel::Verbose | LogLevel::Debug => true,
    };
    if let (Some(mut file), true) = (log, wanted) {
        let level = if outcome.is_ok() { "INFO" } else { "ERROR" };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Err(e) = writeln!(file, "{stamp} {level} egress-router {line}") {
            let path = config.log_file.as_deref().unwrap_or_default();
            tracing::warn!(log_file = path, error = %e, "cannot write the log file");
        }
    }
    outcome
}
