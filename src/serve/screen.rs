//! What a DNS answer may point at, judged the same way wherever a name is followed (the
//! DNS proxy's backends, the redirect's name entries): each address in its one spelling
//! ([`address::canonical`]), once; never one of the classes never dialed (unspecified,
//! multicast, broadcast, reserved, relays' tunnels), never loopback or link-local from
//! an answer, never an address of the pod itself; then whatever the role adds (its
//! families, its own listeners). And at most [`MAX_ADDRESSES`] of them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::config::address::{self, Class, OwnSockets};

/// The most addresses of one name that are used; of a longer answer, the lowest in
/// address order (see [`bounded`]).
pub const MAX_ADDRESSES: usize = 64;

/// The addresses of `found` that may be used, in answer order, each with none of the
/// reasons above, and `also` (the role's own judgement) passing; with them, each
/// address left out and why. `pod` is the pod's addresses now (canonical).
pub fn screen(
    found: &[IpAddr],
    pod: &[IpAddr],
    also: impl Fn(IpAddr) -> Result<(), String>,
) -> Screened {
    let own = OwnSockets {
        ports: Vec::new(),
        addresses: pod.to_vec(),
    };
    let mut screened = Screened::default();
    for address in found.iter().map(|a| address::canonical(*a)) {
        if screened.usable.contains(&address) || screened.refused.iter().any(|(a, _)| *a == address)
        {
            continue;
        }
        let verdict = match address::class(address) {
            Class::Never(kind) => Err(format!("{kind}, never dialed")),
            Class::LocalOnly { kind, .. } => Err(format!("{kind}, never dialed from a DNS answer")),
            Class::Dialable if own.is_pod_address(address) => {
                Err("an address of this pod, never dialed".into())
            }
            Class::Dialable => also(address),
        };
        match verdict {
            Ok(()) => screened.usable.push(address),
            Err(reason) => screened.refused.push((address, reason)),
        }
    }
    screened
}

/// What [`screen`] made of an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screened {
    /// The addresses that may be used.
    pub usable: Vec<IpAddr>,
    /// The addresses left out, each with its reason.
    pub refused: Vec<(IpAddr, String)>,
}

impl Screened {
    /// The addresses left out and their reasons, for a log line or an error.
    pub fn describe_refused(&self) -> String {
        let shown: Vec<String> = self
            .refused
            .iter()
            .map(|(address, reason)| format!("{address}: {reason}"))
            .collect();
        shown.join("; ")
    }
}

/// `addresses` each once, in their order, at most [`MAX_ADDRESSES`]; of more, the
/// lowest in address order, so that the choice is the same whichever order a server
/// rotates its answer into. Also how many distinct addresses were left out.
pub fn bounded(addresses: &[IpAddr]) -> (Vec<IpAddr>, usize) {
    let distinct: BTreeSet<IpAddr> = addresses.iter().copied().collect();
    let left_out = distinct.len().saturating_sub(MAX_ADDRESSES);
    let kept: BTreeSet<IpAddr> = distinct.into_iter().take(MAX_ADDRESSES).collect();
    let mut chosen: Vec<IpAddr> = Vec::with_capacity(kept.len());
    for address in addresses {
        if kept.contains(address) && !chosen.contains(address) {
            chosen.push(*address);
        }
    }
    (chosen, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_never_points_at_the_pod_loopback_link_local_or_nowhere() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let found = [
            "203.0.113.5",
            "::ffff:203.0.113.6",
            "203.0.113.5",
            "0.0.0.0",
            "127.0.0.1",
            "::1",
            "169.254.169.254",
            "fe80::1",
            "224.0.0.1",
            "ff02::1",
            "192.0.2.70",
            "2001:db8:2::5",
            "2001:db8:2::6",
        ]
        .map(ip);
        let no_v6 = |a: IpAddr| match a {
            IpAddr::V6(v6) if v6.segments()[7] == 6 => Err("no IPv6 here".to_string()),
            _ => Ok(()),
        };
        let screened = screen(&found, &[ip("192.0.2.70")], no_v6);
        assert_eq!(
            screened.usable,
            [ip("203.0.113.5"), ip("203.0.113.6"), ip("2001:db8:2::5")]
        );
        let reasons = screened.describe_refused();
        for expected in [
            "0.0.0.0: an unspecified",
            "127.0.0.1: a loopback address, never dialed from a DNS answer",
            "::1: a loopback address",
            "169.254.169.254: a link-local address, never dialed from a DNS answer",
            "fe80::1: a link-local address",
            "224.0.0.1: a multicast address, never dialed",
            "ff02::1: a multicast address",
            "192.0.2.70: an address of this pod, never dialed",
            "2001:db8:2::6: no IPv6 here",
        ] {
            assert!(reasons.contains(expected), "{expected:?} not in {reasons}");
        }
        assert_eq!(screened.refused.len(), 9, "each address judged once");
    }
}
