//! The router role: init, legacy and unit-test modes, and the `redirect` main container.

use std::time::Duration;

use tracing::{debug, error, info, warn};

pub mod names;
mod status;

use crate::config::metrics_address::MetricsAddress;
use crate::config::redirect::{Destination, Protocol};
use crate::config::router::{RouterConfig, RouterMode};
use crate::error::{Error, Result};
use crate::ops;
use crate::serve::shutdown;
use crate::setup::firewall::{self, NatPurpose};
use crate::setup::{self, Intent, MACVLAN, Namespace, announce};
use crate::sys::netns::Netns;

/// How often a running `legacy`/`redirect` container re-checks the setup.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// Runs the router role in the mode the configuration names.
pub async fn run(config: &RouterConfig) -> Result<()> {
    match config.mode {
        RouterMode::UnitTest => {
            // IPv4's lines first, exactly as before IPv6 existed, then IPv6's; a name
            // entry's chain is described, not resolved.
            for pair in &config.egress {
                for (_, rule) in firewall::router_nat_plan(config, pair.source.address) {
                    println!("{rule}");
                }
                for chain in firewall::router_name_chains(config, pair.family(), None) {
                    println!("{}", chain.describe());
                }
            }
            Ok(())
        }
        RouterMode::Init | RouterMode::HttpProxy | RouterMode::DnsProxy => {
            setup(config).await.map(drop)
        }
        RouterMode::Legacy => {
            let ns = setup(config).await?;
            watch(config, &ns).await
        }
    }
}

/// One check of the setup made by init (a probe): every piece of it.
pub async fn check(config: &RouterConfig) -> Result<()> {
    let (ns, _) = Namespace::open(Netns::current()?, config.backend)?;
    probe(config, &ns).await
}

/// The `redirect` main container: verify the setup made by init, then keep checking it.
pub async fn redirect(config: &RouterConfig) -> Result<()> {
    let (ns, reason) = Namespace::open(Netns::current()?, config.backend)?;
    debug!(backend = ns.backend.name, reason, "iptables backend chosen");
    probe(config, &ns).await?;
    info!(source = %config.sources(), backend = ns.backend.name, "setup verified; waiting for SIGTERM");
    watch(config, &ns).await
}

/// Brings this namespace to the router's intent, rolling everything back if a step
/// fails or the end check finds a piece missing. Setups in one network namespace run
/// one at a time. Returns the namespace, for the checks that follow in `legacy`.
async fn setup(config: &RouterConfig) -> Result<Namespace> {
    // Names are resolved before anything changes: one without an address fails here.
    let resolved = match config.mode.uses_nat() {
        true => names::resolve_all(config).await?,
        false => Default::default(),
    };
    let netns = Netns::current()?;
    let _lock = setup::lock(&netns).await?;
    let (ns, reason) = Namespace::open(netns, config.backend)?;
    info!(backend = ns.backend.name, reason, "iptables backend chosen");
    let intent = Intent::router_resolved(config, &resolved);
    let done = setup::establish(&ns, &intent).await?;
    if !done.announced.is_empty() {
        if std::process::id() == 1 && config.mode != RouterMode::Legacy {
            // Every process of a PID namespace is killed when its PID 1 exits.
            info!(
                "running as PID 1 of a container: the follow-up announcements (ARP request, neighbour advertisement) cannot outlive it"
            );
        } else {
            announce::spawn_second(&done.announced)?;
        }
    }
    info!(
        source = %config.sources(),
        gateway = %gateways(config),
        mode = ?config.mode,
        nat_rules = intent.nat_rules().count(),
        network_changes = done.changes,
        "egress router set up on {MACVLAN}"
    );
    Ok(ns)
}

/// The gateways, comma-separated, IPv4 first.
fn gateways(config: &RouterConfig) -> String {
    let shown: Vec<String> = config
        .egress
        .iter()
        .map(|p| p.gateway.to_string())
        .collect();
    shown.join(",")
}

/// Every problem of the setup as a probe: an error listing them all, or `Ok`.
async fn probe(config: &RouterConfig, ns: &Namespace) -> Result<()> {
    let problems = setup::check(ns, &Intent::router(config)).await?;
    if problems.is_empty() {
        debug!("setup verified");
        return Ok(());
    }
    let exemption_missing = config.egress.iter().any(|pair| {
        firewall::router_nat_plan(config, pair.source.address)
            .iter()
            .any(|(purpose, rule)| {
                matches!(purpose, NatPurpose::Exempt(_))
                    && problems.iter().any(|p| p.ends_with(&rule.to_string()))
            })
    });
    let hint = match exemption_missing {
        true => {
            " (the metrics port's exemption needs EGRESS_METRICS_ADDRESS in the init container as in this one)"
        }
        false => "",
    };
    Err(Error::State(format!(
        "egress router setup is not in place (did the init container run with EGRESS_ROUTER_MODE=init?): {}{hint}",
        problems.join("; ")
    )))
}

/// Waits for SIGTERM or SIGINT, re-verifying the setup every [`CHECK_INTERVAL`] and
/// keeping the name entries' rules in step with DNS (SIGTERM leaves them in place).
async fn watch(config: &RouterConfig, ns: &Namespace) -> Result<()> {
    let mut shutdown = shutdown::on_signals()?;
    let state = names::state::NameState::new(names::follow::current(config, ns)?);
    names::follow::start(config, ns, state.clone(), shutdown.clone())?;
    let status = status::RouterStatus::new(config.clone(), state);
    let redirected = redirected_tcp_ports(&config.destinations);
    let serving = ops::start(config.metrics, &redirected, status, shutdown.clone())?.is_some();
    let unexempted = config.egress.iter().any(|pair| {
        let family = pair.family();
        config.metrics_exemption(family).is_none()
            && config
                .destinations
                .iter()
                .any(|d| d.is_fallback() && d.redirects(family))
    });
    let loopback_only =
        matches!(config.metrics, MetricsAddress::Set { ip: Some(ip), .. } if ip.is_loopback());
    if serving && unexempted && !loopback_only {
        warn!(
            "EGRESS_DESTINATION has a fallback entry: connections to the metrics port arriving on eth0 are redirected too; set EGRESS_METRICS_ADDRESS in the init container (and this one) to exempt its port, or probe with `egress-router check` and scrape from inside the pod"
        );
    }
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + CHECK_INTERVAL, CHECK_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown::requested(&mut shutdown) => break,
            _ = ticks.tick() => {
                if let Err(e) = probe(config, ns).await {
                    error!("{e}");
                    return Err(e);
                }
            }
        }
    }
    info!("exiting");
    Ok(())
}

/// The local TCP ports `EGRESS_DESTINATION` redirects: the endpoint cannot be reached
/// on them.
fn redirected_tcp_ports(destinations: &[Destination]) -> Vec<u16> {
    destinations
        .iter()
        .filter_map(|d| match d {
            Destination::Port {
                port,
                protocol: Protocol::Tcp,
                ..
            } => Some(*port),
            _ => None,
        })
        .collect()
}
