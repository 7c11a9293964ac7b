//! Operations (SPEC section 9): what an operator watches while a serving role runs.
//!
//! - [`metrics`]: the metrics recorded while serving, in one process-wide registry.
//! - [`process`]: start time, descriptors and build information, read at scrape time.
//! - [`nat`]: the kernel's counters of the redirect NAT rules (the dump's parser is pure).
//! - [`health`]: what a role's readiness depends on, checked at most every 5 s.
//! - [`list_reload`]: following a list file, each outcome logged and counted.
//! - [`endpoint`]: the listener serving `/metrics`, `/healthz` and `/readyz`.
//! - this module: starting the endpoint beside a role.

pub mod endpoint;
pub mod health;
pub mod list_reload;
pub mod metrics;
pub mod nat;
pub mod process;

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::config::metrics_address::{DEFAULT_PORT, MetricsAddress, VAR};
use crate::error::{Error, Result};
use crate::serve::listener;
use crate::serve::shutdown::Shutdown;
use health::{Health, RoleStatus};

/// Binds the endpoint `address` says (none when it is off) and serves it on the current
/// runtime beside the role, whose own ports are `role_ports`. Returns the port bound,
/// which the proxies count among their own listeners (never dialed). A port that cannot
/// be bound is a startup error. On every address, it does not answer on the egress
/// interface's.
pub fn start(
    address: MetricsAddress,
    role_ports: &[u16],
    status: impl RoleStatus,
    shutdown: Shutdown,
) -> Result<Option<u16>> {
    let Some((ip, port)) = address.resolve(role_ports)? else {
        if address == MetricsAddress::Default {
            warn!(
                port = DEFAULT_PORT,
                "the metrics endpoint is off: its default port is one this role serves on; set {VAR} to another port"
            );
        }
        return Ok(None);
    };
    let failed = |e| Error::io(format!("listening on {VAR} port {port}"), e);
    let socket = match ip {
        None => listener::bind_all(port, 1)?.pop(),
        Some(_) => Some(listener::bind_at(MetricsAddress::socket(ip, port))?),
    };
    let socket = socket.ok_or_else(|| Error::State(format!("no socket for {VAR}")))?;
    let bound = socket.local_addr().map_err(failed)?;
    let socket = TcpListener::from_std(socket).map_err(failed)?;
    info!(address = %bound, "metrics and health endpoint listening (/metrics, /healthz, /readyz)");
    let health = Arc::new(Health::new(status, shutdown));
    tokio::spawn(endpoint::serve(socket, health, ip.is_none()));
    Ok(Some(bound.port()))
}
