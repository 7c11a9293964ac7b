//! High availability (SPEC section 12): the `EGRESS_HA_*` variables, read from a
//! [`Vars`] source into an [`HaConfig`] (pure). `EGRESS_HA_VRID` set means HA; every
//! other `EGRESS_HA_*` variable without it is an error, so a typo in the VRID's name
//! never leaves a pod that looks highly available and is not.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::address::{canonical, is_link_local_v6};
use crate::config::vars::{DurationRange, Vars};
use crate::error::{Error, Result};

/// `EGRESS_HA_VRID`: the virtual router's id, 1-255; set means HA.
pub const VRID: &str = "EGRESS_HA_VRID";
/// `EGRESS_HA_PRIORITY`: 1-254, default 100.
pub const PRIORITY: &str = "EGRESS_HA_PRIORITY";
/// `EGRESS_HA_ADVERT_INTERVAL`: 10ms-40s in multiples of 10 ms, default 100ms.
pub const ADVERT_INTERVAL: &str = "EGRESS_HA_ADVERT_INTERVAL";
/// `EGRESS_HA_PREEMPT`: `true` or `false` (default).
pub const PREEMPT: &str = "EGRESS_HA_PREEMPT";
/// `EGRESS_HA_PEERS`: unicast peers, separated by commas or white space.
pub const PEERS: &str = "EGRESS_HA_PEERS";

/// Every HA variable but the VRID, which turns the others on.
const OTHERS: [&str; 4] = [PRIORITY, ADVERT_INTERVAL, PREEMPT, PEERS];

/// The advertisement interval's default and range.
pub const INTERVAL_RANGE: DurationRange = DurationRange {
    default: Duration::from_millis(100),
    min: Duration::from_millis(10),
    max: Duration::from_secs(40),
};

/// The default priority (RFC 5798's).
pub const DEFAULT_PRIORITY: u8 = 100;

/// Validated HA settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// The virtual router id shared by the pods of one `EGRESS_SOURCE`.
    pub vrid: u8,
    /// This pod's priority: the highest wins the election (ties: the highest address).
    pub priority: u8,
    /// How often the master advertises.
    pub advert_interval: Duration,
    /// Whether a pod of higher priority takes over from a master of lower priority.
    pub preempt: bool,
    /// Unicast peers (empty: multicast to 224.0.0.18 and ff02::12); the pod's own
    /// address among them is skipped when sending.
    pub peers: Vec<IpAddr>,
}

impl HaConfig {
    /// Reads the HA variables: `None` when `EGRESS_HA_VRID` is not set (and no other
    /// HA variable is).
    pub fn from_vars(vars: &Vars) -> Result<Option<HaConfig>> {
        if !vars.is_set(VRID) {
            return match OTHERS.into_iter().find(|var| vars.is_set(var)) {
                Some(var) => Err(Error::config(
                    var,
                    format!("is set but {VRID} is not: high availability is off without it"),
                )),
                None => Ok(None),
            };
        }
        let vrid = vars.number(VRID, 1u8, 1, 255)?;
        let priority = vars.number(PRIORITY, DEFAULT_PRIORITY, 1, 254)?;
        let advert_interval = vars.duration(ADVERT_INTERVAL, INTERVAL_RANGE)?;
        if !advert_interval.as_millis().is_multiple_of(10) {
            let text = vars.get(ADVERT_INTERVAL).unwrap_or_default().trim();
            return Err(Error::config(
                ADVERT_INTERVAL,
                format!("{text:?} is not a multiple of 10ms (VRRP counts in centiseconds)"),
            ));
        }
        let preempt = vars.choice(PREEMPT, false, &[("true", true), ("false", false)])?;
        let peers = match vars.get(PEERS) {
            Some(text) => parse_peers(text)?,
            None => Vec::new(),
        };
        Ok(Some(HaConfig {
            vrid,
            priority,
            advert_interval,
            preempt,
            peers,
        }))
    }

    /// The advertisement interval in centiseconds, as VRRP carries it.
    pub fn interval_centis(&self) -> u16 {
        (self.advert_interval.as_millis() / 10) as u16
    }
}

/// What a proxy of a high-availability pod dials from: `EGRESS_SOURCE` (its addresses,
/// one a family), required when `EGRESS_HA_VRID` is set, because the proxy cannot
/// tell the shared source from the pod's own address on `macvlan0`; `None` without
/// high availability (the proxy finds its egress addresses on `macvlan0`).
pub fn proxy_sources(vars: &Vars) -> Result<Option<Vec<IpAddr>>> {
    if HaConfig::from_vars(vars)?.is_none() {
        return Ok(None);
    }
    const SOURCE: &str = "EGRESS_SOURCE";
    let text = vars.get(SOURCE).ok_or_else(|| {
        Error::config(
            SOURCE,
            format!(
                "is required with {VRID} in a proxy: it is the only address the proxy dials from"
            ),
        )
    })?;
    let mut sources: Vec<IpAddr> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let source = crate::config::router::parse_source_address(entry)
            .map_err(|reason| Error::config(SOURCE, reason))?;
        if sources
            .iter()
            .any(|s| s.is_ipv4() == source.address.is_ipv4())
        {
            return Err(Error::config(
                SOURCE,
                format!("{text:?}: give at most one address per family"),
            ));
        }
        sources.push(source.address);
    }
    Ok(Some(sources))
}

/// The peers of `EGRESS_HA_PEERS`: unicast addresses (IPv6 may be link-local, then on
/// `macvlan0`), each once.
fn parse_peers(text: &str) -> Result<Vec<IpAddr>> {
    let mut peers: Vec<IpAddr> = Vec::new();
    for word in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let bad = |why: &str| Error::config(PEERS, format!("{word:?} {why}"));
        let address: IpAddr = word
            .parse()
            .map_err(|_| bad("is not an IPv4 or IPv6 address"))?;
        let ordinary = match address {
            IpAddr::V4(v4) => crate::config::address::is_unicast(v4),
            IpAddr::V6(v6) => {
                !(v6.is_unspecified() || v6.is_loopback() || v6.is_multicast())
                    && (is_link_local_v6(address) || canonical(address).is_ipv6())
            }
        };
        if !ordinary {
            return Err(bad("is not a unicast address of a peer"));
        }
        if peers.contains(&address) {
            return Err(bad("is listed twice"));
        }
        peers.push(address);
    }
    if peers.is_empty() {
        return Err(Error::config(PEERS, "lists no address"));
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<HaConfig>> {
        HaConfig::from_vars(&Vars::from_pairs(pairs.iter().copied()))
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        read(pairs).unwrap_err().to_string()
    }

    #[test]
    fn unset_is_off_and_the_defaults_are_the_rfcs() {
        assert_eq!(read(&[]).unwrap(), None);
        let config = read(&[(VRID, "51")]).unwrap().unwrap();
        assert_eq!(
            config,
            HaConfig {
                vrid: 51,
                priority: 100,
                advert_interval: Duration::from_millis(100),
                preempt: false,
                peers: Vec::new(),
            }
        );
        assert_eq!(config.interval_centis(), 10);
    }

    #[test]
    fn every_variable_is_read() {
        let config = read(&[
            (VRID, "255"),
            (PRIORITY, "254"),
            (ADVERT_INTERVAL, "1s"),
            (PREEMPT, "TRUE"),
            (PEERS, "198.51.100.11, 198.51.100.12 fe80::2,2001:db8:1::12"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (config.vrid, config.priority, config.preempt),
            (255, 254, true)
        );
        assert_eq!(config.interval_centis(), 100);
        assert_eq!(config.peers.len(), 4);
        let longest = read(&[(VRID, "1"), (ADVERT_INTERVAL, "40s")])
            .unwrap()
            .unwrap();
        assert_eq!(longest.interval_centis(), 4000);
        let shortest = read(&[(VRID, "1"), (ADVERT_INTERVAL, "10ms")])
            .unwrap()
            .unwrap();
        assert_eq!(shortest.interval_centis(), 1);
    }

    #[test]
    fn a_proxy_with_ha_dials_from_egress_source_alone() {
        let vars = |pairs: &[(&str, &str)]| Vars::from_pairs(pairs.iter().copied());
        assert_eq!(
            proxy_sources(&vars(&[("EGRESS_SOURCE", "198.51.100.99")])).unwrap(),
            None
        );
        let both = vars(&[
            (VRID, "7"),
            ("EGRESS_SOURCE", "198.51.100.99/24, 2001:db8:1::99/64"),
        ]);
        assert_eq!(
            proxy_sources(&both).unwrap().unwrap(),
            [
                "198.51.100.99".parse::<IpAddr>().unwrap(),
                "2001:db8:1::99".parse().unwrap()
            ]
        );
        let missing = proxy_sources(&vars(&[(VRID, "7")]))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("EGRESS_SOURCE: is required with EGRESS_HA_VRID"),
            "{missing}"
        );
        let twice = vars(&[
            (VRID, "7"),
            ("EGRESS_SOURCE", "198.51.100.99,198.51.100.98"),
        ]);
        assert!(
            proxy_sources(&twice)
                .unwrap_err()
                .to_string()
                .contains("one address per family")
        );
        let bad = vars(&[(VRID, "0"), ("EGRESS_SOURCE", "198.51.100.99")]);
        assert!(
            proxy_sources(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("EGRESS_HA_VRID")
        );
    }

    #[test]
    fn bad_values_name_their_variable_and_value() {
        for (pairs, expected) in [
            (
                vec![(VRID, "0")],
                "EGRESS_HA_VRID: \"0\" is not a whole number from 1 to 255",
            ),
            (vec![(VRID, "256")], "EGRESS_HA_VRID: \"256\""),
            (
                vec![(VRID, "1"), (PRIORITY, "255")],
                "EGRESS_HA_PRIORITY: \"255\" is not a whole number from 1 to 254",
            ),
            (
                vec![(VRID, "1"), (PRIORITY, "0")],
                "EGRESS_HA_PRIORITY: \"0\"",
            ),
            (
                vec![(VRID, "1"), (ADVERT_INTERVAL, "5ms")],
                "EGRESS_HA_ADVERT_INTERVAL: \"5ms\" is out of range: from 10ms to 40s",
            ),
            (
                vec![(VRID, "1"), (ADVERT_INTERVAL, "41s")],
                "EGRESS_HA_ADVERT_INTERVAL: \"41s\" is out of range",
            ),
            (
                vec![(VRID, "1"), (ADVERT_INTERVAL, "105ms")],
                "EGRESS_HA_ADVERT_INTERVAL: \"105ms\" is not a multiple of 10ms",
            ),
            (
                vec![(VRID, "1"), (ADVERT_INTERVAL, "fast")],
                "EGRESS_HA_ADVERT_INTERVAL: \"fast\" is not a duration",
            ),
            (
                vec![(VRID, "1"), (PREEMPT, "yes")],
                "EGRESS_HA_PREEMPT: \"yes\" is not one of true, false",
            ),
            (
                vec![(VRID, "1"), (PEERS, "198.51.100.300")],
                "EGRESS_HA_PEERS: \"198.51.100.300\" is not an IPv4 or IPv6 address",
            ),
            (
                vec![(VRID, "1"), (PEERS, "224.0.0.18")],
                "EGRESS_HA_PEERS: \"224.0.0.18\" is not a unicast address of a peer",
            ),
            (
                vec![(VRID, "1"), (PEERS, "ff02::12")],
                "EGRESS_HA_PEERS: \"ff02::12\" is not a unicast",
            ),
            (
                vec![(VRID, "1"), (PEERS, "198.51.100.11,198.51.100.11")],
                "EGRESS_HA_PEERS: \"198.51.100.11\" is listed twice",
            ),
            (
                vec![(VRID, "1"), (PEERS, " , ")],
                "EGRESS_HA_PEERS: lists no address",
            ),
            (
                vec![(PRIORITY, "120")],
                "EGRESS_HA_PRIORITY: is set but EGRESS_HA_VRID is not",
            ),
            (
                vec![(PEERS, "198.51.100.11")],
                "EGRESS_HA_PEERS: is set but EGRESS_HA_VRID is not",
            ),
        ] {
            let found = error(&pairs);
            assert!(found.starts_with(expected), "{pairs:?}: {found}");
        }
        assert_eq!(crate::error::Error::config(VRID, "").exit_code(), 2);
    }
}
