//! The router role: init, legacy and unit-test modes, and the `redirect` main container.

use std::time::Duration;

use tracing::{debug, error, info, warn};

pub mod names;
mod status;

use crate::config::metrics_address::MetricsAddress;
use crate::config::redirect::{Destination, Protocol};
use crate::config::router::{RouterConfig, RouterMode};
use crate::error::{Error, Result};
use crate::ha::{Ha, HaShared};
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
            let shutdown = shutdown::on_signals()?;
            let ha = start_ha(config, &shutdown).await?;
            watch(config, &ns, shutdown, ha).await
        }
    }
}

/// VRRP beside the checks, when `config` asks for high availability.
async fn start_ha(config: &RouterConfig, shutdown: &shutdown::Shutdown) -> Result<Option<Ha>> {
    match config.ha {
        Some(_) => Ha::start(config, shutdown.clone()).await.map(Some),
        None => Ok(None),
    }
}

/// One check of the setup made by init (a probe): every piece of it.
/// With high availability, a source on `macvlan0` counts as held (the probe cannot ask
/// the VRRP process): a master's setup is checked whole, a backup's without the source.
pub async fn check(config: &RouterConfig) -> Result<()> {
    let (ns, _) = Namespace::open(Netns::current()?, config.backend)?;
    if config.ha.is_none() {
        return probe(config, &ns, None).await;
    }
    let link = ns.nl.link(MACVLAN).await?;
    let mut held = Vec::new();
    for pair in &config.egress {
        if ns
            .nl
            .address_state(link.index, pair.source.address)
            .await?
            .is_some()
        {
            held.push(pair.family());
        }
    }
    let problems = setup::check(&ns, &Intent::router(config).holding(&held)).await?;
    match problems.is_empty() {
        true => Ok(()),
        false => Err(Error::State(format!(
            "egress router setup is not in place: {}",
            problems.join("; ")
        ))),
    }
}

/// The `redirect` main container: verify the setup made by init, then keep checking it.
pub async fn redirect(config: &RouterConfig) -> Result<()> {
    let (ns, reason) = Namespace::open(Netns::current()?, config.backend)?;
    debug!(backend = ns.backend.name, reason, "iptables backend chosen");
    let shutdown = shutdown::on_signals()?;
    // A leftover source (a killed master's) goes before the first check.
    let ha = start_ha(config, &shutdown).await?;
    probe(config, &ns, ha.as_ref().map(|ha| &*ha.shared)).await?;
    info!(source = %config.sources(), backend = ns.backend.name, "setup verified; waiting for SIGTERM");
    watch(config, &ns, shutdown, ha).await
}

/// The proxies' sidecar (`egress-router ha`): VRRP for the source their init container
/// prepared, with the checks of `redirect` and an operations endpoint of its own
/// (`:9091` unless `EGRESS_METRICS_ADDRESS` says otherwise).
pub async fn sidecar(config: &RouterConfig) -> Result<()> {
    if config.ha.is_none() {
        return Err(Error::config(
            crate::config::ha::VRID,
            "is required by `egress-router ha` but not set",
        ));
    }
    let mut config = config.clone();
    if config.metrics == MetricsAddress::Default {
        config.metrics = MetricsAddress::Set {
            ip: None,
            port: SIDECAR_METRICS_PORT,
        };
    }
    redirect(&config).await
}

/// The default port of the sidecar's operations endpoint (the proxy's is 9090).
pub const SIDECAR_METRICS_PORT: u16 = 9091;

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
    if config.ha.is_some() {
        crate::ha::check_own_address(&ns, config).await?;
    }
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

/// Every problem of the setup as a probe: an error listing them all, or `Ok`. With
/// high availability the source is judged held only on a master.
async fn probe(config: &RouterConfig, ns: &Namespace, ha: Option<&HaShared>) -> Result<()> {
    let problems = match ha {
        None => setup::check(ns, &Intent::router(config)).await?,
        Some(ha) => settled_check(config, ns, ha).await?,
    };
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

/// The check of an HA router as the instances' states are: run again when a transition
/// happened while it looked (at most a few times), so that a takeover or a release in
/// progress is never reported as a broken setup.
async fn settled_check(
    config: &RouterConfig,
    ns: &Namespace,
    ha: &HaShared,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for _ in 0..5 {
        let before = ha.generation();
        if before % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        problems = setup::check(ns, &Intent::router(config).holding(&ha.held())).await?;
        if problems.is_empty() || ha.generation() == before {
            break;
        }
    }
    Ok(problems)
}

/// Waits for SIGTERM or SIGINT, re-verifying the setup every [`CHECK_INTERVAL`] and
/// keeping the name entries' rules in step with DNS (SIGTERM leaves them in place);
/// with high availability, VRRP runs beside it and stops (a master handing over) first.
async fn watch(
    config: &RouterConfig,
    ns: &Namespace,
    mut shutdown: shutdown::Shutdown,
    ha: Option<Ha>,
) -> Result<()> {
    let shared = ha.as_ref().map(|ha| ha.shared.clone());
    let names = names::state::NameState::new(names::follow::current(config, ns)?);
    names::follow::start(config, ns, names.clone(), shutdown.clone())?;
    let status = status::RouterStatus::new(config.clone(), shared.clone(), names);
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
                if let Err(e) = probe(config, ns, shared.as_deref()).await {
                    error!("{e}");
                    return Err(e);
                }
            }
        }
    }
    if let Some(ha) = ha {
        ha.finished().await;
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
