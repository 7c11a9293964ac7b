//! The DNS proxy's variables (SPEC section 5), validated.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::destination::{self, Forwarder};
use crate::config::address;
use crate::config::list_file::ListVars;
use crate::config::metrics_address::MetricsAddress;
use crate::config::vars::{DurationRange, Vars};
use crate::error::{Error, Result};
use crate::serve::limits::ConnectionCap;

/// `EGRESS_DNS_PROXY_CONNECT_TIMEOUT`: 10 s, from 100 ms to 5 min.
pub const CONNECT_TIMEOUT: DurationRange = DurationRange::seconds(10, 100, 300);
/// `EGRESS_DNS_PROXY_IDLE_TIMEOUT`: 1 min, from 1 s to 24 h.
pub const IDLE_TIMEOUT: DurationRange = DurationRange::seconds(60, 1000, 86_400);
/// `EGRESS_DNS_PROXY_GRACE_PERIOD`: 25 s, from 1 s to 1 h.
pub const GRACE_PERIOD: DurationRange = DurationRange::seconds(25, 1000, 3600);
/// The variable of the connection cap.
pub const MAX_CONNECTIONS: &str = "EGRESS_DNS_PROXY_MAX_CONNECTIONS";
/// The list: `EGRESS_DNS_PROXY_DESTINATION` or a file named by `..._FILE`.
pub const LIST: ListVars = ListVars {
    inline: "EGRESS_DNS_PROXY_DESTINATION",
    file: "EGRESS_DNS_PROXY_DESTINATION_FILE",
};

/// Validated DNS proxy configuration.
#[derive(Debug, Clone)]
pub struct DnsProxyConfig {
    /// `EGRESS_DNS_PROXY_DESTINATION`.
    pub forwarders: Vec<Forwarder>,
    /// `EGRESS_DNS_PROXY_DESTINATION_FILE`: the file the list came from (watched), and
    /// the text it was read from.
    pub list_file: Option<(PathBuf, String)>,
    /// `EGRESS_DNS_PROXY_CONNECT_TIMEOUT` (10 s), per attempt.
    pub connect_timeout: Duration,
    /// `EGRESS_DNS_PROXY_IDLE_TIMEOUT` (1 min): a connection with no byte either way is closed.
    pub idle_timeout: Duration,
    /// `EGRESS_DNS_PROXY_MAX_CONNECTIONS` (4000, from 1 to 1,000,000), over all forwarders.
    pub max_connections: ConnectionCap,
    /// `EGRESS_DNS_PROXY_GRACE_PERIOD` (25 s).
    pub grace_period: Duration,
    /// `EGRESS_DNS_PROXY_ALLOW_UNRESOLVED`: start even when a name does not resolve yet.
    pub allow_unresolved: bool,
    /// `EGRESS_DNS_PROXY_ANSWER_ADDRESS`: answer A queries for the listed names with it.
    pub answer_address: Option<Ipv4Addr>,
    /// `EGRESS_DNS_PROXY_ANSWER_PORT` (53).
    pub answer_port: u16,
    /// `EGRESS_METRICS_ADDRESS`: the metrics and health endpoint.
    pub metrics: MetricsAddress,
    /// With high availability (`EGRESS_HA_VRID`): `EGRESS_SOURCE`, the only addresses
    /// dialed from.
    pub ha_sources: Option<Vec<std::net::IpAddr>>,
}

impl DnsProxyConfig {
    /// The list file, when the list is in one.
    pub fn list_path(&self) -> Option<&Path> {
        self.list_file.as_ref().map(|(path, _)| path.as_path())
    }

    /// Reads and validates the DNS proxy variables.
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        const ALLOW: &str = "EGRESS_DNS_PROXY_ALLOW_UNRESOLVED";
        const ANSWER: &str = "EGRESS_DNS_PROXY_ANSWER_ADDRESS";
        let (text, file) = LIST.read(vars)?;
        let forwarders = destination::parse_forwarders(&text)
            .map_err(|e| LIST.blame_file(e, file.as_deref()))?;
        let allow_unresolved = match vars.get(ALLOW).map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if ["1", "true", "yes"].contains(&v.as_str()) => true,
            Some(v) if ["0", "false", "no"].contains(&v.as_str()) => false,
            Some(v) => return Err(Error::config(ALLOW, format!("{v:?} is not true or false"))),
        };
        let answer_address = match vars.get(ANSWER).map(str::trim) {
            None => None,
            Some(text) => match text.parse::<Ipv4Addr>() {
                Ok(ip) if address::is_unicast(ip) => Some(ip),
                _ => {
                    return Err(Error::config(
                        ANSWER,
                        format!("{text:?} is not a unicast IPv4 address"),
                    ));
                }
            },
        };
        Ok(DnsProxyConfig {
            forwarders,
            list_file: file.map(|path| (path, text)),
            connect_timeout: vars.duration("EGRESS_DNS_PROXY_CONNECT_TIMEOUT", CONNECT_TIMEOUT)?,
            idle_timeout: vars.duration("EGRESS_DNS_PROXY_IDLE_TIMEOUT", IDLE_TIMEOUT)?,
            max_connections: ConnectionCap::from_vars(vars, MAX_CONNECTIONS, 4000)?,
            grace_period: vars.duration("EGRESS_DNS_PROXY_GRACE_PERIOD", GRACE_PERIOD)?,
            allow_unresolved,
            answer_address,
            answer_port: vars.number("EGRESS_DNS_PROXY_ANSWER_PORT", 53, 1, 65535)?,
            metrics: MetricsAddress::from_vars(vars)?,
            ha_sources: crate::config::ha::proxy_sources(vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_image_it_replaces() {
        let config = DnsProxyConfig::from_vars(&Vars::from_pairs([(
            "EGRESS_DNS_PROXY_DESTINATION",
            "80 203.0.113.5",
        )]))
        .unwrap();
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.max_connections.max, 4000);
        assert_eq!(config.grace_period, Duration::from_secs(25));
        assert!(!config.allow_unresolved);
        assert_eq!(config.answer_address, None);
        assert_eq!(config.answer_port, 53);
    }

    #[test]
    fn every_knob_is_validated_with_its_name() {
        for (var, value) in [
            ("EGRESS_DNS_PROXY_CONNECT_TIMEOUT", "fast"),
            ("EGRESS_DNS_PROXY_IDLE_TIMEOUT", "0"),
            ("EGRESS_DNS_PROXY_MAX_CONNECTIONS", "0"),
            ("EGRESS_DNS_PROXY_GRACE_PERIOD", "2h"),
            ("EGRESS_DNS_PROXY_IDLE_TIMEOUT", "10000000000000000000"),
            ("EGRESS_DNS_PROXY_ANSWER_PORT", "+53"),
            ("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "maybe"),
            ("EGRESS_DNS_PROXY_ANSWER_ADDRESS", "192.0.2.300"),
            ("EGRESS_DNS_PROXY_ANSWER_PORT", "70000"),
        ] {
            let vars = Vars::from_pairs([
                ("EGRESS_DNS_PROXY_DESTINATION", "80 203.0.113.5"),
                (var, value),
            ]);
            let err = DnsProxyConfig::from_vars(&vars).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{var}: ")) && err.contains(&format!("{value:?}")),
                "{err}"
            );
        }
        let allow = Vars::from_pairs([
            ("EGRESS_DNS_PROXY_DESTINATION", "80 203.0.113.5"),
            ("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "True"),
        ]);
        assert!(DnsProxyConfig::from_vars(&allow).unwrap().allow_unresolved);
    }
}
