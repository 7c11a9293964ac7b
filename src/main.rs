//! Command line of egress-router: picks the role and reports errors as one line.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use egress_router::config::env_file;
use egress_router::config::router::{RouterConfig, RouterMode};
use egress_router::config::vars::Vars;
use egress_router::error::{Error, Result};
use egress_router::logging::LogSettings;
use egress_router::role::{Role, select_role};
use egress_router::{dns_proxy, http_proxy, router};

const ABOUT: &str =
    "Gives Kubernetes pods a fixed, whitelisted source IP for reaching outside servers.";

const AFTER_HELP: &str = "\
Without a subcommand the role comes from the environment, in this order:
  CNI_COMMAND set                            CNI plugin
  EGRESS_ROUTER_MODE or EGRESS_SOURCE set    router (mode from EGRESS_ROUTER_MODE, default legacy)
  EGRESS_HTTP_PROXY_DESTINATION[_FILE] set   HTTP proxy
  EGRESS_DNS_PROXY_DESTINATION[_FILE] set    DNS proxy

Router variables:
  EGRESS_SOURCE            address for macvlan0, optional /prefix (default /32, /128);
                           one a family: 203.0.113.99/24,2001:db8:1::99/64
  EGRESS_GATEWAY           next hop on macvlan0, one a family (IPv6 may be fe80::1)
  EGRESS_DESTINATION       redirect list, one entry a line: PORT tcp|udp IP [DESTPORT],
                           then at most one bare IP (fallback) a family; IPv4 or IPv6
                           (no brackets), of a family EGRESS_SOURCE has; or a host name
                           where IP stands (every family; init resolves it, the
                           redirect container follows it: docs/router.md)
  EGRESS_ROUTER_ALLOW_UNRESOLVED  false (default) | true: init succeeds while a name has
                           no usable address, its traffic refused until it resolves
  EGRESS_ROUTER_MODE       init | legacy | http-proxy | dns-proxy | unit-test
  EGRESS_ROUTER_DEBUG      non-empty: log every step at debug level
  EGRESS_ROUTER_IPTABLES_BACKEND  auto (default) | nft | legacy

High availability (VRRPv3 on macvlan0; init, legacy, redirect, and the proxies' `ha`
sidecar; the proxies themselves take EGRESS_HA_VRID and EGRESS_SOURCE):
  EGRESS_HA_VRID           1-255: set turns it on (pods sharing EGRESS_SOURCE share it)
  EGRESS_HA_PRIORITY       1-254 (default 100): the highest is master
  EGRESS_HA_ADVERT_INTERVAL  10ms-40s in multiples of 10ms (default 100ms)
  EGRESS_HA_PREEMPT        true | false (default): a higher priority takes over
  EGRESS_HA_PEERS          unicast peers (comma-separated; the pod's own is skipped)

Every role:
  EGRESS_LOG_FORMAT        text (default) | json: log line format
  EGRESS_METRICS_ADDRESS   :9090 (default) | :PORT | IPV4:PORT | [IPV6]:PORT | empty (off):
                           /metrics, /healthz, /readyz of the proxies, redirect, legacy
  RUST_LOG                 replaces the log filter (default warn,egress_router=info)

HTTP proxy: EGRESS_HTTP_PROXY_DESTINATION, EGRESS_HTTP_PROXY_MODE (enforce | report),
  EGRESS_HTTP_PROXY_TLS_SNI (enforce | off: a tunnel's TLS server name checked against
  the list), EGRESS_HTTP_PROXY_PORT and its timeouts and limits; DNS proxy:
  EGRESS_DNS_PROXY_DESTINATION and its knobs (see docs/dns-proxy.md). A list in a
  file instead: EGRESS_HTTP_PROXY_DESTINATION_FILE, EGRESS_DNS_PROXY_DESTINATION_FILE
  (followed while running; SIGHUP reloads).

CNI plugin: CNI_* and the configuration on stdin (docs/cni-plugin.md); interfaceType
  aws-elastic-ip reads credentials, region and endpoint from the AWS SDK's standard
  chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
  AWS_ENDPOINT_URL, AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, AWS_PROFILE and
  AWS_CONFIG_FILE, else the instance profile (IMDSv2; AWS_EC2_METADATA_DISABLED=true
  turns it off) (docs/cloud-egress.md).

Exit status: 0 on success, 2 for bad input, 1 for any other failure.";

#[derive(Parser)]
#[command(name = "egress-router", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Configure macvlan0 and NAT (mode from EGRESS_ROUTER_MODE unless --mode is given).
    Router {
        /// init | legacy | http-proxy | dns-proxy | unit-test
        #[arg(long, value_parser = parse_mode)]
        mode: Option<RouterMode>,
    },
    /// Main container of redirect mode: verify the init container's setup, stay up until SIGTERM.
    Redirect,
    /// Sidecar of the HTTP and DNS proxies with high availability (EGRESS_HA_VRID): VRRP
    /// for EGRESS_SOURCE, its endpoint on :9091 unless EGRESS_METRICS_ADDRESS is set.
    Ha,
    /// Check once that the init container's setup is in place (exit 0) or not (exit 1): a probe.
    Check,
    /// HTTP proxy (EGRESS_HTTP_PROXY_DESTINATION).
    HttpProxy,
    /// DNS (TCP forwarding) proxy (EGRESS_DNS_PROXY_DESTINATION).
    DnsProxy,
    /// CNI plugin (CNI_COMMAND, CNI_NETNS, CNI_IFNAME, config on stdin).
    Cni,
    /// Check the environment (or --env-file) as the container would read it: every
    /// problem at once, exit 0 (valid) or 1; changes nothing.
    Validate {
        /// Read the variables from this file (NAME=VALUE lines) instead of the environment.
        #[arg(long)]
        env_file: Option<PathBuf>,
        /// As `router --mode MODE`: check the router with this mode (EGRESS_ROUTER_MODE).
        #[arg(long)]
        mode: Option<String>,
    },
    /// Ask a running proxy to reload its list file now (SIGHUP): by default PID 1, the
    /// proxy of the container this runs in (`kubectl exec POD -- egress-router reload`).
    Reload {
        /// The proxy's process id.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        pid: i32,
    },
    /// Internal: send the delayed unsolicited ARP request and neighbour advertisement.
    #[command(hide = true)]
    Announce {
        #[arg(long, requires = "address")]
        socket_fd: Option<i32>,
        #[arg(long, requires = "socket_fd")]
        address: Option<Ipv4Addr>,
        #[arg(long, requires = "address6")]
        socket6_fd: Option<i32>,
        #[arg(long, requires = "socket6_fd")]
        address6: Option<Ipv6Addr>,
        #[arg(long)]
        ifindex: u32,
        #[arg(long, value_parser = parse_mac)]
        mac: MacArg,
        #[arg(long)]
        delay_ms: u64,
    },
}

#[derive(Clone, Copy)]
struct MacArg([u8; 6]);

fn parse_mode(text: &str) -> std::result::Result<RouterMode, String> {
    let vars = Vars::from_pairs([
        ("EGRESS_ROUTER_MODE", text),
        ("EGRESS_SOURCE", "192.0.2.1"),
        ("EGRESS_GATEWAY", "192.0.2.2"),
        ("EGRESS_DESTINATION", "192.0.2.3"),
    ]);
    RouterConfig::from_vars(&vars, None)
        .map(|c| c.mode)
        .map_err(|e| e.to_string())
}

fn parse_mac(text: &str) -> std::result::Result<MacArg, String> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| e.to_string())?;
    <[u8; 6]>::try_from(bytes)
        .map(MacArg)
        .map_err(|_| format!("{text:?} is not a MAC address"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Validate { env_file, mode }) = cli.command {
        return validate(env_file.as_deref(), mode.as_deref());
    }
    // The process's start time, for `process_start_time_seconds`: the metrics are made now.
    std::sync::LazyLock::force(&egress_router::ops::metrics::METRICS);
    let vars = Vars::from_process();
    if let Err(e) = vars.check_utf8() {
        return report(&e);
    }
    match LogSettings::from_vars(&vars) {
        Ok(settings) => egress_router::logging::init(&settings),
        Err(e) => return report(&e),
    }
    exit_on_panic();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return report(&Error::io("starting the async runtime", e)),
    };
    match runtime.block_on(dispatch(cli.command, &vars)) {
        Ok(()) => {
            egress_router::logging::flush();
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

/// `egress-router validate`: the problems on stdout, one a line, then a summary.
fn validate(env_file: Option<&Path>, mode: Option<&str>) -> ExitCode {
    let vars = match env_file {
        None => Vars::from_process(),
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("error: reading {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            };
            match env_file::parse(&text) {
                Ok(pairs) => Vars::from_pairs(pairs),
                Err(e) => {
                    println!("{}:{}: {}", path.display(), e.line, e.message);
                    println!("invalid: the env file cannot be read");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let vars = match mode {
        Some(mode) => vars.with("EGRESS_ROUTER_MODE", Some(mode)),
        None => vars,
    };
    let checked = egress_router::validate::validate(&vars);
    for problem in &checked.problems {
        println!("{problem}");
    }
    let role = match checked.role {
        Some(Role::Router) => "router configuration",
        Some(Role::HttpProxy) => "HTTP proxy configuration",
        Some(Role::DnsProxy) => "DNS proxy configuration",
        Some(Role::Cni) => "CNI plugin configuration",
        None => "no role selected",
    };
    match checked.problems.len() {
        0 => {
            println!("valid: {role}");
            ExitCode::SUCCESS
        }
        n => {
            println!(
                "invalid: {role}, {n} problem{}",
                if n == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

/// The error line, after the log lines still waiting (so the error comes last).
fn report(error: &Error) -> ExitCode {
    egress_router::logging::flush();
    if let Error::Usage(_) = error {
        eprintln!("{}\n", Cli::command().render_usage());
    }
    eprintln!("error: {error}");
    ExitCode::from(error.exit_code())
}

async fn dispatch(command: Option<Command>, vars: &Vars) -> Result<()> {
    let command = match command {
        Some(command) => command,
        None => match select_role(vars)? {
            Role::Router => Command::Router { mode: None },
            Role::HttpProxy => Command::HttpProxy,
            Role::DnsProxy => Command::DnsProxy,
            Role::Cni => Command::Cni,
        },
    };
    match command {
        Command::Router { mode } => router::run(&RouterConfig::from_vars(vars, mode)?).await,
        Command::Redirect => {
            router::redirect(&RouterConfig::from_vars(vars, Some(RouterMode::Init))?).await
        }
        Command::Ha => {
            router::sidecar(&RouterConfig::from_vars(vars, Some(RouterMode::HttpProxy))?).await
        }
        Command::Check => {
            router::check(&RouterConfig::from_vars(vars, Some(RouterMode::Init))?).await
        }
        Command::HttpProxy => http_proxy::run(http_proxy::ProxyConfig::from_vars(vars)?).await,
        Command::DnsProxy => {
            dns_proxy::run(dns_proxy::config::DnsProxyConfig::from_vars(vars)?).await
        }
        Command::Cni => egress_router::cni::plugin::run(vars).await,
        Command::Validate { .. } => unreachable!("validate runs before the runtime starts"),
        Command::Reload { pid } => egress_router::serve::list_watch::request_reload(pid),
        Command::Announce {
            socket_fd,
            address,
            socket6_fd,
            address6,
            ifindex,
            mac,
            delay_ms,
        } => egress_router::setup::announce::announce_later(
            socket_fd.zip(address),
            socket6_fd.zip(address6),
            ifindex,
            mac.0,
            Duration::from_millis(delay_ms),
        ),
    }
}

/// A panic anywhere, also in a spawned task, ends the process with one error line and
/// exit status 1: a proxy whose task died must not stay up serving nothing, so the
/// kubelet sees the failure and restarts the container.
fn exit_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        egress_router::logging::flush();
        eprintln!("error: internal error, exiting: {info}");
        std::process::exit(1);
    }));
}
