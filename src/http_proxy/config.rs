//! The HTTP proxy's variables, read and validated.

use std::path::PathBuf;
use std::time::Duration;

use super::policy::ListMode;
use super::rules::{self, Rule};
use super::sni::SniCheck;
use crate::config::list_file::ListVars;
use crate::config::metrics_address::MetricsAddress;
use crate::config::vars::{DurationRange, Vars};
use crate::error::Result;
use crate::serve::limits::ConnectionCap;

/// `EGRESS_HTTP_PROXY_CONNECT_TIMEOUT`: 10 s, from 100 ms to 5 min.
pub const CONNECT_TIMEOUT: DurationRange = DurationRange::seconds(10, 100, 300);
/// `EGRESS_HTTP_PROXY_HEADER_TIMEOUT`: 10 s, from 1 s to 10 min.
pub const HEADER_TIMEOUT: DurationRange = DurationRange::seconds(10, 1000, 600);
/// `EGRESS_HTTP_PROXY_IDLE_TIMEOUT`: 5 min, from 1 s to 24 h.
pub const IDLE_TIMEOUT: DurationRange = DurationRange::seconds(300, 1000, 86_400);
/// `EGRESS_HTTP_PROXY_GRACE_PERIOD`: 25 s, from 1 s to 1 h.
pub const GRACE_PERIOD: DurationRange = DurationRange::seconds(25, 1000, 3600);
/// The variable of the connection cap.
pub const MAX_CONNECTIONS: &str = "EGRESS_HTTP_PROXY_MAX_CONNECTIONS";
/// The list: `EGRESS_HTTP_PROXY_DESTINATION` or a file named by `..._FILE`.
pub const LIST: ListVars = ListVars {
    inline: "EGRESS_HTTP_PROXY_DESTINATION",
    file: "EGRESS_HTTP_PROXY_DESTINATION_FILE",
};

/// Validated HTTP proxy configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `EGRESS_HTTP_PROXY_DESTINATION`.
    pub rules: Vec<Rule>,
    /// `EGRESS_HTTP_PROXY_DESTINATION_FILE`: the file the rules came from (watched),
    /// and the text they were read from.
    pub list_file: Option<(PathBuf, String)>,
    /// `EGRESS_HTTP_PROXY_MODE` (`enforce`).
    pub list_mode: ListMode,
    /// `EGRESS_HTTP_PROXY_TLS_SNI` (`enforce`).
    pub tls_sni: SniCheck,
    /// `EGRESS_HTTP_PROXY_PORT` (8080).
    pub port: u16,
    /// `EGRESS_HTTP_PROXY_CONNECT_TIMEOUT` (10 s).
    pub connect_timeout: Duration,
    /// `EGRESS_HTTP_PROXY_HEADER_TIMEOUT` (10 s); also closes idle keep-alive connections.
    pub header_timeout: Duration,
    /// `EGRESS_HTTP_PROXY_IDLE_TIMEOUT` (300 s): connections and tunnels with no traffic either way.
    pub idle_timeout: Duration,
    /// `EGRESS_HTTP_PROXY_MAX_CONNECTIONS` (4000, from 1 to 1,000,000).
    pub max_connections: ConnectionCap,
    /// `EGRESS_HTTP_PROXY_MAX_HEADER_BYTES` (16384).
    pub max_header_bytes: usize,
    /// `EGRESS_HTTP_PROXY_GRACE_PERIOD` (25 s): how long open connections may finish after SIGTERM.
    pub grace_period: Duration,
    /// `EGRESS_METRICS_ADDRESS`: the metrics and health endpoint.
    pub metrics: MetricsAddress,
    /// With high availability (`EGRESS_HA_VRID`): `EGRESS_SOURCE`, the only addresses
    /// dialed from.
    pub ha_sources: Option<Vec<std::net::IpAddr>>,
}

impl ProxyConfig {
    /// Reads and validates the proxy variables.
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        let (text, file) = LIST.read(vars)?;
        let rules = rules::parse_rules(&text).map_err(|e| LIST.blame_file(e, file.as_deref()))?;
        Ok(ProxyConfig {
            rules,
            list_file: file.map(|path| (path, text)),
            list_mode: list_mode(vars)?,
            tls_sni: tls_sni(vars)?,
            port: vars.number("EGRESS_HTTP_PROXY_PORT", 8080, 1, 65535)?,
            connect_timeout: vars.duration("EGRESS_HTTP_PROXY_CONNECT_TIMEOUT", CONNECT_TIMEOUT)?,
            header_timeout: vars.duration("EGRESS_HTTP_PROXY_HEADER_TIMEOUT", HEADER_TIMEOUT)?,
            idle_timeout: vars.duration("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", IDLE_TIMEOUT)?,
            max_connections: ConnectionCap::from_vars(vars, MAX_CONNECTIONS, 4000)?,
            max_header_bytes: vars.number(
                "EGRESS_HTTP_PROXY_MAX_HEADER_BYTES",
                16384,
                8192,
                1 << 20,
            )?,
            grace_period: vars.duration("EGRESS_HTTP_PROXY_GRACE_PERIOD", GRACE_PERIOD)?,
            metrics: MetricsAddress::from_vars(vars)?,
            ha_sources: crate::config::ha::proxy_sources(vars)?,
        })
    }
}

/// `EGRESS_HTTP_PROXY_MODE`: `enforce` (default) or `report`, in any case.
fn list_mode(vars: &Vars) -> Result<ListMode> {
    vars.choice(
        "EGRESS_HTTP_PROXY_MODE",
        ListMode::Enforce,
        &[("enforce", ListMode::Enforce), ("report", ListMode::Report)],
    )
}

/// `EGRESS_HTTP_PROXY_TLS_SNI`: `enforce` (default) or `off`, in any case.
fn tls_sni(vars: &Vars) -> Result<SniCheck> {
    vars.choice(
        "EGRESS_HTTP_PROXY_TLS_SNI",
        SniCheck::Enforce,
        &[("enforce", SniCheck::Enforce), ("off", SniCheck::Off)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(value: &str) -> Result<ListMode> {
        list_mode(&Vars::from_pairs([("EGRESS_HTTP_PROXY_MODE", value)]))
    }

    #[test]
    fn the_list_mode_is_enforce_or_report() {
        assert_eq!(list_mode(&Vars::default()).unwrap(), ListMode::Enforce);
        assert_eq!(mode("enforce").unwrap(), ListMode::Enforce);
        assert_eq!(mode(" Report ").unwrap(), ListMode::Report);
        let e = mode("audit").unwrap_err().to_string();
        assert!(
            e.starts_with("EGRESS_HTTP_PROXY_MODE: ") && e.contains("\"audit\""),
            "{e}"
        );
    }

    #[test]
    fn the_tls_sni_check_is_enforce_or_off() {
        let check =
            |value: &str| tls_sni(&Vars::from_pairs([("EGRESS_HTTP_PROXY_TLS_SNI", value)]));
        assert_eq!(tls_sni(&Vars::default()).unwrap(), SniCheck::Enforce);
        assert_eq!(check("ENFORCE").unwrap(), SniCheck::Enforce);
        assert_eq!(check(" off ").unwrap(), SniCheck::Off);
        let e = check("report").unwrap_err().to_string();
        assert_eq!(
            e,
            "EGRESS_HTTP_PROXY_TLS_SNI: \"report\" is not one of enforce, off"
        );
    }

    #[test]
    fn defaults_match_the_documentation() {
        let config =
            ProxyConfig::from_vars(&Vars::from_pairs([("EGRESS_HTTP_PROXY_DESTINATION", "*")]))
                .unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.header_timeout, Duration::from_secs(10));
        assert_eq!(config.idle_timeout, Duration::from_secs(300));
        assert_eq!(
            config.max_connections,
            ConnectionCap {
                max: 4000,
                explicit: false
            }
        );
        assert_eq!(config.max_header_bytes, 16384);
        assert_eq!(config.grace_period, Duration::from_secs(25));
        assert_eq!(config.list_mode, ListMode::Enforce);
    }

    #[test]
    fn every_knob_is_validated_with_its_name() {
        for (var, value) in [
            ("EGRESS_HTTP_PROXY_PORT", "0"),
            ("EGRESS_HTTP_PROXY_CONNECT_TIMEOUT", "soon"),
            ("EGRESS_HTTP_PROXY_HEADER_TIMEOUT", "0"),
            ("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", "25h"),
            ("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", "10000000000000000000"),
            ("EGRESS_HTTP_PROXY_CONNECT_TIMEOUT", "50ms"),
            ("EGRESS_HTTP_PROXY_PORT", "+8080"),
            ("EGRESS_HTTP_PROXY_PORT", "08080"),
            ("EGRESS_HTTP_PROXY_MAX_CONNECTIONS", "0"),
            ("EGRESS_HTTP_PROXY_MAX_HEADER_BYTES", "100"),
            ("EGRESS_HTTP_PROXY_GRACE_PERIOD", "-1"),
            ("EGRESS_HTTP_PROXY_MODE", "audit"),
        ] {
            let vars = Vars::from_pairs([("EGRESS_HTTP_PROXY_DESTINATION", "*"), (var, value)]);
            let err = ProxyConfig::from_vars(&vars).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{var}: ")) && err.contains(&format!("{value:?}")),
                "{err}"
            );
        }
        let missing = ProxyConfig::from_vars(&Vars::default())
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("EGRESS_HTTP_PROXY_DESTINATION: "),
            "{missing}"
        );
    }
}
