//! Which addresses the forwarders may dial: [`dialable`] screens a DNS answer as every
//! followed name is ([`screen`]: never an address of the pod, on any port; never
//! loopback or link-local from an answer), and never a family without an egress
//! address; [`Reach`] judges each dial again on the pod's current addresses.

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::address::OwnSockets;
use crate::serve::egress::Route;
use crate::serve::pod_addresses::{Listing, PodAddresses};
use crate::serve::resolver::Families;
pub use crate::serve::screen::Screened;
use crate::serve::screen::screen;
use crate::setup::MACVLAN;

/// The addresses of `found` (a DNS answer) that may be backends for `target_port`,
/// canonical, IPv4 preferred: when the router has an IPv4 egress address and the answer
/// a dialable IPv4 address, the IPv6 ones are left out. With them, each address left
/// out for a reason (never dialed, loopback or link-local, the pod's own, this proxy's
/// own listener, no egress address of its family) and that reason.
pub fn dialable(found: &[IpAddr], target_port: u16, reach: &Reach) -> Screened {
    let pod = reach.pod.now();
    let mut screened = screen(found, &pod.addresses, |address| {
        reach.route_in(&pod, address, target_port).map(drop)
    });
    if screened.usable.iter().any(IpAddr::is_ipv4) {
        screened.usable.retain(IpAddr::is_ipv4);
    }
    screened
}

/// What the forwarders may dial: never the pod itself (its addresses on any port, its
/// own listeners), and only addresses of a family that has an egress address (SPEC
/// section 10), both judged on the pod's current addresses.
#[derive(Debug, Clone)]
pub struct Reach {
    /// The proxy's own listening ports.
    pub own_ports: Vec<u16>,
    /// The pod's addresses and each family's egress address.
    pub pod: Arc<PodAddresses>,
}

impl Reach {
    /// How `address`:`port` (canonical) is dialed now, or why it is not.
    pub fn route(&self, address: IpAddr, port: u16) -> Result<Route, String> {
        self.route_in(&self.pod.now(), address, port)
    }

    /// [`Reach::route`] with the pod's addresses as `pod` lists them.
    fn route_in(&self, pod: &Listing, address: IpAddr, port: u16) -> Result<Route, String> {
        let own = OwnSockets {
            ports: self.own_ports.clone(),
            addresses: pod.addresses.clone(),
        };
        if own.is_pod_address(address) {
            return Err("an address of this pod, never dialed".into());
        }
        if own.contains(address, port) {
            return Err("this proxy's own listener, never dialed".into());
        }
        pod.egress.route(address)
    }

    /// The address records to ask for: those of the families the router has an egress
    /// address of (both when it has none, so that the answer says why nothing is dialed).
    pub fn families(&self) -> Families {
        let egress = self.pod.now().egress;
        match (egress.v4.is_some(), egress.v6.is_some()) {
            (true, false) => Families::V4,
            (false, true) => Families::V6,
            _ => Families::Both,
        }
    }

    /// Why [`Reach::families`] leaves a family out, for a failed lookup's message.
    pub fn unasked(&self) -> Option<String> {
        let (missing, records) = match self.families() {
            Families::V4 => ("IPv6", "AAAA"),
            Families::V6 => ("IPv4", "A"),
            Families::Both => return None,
        };
        Some(format!(
            "{MACVLAN} has no {missing} egress address, so {records} records are not asked for"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_that_point_at_the_pod_itself_or_nowhere_are_no_backends() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let reach = reach(Some("198.51.100.99"), None);
        let found = [
            "203.0.113.5",
            "::ffff:203.0.113.6",
            "0.0.0.0",
            "127.0.0.1",
            "::1",
            "169.254.169.254",
            "fe80::1",
            "224.0.0.1",
            "192.0.2.70",
            "198.51.100.99",
            "2002:cb00:7105::1",
            "2001:db8:2::5",
        ]
        .map(ip);
        let screened = dialable(&found, 5432, &reach);
        assert_eq!(screened.usable, vec![ip("203.0.113.5"), ip("203.0.113.6")]);
        let reasons = screened.describe_refused();
        for expected in [
            "0.0.0.0: an unspecified",
            "127.0.0.1: a loopback address, never dialed from a DNS answer",
            "169.254.169.254: a link-local address, never dialed from a DNS answer",
            "fe80::1: a link-local address, never dialed from a DNS answer",
            "224.0.0.1: a multicast address, never dialed",
            "192.0.2.70: an address of this pod, never dialed",
            "198.51.100.99: an address of this pod, never dialed",
            "2002:cb00:7105::1: a 6to4 address",
            "2001:db8:2::5: macvlan0 has no IPv6 egress address",
        ] {
            assert!(reasons.contains(expected), "{expected:?} not in {reasons}");
        }
        assert_eq!(
            dialable(&[ip("192.0.2.70")], 80, &reach).usable,
            Vec::<IpAddr>::new(),
            "no port of the pod is dialed"
        );
    }

    #[test]
    fn ipv4_is_preferred_and_each_family_is_asked_for_only_with_an_egress_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let dual = reach(Some("198.51.100.99"), Some("2001:db8:1::99"));
        let both = [ip("2001:db8:2::50"), ip("203.0.113.5")];
        assert_eq!(dialable(&both, 443, &dual).usable, vec![ip("203.0.113.5")]);
        assert_eq!(
            dialable(&both[..1], 443, &dual).usable,
            vec![ip("2001:db8:2::50")]
        );
        assert_eq!(dual.families(), Families::Both);
        let ipv6_only = reach(None, Some("2001:db8:1::99"));
        assert_eq!(ipv6_only.families(), Families::V6);
        assert_eq!(
            dialable(&both, 443, &ipv6_only).usable,
            vec![ip("2001:db8:2::50")]
        );
        assert_eq!(reach(Some("198.51.100.99"), None).families(), Families::V4);
        assert_eq!(
            reach(Some("198.51.100.99"), None).unasked().as_deref(),
            Some("macvlan0 has no IPv6 egress address, so AAAA records are not asked for")
        );
        assert_eq!(
            ipv6_only.unasked().as_deref(),
            Some("macvlan0 has no IPv4 egress address, so A records are not asked for")
        );
        assert_eq!(dual.unasked(), None);
    }

    /// A reach for a pod with eth0 192.0.2.70 and these egress addresses, proxy port 53.
    fn reach(v4: Option<&str>, v6: Option<&str>) -> Reach {
        use crate::serve::egress::EgressSources;
        let mut interfaces = vec![("eth0".to_string(), "192.0.2.70".parse().unwrap())];
        let egress = EgressSources {
            v4: v4.map(|a| a.parse().unwrap()),
            v6: v6.map(|a| a.parse().unwrap()),
            pinned: false,
        };
        interfaces.extend(egress.v4.map(|a| ("macvlan0".to_string(), IpAddr::V4(a))));
        interfaces.extend(egress.v6.map(|a| ("macvlan0".to_string(), IpAddr::V6(a))));
        Reach {
            own_ports: vec![53],
            pod: PodAddresses::fixed(Listing::new(interfaces, egress)),
        }
    }
}
