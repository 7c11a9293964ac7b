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
mod tests;
