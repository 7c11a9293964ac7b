//! `EGRESS_METRICS_ADDRESS`: where the metrics and health endpoint listens (pure).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::config::names::parse_port;
use crate::config::vars::Vars;
use crate::error::{Error, Result};

/// The variable.
pub const VAR: &str = "EGRESS_METRICS_ADDRESS";
/// The port of the default address `:9090`.
pub const DEFAULT_PORT: u16 = 9090;

/// Where the endpoint listens, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAddress {
    /// Not set: `:9090` on every address. Yields to a port the role itself listens on.
    Default,
    /// Set: this port on every address (`:PORT`) or on one address (`IP:PORT`).
    Set {
        /// The address, `None` for every address.
        ip: Option<IpAddr>,
        /// The port.
        port: u16,
    },
    /// Set and empty: no endpoint.
    Off,
}

impl MetricsAddress {
    /// Reads [`VAR`]: unset, empty, `:PORT`, `IPV4:PORT` or `[IPV6]:PORT`.
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        let Some(text) = vars.raw(VAR) else {
            return Ok(MetricsAddress::Default);
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(MetricsAddress::Off);
        }
        let bad = || {
            Error::config(
                VAR,
                format!(
                    "{text:?} is not :PORT, IPV4:PORT or [IPV6]:PORT (port 1-65535), nor empty to turn the endpoint off"
                ),
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port = parse_port(port).filter(|p| *p != 0).ok_or_else(bad)?;
        let ip = match host {
            "" => None,
            _ => Some(
                match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                    Some(v6) => IpAddr::V6(v6.parse::<Ipv6Addr>().map_err(|_| bad())?),
                    None => IpAddr::V4(crate::config::names::parse_ipv4(host).ok_or_else(bad)?),
                },
            ),
        };
        if ip.is_some_and(|ip| ip.is_multicast() || ip.is_unspecified()) {
            return Err(Error::config(
                VAR,
                format!("{text:?}: give :{port} to listen on every address"),
            ));
        }
        Ok(MetricsAddress::Set { ip, port })
    }

    /// The port to listen on, given the ports the role serves on: `None` when the
    /// endpoint is off, or when the default port is one of the role's own (then the
    /// role keeps its port and the endpoint stays off; the caller warns). A set port
    /// that the role uses is an error.
    pub fn resolve(self, role_ports: &[u16]) -> Result<Option<(Option<IpAddr>, u16)>> {
        match self {
            MetricsAddress::Off => Ok(None),
            MetricsAddress::Default if role_ports.contains(&DEFAULT_PORT) => Ok(None),
            MetricsAddress::Default => Ok(Some((None, DEFAULT_PORT))),
            MetricsAddress::Set { port, .. } if role_ports.contains(&port) => Err(Error::config(
                VAR,
                format!(
                    "port {port} is also one this role uses (a proxy listener or a redirected port): pick another one"
                ),
            )),
            MetricsAddress::Set { ip, port } => Ok(Some((ip, port))),
        }
    }

    /// The listening address for a resolved `(ip, port)`; every address is `[::]`.
    pub fn socket(ip: Option<IpAddr>, port: u16) -> SocketAddr {
        SocketAddr::new(ip.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Option<&str>) -> Result<MetricsAddress> {
        let vars = match value {
            Some(v) => Vars::from_pairs([(VAR, v)]),
            None => Vars::from_pairs::<&str, &str>([]),
        };
        MetricsAddress::from_vars(&vars)
    }

    #[test]
    fn unset_is_the_default_empty_is_off() {
        assert_eq!(parse(None).unwrap(), MetricsAddress::Default);
        assert_eq!(parse(Some("")).unwrap(), MetricsAddress::Off);
        assert_eq!(parse(Some("  ")).unwrap(), MetricsAddress::Off);
    }

    #[test]
    fn accepts_every_address_one_ipv4_or_one_ipv6() {
        assert_eq!(
            parse(Some(":9100")).unwrap(),
            MetricsAddress::Set {
                ip: None,
                port: 9100
            }
        );
        assert_eq!(
            parse(Some("192.0.2.10:9090")).unwrap(),
            MetricsAddress::Set {
                ip: Some("192.0.2.10".parse().unwrap()),
                port: 9090
            }
        );
        assert_eq!(
            parse(Some("[::1]:9090")).unwrap(),
            MetricsAddress::Set {
                ip: Some("::1".parse().unwrap()),
                port: 9090
            }
        );
    }

    #[test]
    fn refuses_what_is_not_an_address_naming_the_variable() {
        for bad in [
            "9090",
            ":0",
            ":65536",
            ":+90",
            ":090",
            "localhost:9090",
            "::1:9090",
            "127.1:9090",
            "0.0.0.0:9090",
            "[::]:9090",
            "224.0.0.1:9090",
            "[::1]",
            ":",
        ] {
            let e = parse(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(VAR) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn the_default_yields_to_the_role_a_set_port_does_not() {
        assert_eq!(
            MetricsAddress::Default.resolve(&[8080]).unwrap(),
            Some((None, 9090))
        );
        assert_eq!(MetricsAddress::Default.resolve(&[9090]).unwrap(), None);
        assert_eq!(MetricsAddress::Off.resolve(&[]).unwrap(), None);
        let set = MetricsAddress::Set {
            ip: None,
            port: 8080,
        };
        assert!(set.resolve(&[8080]).unwrap_err().to_string().contains(VAR));
    }
}
