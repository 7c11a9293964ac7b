//! `metrics_file`: the plugin's command counts, for node_exporter's textfile collector.
//! The plugin runs once a command and serves no endpoint, so a failed ADD or DEL (a
//! cloud API refusing or not answering, a node piece that cannot be made) would show
//! only as a pod that does not start or a cleanup the runtime retries. With
//! `metrics_file` set, every ADD, CHECK and DEL adds one to
//! `egress_router_cni_commands_total{network, command, interface_type, result}`
//! (`result`: `ok`, or the CNI error code) in that file, which node_exporter exposes
//! with the node's metrics. The path can only be [`METRICS_FILE`]: the plugin runs as
//! root and the path comes from whoever may write a NetworkAttachmentDefinition, who
//! must not replace another collector's file, and every network of a node shares the
//! one file (two files holding the same series would break node_exporter's scrape).
//! The rules and the file's content are pure, the locked replacement is
//! [`crate::sys::textfile`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cni::json::invalid;
use crate::error::Result;

/// The directory of the metrics file: node_exporter's usual
/// `--collector.textfile.directory`.
pub const METRICS_DIR: &str = "/var/lib/node_exporter/textfile_collector";
/// The metrics file's name in [`METRICS_DIR`].
const NAME: &str = "egress-router.prom";
/// The only metrics file.
pub const METRICS_FILE: &str = "/var/lib/node_exporter/textfile_collector/egress-router.prom";
/// The counter's name.
pub const COMMANDS: &str = "egress_router_cni_commands_total";
/// At most this many series are kept (a node has few networks, and command x
/// interface type x result is far fewer); a new one beyond it is not counted.
const MAX_SERIES: usize = 256;

/// A valid `metrics_file`: [`METRICS_FILE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsFile;

impl MetricsFile {
    /// Checks `text` against the rule; an error names `metrics_file` and quotes `text`.
    pub fn parse(text: &str) -> Result<Self> {
        match text == METRICS_FILE {
            true => Ok(MetricsFile),
            false => Err(invalid(
                "metrics_file",
                format!(
                    "{text:?} is not {METRICS_FILE}, the only metrics file (shared by every network of the node)"
                ),
            )),
        }
    }

    /// The file's name in [`METRICS_DIR`].
    pub fn name(&self) -> &'static str {
        NAME
    }

    /// The whole path.
    pub fn path(&self) -> PathBuf {
        Path::new(METRICS_DIR).join(NAME)
    }
}

/// One series: a network, a command, the interface type it was for, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    /// The network's `name`.
    pub network: String,
    /// `ADD`, `CHECK` or `DEL`.
    pub command: String,
    /// `macvlan`, `ipvlan`, `routed`, `aws-elastic-ip`.
    pub interface_type: String,
    /// `ok`, or the CNI error code in decimal.
    pub result: String,
}

impl Series {
    /// The series of `command` on `network` for `interface_type` ending with
    /// `error_code` (`None`: success).
    pub fn new(
        network: &str,
        command: &str,
        interface_type: &str,
        error_code: Option<u32>,
    ) -> Series {
        Series {
            network: network.into(),
            command: command.into(),
            interface_type: interface_type.into(),
            result: error_code.map_or_else(|| "ok".into(), |code| code.to_string()),
        }
    }
}

/// The counts a metrics file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<Series, u64>);

impl Counts {
    /// The counts in `text` (a file this module wrote); lines it would not have written
    /// are left out.
    pub fn read(text: &str) -> Counts {
        Counts(text.lines().filter_map(parse_line).collect())
    }

    /// Adds one to `series` (a new series only while fewer than the cap exist).
    pub fn count(&mut self, series: Series) {
        if let Some(value) = self.0.get_mut(&series) {
            *value = value.saturating_add(1);
        } else if self.0.len() < MAX_SERIES {
            self.0.insert(series, 1);
        }
    }

    /// The value of `series`, if counted.
    pub fn get(&self, series: &Series) -> Option<u64> {
        self.0.get(series).copied()
    }

    /// The file's text, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = format!(
            "# HELP {COMMANDS} CNI commands the egress-router plugin ran on this node, by network, command, interface type and result (ok, or the CNI error code).\n# TYPE {COMMANDS} counter\n"
        );
        for (s, value) in &self.0 {
            let _ = writeln!(
                text,
                "{COMMANDS}{{network=\"{}\",command=\"{}\",interface_type=\"{}\",result=\"{}\"}} {value}",
                s.network, s.command, s.interface_type, s.result
            );
        }
        text
    }
}

/// A series line as [`Counts::render`] writes it.
fn parse_line(line: &str) -> Option<(Series, u64)> {
    let labels = line.strip_prefix(COMMANDS)?.strip_prefix('{')?;
    let (labels, value) = labels.split_once("} ")?;
    let mut found: BTreeMap<&str, &str> = BTreeMap::new();
    for pair in labels.split(',') {
        let (key, quoted) = pair.split_once('=')?;
        let value = quoted.strip_prefix('"')?.strip_suffix('"')?;
        let plain =
            !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !plain || found.insert(key, value).is_some() {
            return None;
        }
    }
    let label = |key: &str| found.get(key).map(|v| v.to_string());
    let series = Series {
        network: label("network")?,
        command: label("command")?,
        interface_type: label("interface_type")?,
        result: label("result")?,
    };
    (found.len() == 4).then_some(())?;
    Some((series, value.trim().parse().ok()?))
}

#[cfg(test)]
mod tests;
