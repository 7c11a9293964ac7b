//! The router role: init, legacy and unit-test modes, and the `redirect` main container.

use std::time::Duration;

use tracing::{debug, error, info};

use crate::config::router::{RouterConfig, RouterMode};
use crate::error::{Error, Result};
use crate::serve::process;
use crate::setup::firewall::{self, Rule};
use crate::setup::{self, Journal, MACVLAN};
use crate::sys::arp::{Announcement, ArpSocket};
use crate::sys::iptables::Backend;
use crate::sys::lock::NamespaceLock;
use crate::sys::netlink::Netlink;

/// Delay before the unsolicited ARP request that follows the first announcement.
pub const SECOND_ANNOUNCEMENT_DELAY: Duration = Duration::from_secs(2);
/// How often a running `legacy`/`redirect` container re-checks the setup.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// The lock that serializes setups in one network namespace (an abstract socket name).
pub const SETUP_LOCK: &str = "egress-router-setup";
/// How long a setup waits for another one in the same network namespace to finish.
pub const SETUP_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Runs the router role in the mode the configuration names.
pub async fn run(config: &RouterConfig) -> Result<()> {
    match config.mode {
        RouterMode::UnitTest => {
            for rule in nat_plan(config).unwrap_or_default() {
                println!("{rule}");
            }
            Ok(())
        }
        RouterMode::Init | RouterMode::HttpProxy | RouterMode::DnsProxy => {
            setup(config).await.map(drop)
        }
        RouterMode::Legacy => {
            let backend = setup(config).await?;
            watch(config, backend).await
        }
    }
}

/// One check of the setup made by init (a probe): every piece of it.
pub async fn check(config: &RouterConfig) -> Result<()> {
    let (backend, _) = Backend::detect(config.backend)?;
    probe(config, backend).await
}

/// The `redirect` main container: verify the setup made by init, then keep checking it.
pub async fn redirect(config: &RouterConfig) -> Result<()> {
    let (backend, reason) = Backend::detect(config.backend)?;
    debug!(backend = backend.name, reason, "iptables backend chosen");
    probe(config, backend).await?;
    info!(source = %config.source, backend = backend.name, "setup verified; waiting for SIGTERM");
    watch(config, backend).await
}

fn nat_plan(config: &RouterConfig) -> Option<Vec<Rule>> {
    config
        .mode
        .uses_nat()
        .then(|| firewall::nat_rules(config.source.address, &config.destinations))
}

/// Validates the namespace, then applies network, firewall and announcement, rolling
/// everything back if a step fails or the end check finds a piece missing. Setups in
/// one network namespace run one at a time. Returns the iptables backend used.
async fn setup(config: &RouterConfig) -> Result<Backend> {
    let Some(_lock) = NamespaceLock::acquire(SETUP_LOCK, SETUP_LOCK_WAIT).await? else {
        return Err(Error::State(format!(
            "another setup has been running in this network namespace for more than {} s (lock @{SETUP_LOCK} still held); nothing was changed",
            SETUP_LOCK_WAIT.as_secs()
        )));
    };
    let nl = Netlink::connect()?;
    let observed = setup::observe(&nl, config).await?;
    let steps = setup::plan(&observed, config)?;
    let (backend, reason) = Backend::detect(config.backend)?;
    info!(backend = backend.name, reason, "iptables backend chosen");
    let before = backend.save_all()?;
    let arp = ArpSocket::open(observed.macvlan.index)?;
    let nat = nat_plan(config);
    let script = firewall::restore_script(&before, nat.as_deref());
    debug!(steps = steps.len(), script, "setup plan");

    let mut journal = Journal::default();
    let applied = async {
        setup::apply(&nl, &steps, &mut journal).await?;
        let tables: &[&str] = if nat.is_some() {
            &["mangle", "nat"]
        } else {
            &["mangle"]
        };
        let undo = firewall::rollback_script(&before, tables);
        if let Err(e) = backend.restore(&script, true) {
            if !firewall::same_rules(&before, &backend.save_all()?, tables) {
                journal.firewall_applied(backend, undo);
            }
            return Err(e);
        }
        journal.firewall_applied(backend, undo);
        let missing = verify(&nl, config, backend).await?;
        if !missing.is_empty() {
            return Err(Error::State(format!(
                "setup applied but not in place: {}",
                missing.join("; ")
            )));
        }
        let (mac, address) = (observed.macvlan.mac, config.source.address);
        arp.announce(Announcement::Reply, mac, address)?;
        debug!(%address, "sent gratuitous ARP reply");
        if std::process::id() == 1 && config.mode != RouterMode::Legacy {
            // Every process of a PID namespace is killed when its PID 1 exits.
            info!("running as PID 1 of a container: the follow-up ARP request cannot outlive it");
            return Ok(());
        }
        spawn_second_announcement(&arp, observed.macvlan.index, mac, config)
    }
    .await;
    if let Err(cause) = applied {
        let rollback = journal.rollback(&nl).await;
        return Err(Error::Setup {
            cause: Box::new(cause),
            rollback,
        });
    }
    info!(
        source = %config.source,
        gateway = %config.gateway,
        mode = ?config.mode,
        nat_rules = nat.as_ref().map_or(0, Vec::len),
        network_changes = steps.len(),
        "egress router set up on {MACVLAN}"
    );
    Ok(backend)
}

/// Starts a detached copy of this binary that sends the unsolicited ARP request later,
/// on the socket `arp`, so that the caller's exit is not delayed.
fn spawn_second_announcement(
    arp: &ArpSocket,
    ifindex: u32,
    mac: [u8; 6],
    config: &RouterConfig,
) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this executable", e))?;
    let mac_text: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    let delay = SECOND_ANNOUNCEMENT_DELAY.as_millis().to_string();
    std::process::Command::new(exe)
        .args([
            "announce",
            "--socket-fd",
            &arp.share_with_child()?.to_string(),
        ])
        .args([
            "--ifindex",
            &ifindex.to_string(),
            "--mac",
            &mac_text.join(":"),
        ])
        .args([
            "--address",
            &config.source.address.to_string(),
            "--delay-ms",
            &delay,
        ])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map(|mut child| {
            // Reaps the helper in long-running modes; a short-lived caller exits without waiting.
            std::thread::spawn(move || child.wait());
        })
        .map_err(|e| Error::io("starting the delayed ARP announcement", e))
}

/// The hidden `announce` command: wait, then send one unsolicited ARP request on the
/// packet socket inherited as descriptor `socket_fd`.
pub fn announce_later(
    socket_fd: i32,
    ifindex: u32,
    mac: [u8; 6],
    address: std::net::Ipv4Addr,
    delay: Duration,
) -> Result<()> {
    let socket = ArpSocket::inherited(socket_fd, ifindex)?;
    std::thread::sleep(delay);
    socket.announce(Announcement::Request, mac, address)
}

/// Every piece of the setup that is not in place, each named: address, link, routes,
/// reply rule and table, sysctls, and every rule (`iptables -C`); the NAT rules and
/// forwarding only in the modes that use NAT. Empty when the setup is complete.
async fn verify(nl: &Netlink, config: &RouterConfig, backend: Backend) -> Result<Vec<String>> {
    let observed = setup::observe(nl, config).await?;
    let mut problems = setup::problems(&observed, config);
    let rules = firewall::all_rules(nat_plan(config).as_deref());
    for rule in backend.missing(&rules)? {
        problems.push(format!("{} rule missing: {rule}", rule.table));
    }
    Ok(problems)
}

/// [`verify`] as a probe: an error listing every problem, or `Ok` when there is none.
async fn probe(config: &RouterConfig, backend: Backend) -> Result<()> {
    let nl = Netlink::connect()?;
    let problems = verify(&nl, config, backend).await?;
    if problems.is_empty() {
        debug!("setup verified");
        Ok(())
    } else {
        Err(Error::State(format!(
            "egress router setup is not in place (did the init container run with EGRESS_ROUTER_MODE=init?): {}",
            problems.join("; ")
        )))
    }
}

/// Waits for SIGTERM or SIGINT, re-verifying the setup every [`CHECK_INTERVAL`].
async fn watch(config: &RouterConfig, backend: Backend) -> Result<()> {
    let mut shutdown = process::on_signals()?;
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + CHECK_INTERVAL, CHECK_INTERVAL);
    loop {
        tokio::select! {
            _ = process::requested(&mut shutdown) => break,
            _ = ticks.tick() => {
                if let Err(e) = probe(config, backend).await {
                    error!("{e}");
                    return Err(e);
                }
            }
        }
    }
    info!("exiting");
    Ok(())
}
