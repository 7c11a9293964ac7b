//! Process metrics read at scrape time: start time, open descriptors and their limit,
//! build information.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::metrics::METRICS;

/// Registers the process metrics, read now, in `registry`.
pub fn register(registry: &mut Registry) {
    let started: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
    started.set(
        METRICS
            .started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    );
    registry.register_with_unit(
        "process_start_time",
        "When the process started (Unix time)",
        Unit::Seconds,
        started,
    );
    let open: Gauge = Gauge::default();
    open.set(open_descriptors());
    registry.register("process_open_fds", "Open file descriptors", open);
    let limit: Gauge = Gauge::default();
    limit.set(descriptor_limit());
    registry.register(
        "process_max_fds",
        "The open-file limit (soft) the process runs with",
        limit,
    );
    registry.register(
        "build",
        "The version of egress-router",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
}

/// Entries of `/proc/self/fd` (the directory's own descriptor not counted).
fn open_descriptors() -> i64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as i64 - 1)
}

fn descriptor_limit() -> i64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(0, |(soft, _)| i64::try_from(soft).unwrap_or(i64::MAX))
}
