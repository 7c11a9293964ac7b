//! One address, one spelling: the canonical form of an IP address, and the classes of
//! addresses a proxy never dials (or dials only when a rule names them), shared by
//! every list parser and both proxies.
//!
//! IPv6 forms that *are* an IPv4 address become that IPv4 address: IPv4-mapped
//! `::ffff:a.b.c.d` (an `AF_INET6` connect to it leaves as IPv4), IPv4-translated
//! `::ffff:0:a.b.c.d`, the deprecated IPv4-compatible `::a.b.c.d`, and the well-known
//! NAT64 prefix `64:ff9b::/96` (a translator turns it into that IPv4 address). IPv6
//! forms that carry an IPv4 address of a *relay* rather than of the destination
//! (6to4 `2002::/16`, Teredo `2001::/32`, local NAT64 prefixes `64:ff9b:1::/48`, whose
//! embedding depends on the operator's prefix length) are never dialed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The one spelling of `ip`: IPv6 forms that are an IPv4 address become IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    let s = v6.segments();
    let embedded = Ipv4Addr::from((u128::from(v6) & 0xffff_ffff) as u32);
    let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
    let translated = s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0;
    // `::` and `::1` are IPv6's own unspecified and loopback, not compatible forms.
    let compatible = s[..6] == [0; 6] && u32::from(embedded) > 1;
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if mapped || translated || compatible || nat64 {
        IpAddr::V4(embedded)
    } else {
        ip
    }
}

/// `net` in canonical form: an IPv6 network that lies inside one of the IPv4-carrying
/// prefixes of [`canonical`] becomes the IPv4 network it spells.
pub fn canonical_net(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else { return net };
    match canonical(IpAddr::V6(v6.network())) {
        IpAddr::V4(v4) if v6.prefix_len() >= 96 => {
            let prefix = v6.prefix_len() - 96;
            // The IPv4 network is the same set only when the IPv6 one ends in that prefix too.
            if canonical(IpAddr::V6(v6.broadcast())).is_ipv4() {
                ipnet::Ipv4Net::new(v4, prefix).map_or(net, |n| IpNet::V4(n.trunc()))
            } else {
                net
            }
        }
        _ => net,
    }
}

/// How a proxy may treat a (canonical) destination address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An ordinary unicast address: the rules decide.
    Dialable,
    /// Loopback or link-local: it never leaves the pod, or reaches only the node's
    /// link (cloud metadata services live there). Dialed only when an address rule
    /// inside `range` allows it; `*`, name rules and wider networks do not.
    LocalOnly {
        /// What kind of address it is, for the refusal reason.
        kind: &'static str,
        /// The range a granting rule must lie within.
        range: IpNet,
    },
    /// Never dialed, whatever the rules say.
    Never(&'static str),
}

/// The class of `ip`, which must be canonical (see [`canonical`]).
pub fn class(ip: IpAddr) -> Class {
    let net = |text: &str| text.parse::<IpNet>().expect("constant network");
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if a == 0 {
                Class::Never("an unspecified (\"this network\") address")
            } else if v4.is_broadcast() {
                Class::Never("the broadcast address")
            } else if v4.is_multicast() {
                Class::Never("a multicast address")
            } else if a >= 240 {
                Class::Never("a reserved (240.0.0.0/4) address")
            } else if a == 127 {
                Class::LocalOnly {
                    kind: "a loopback address",
                    range: net("127.0.0.0/8"),
                }
            } else if a == 169 && b == 254 {
                Class::LocalOnly {
                    kind: "a link-local address",
                    range: net("169.254.0.0/16"),
                }
            } else {
                Class::Dialable
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_unspecified() {
                Class::Never("the unspecified address")
            } else if v6.is_multicast() {
                Class::Never("a multicast address")
            } else if s[0] == 0x2002 {
                Class::Never("a 6to4 address (it tunnels to an IPv4 relay)")
            } else if s[0] == 0x2001 && s[1] == 0 {
                Class::Never("a Teredo address (it tunnels to an IPv4 relay)")
            } else if s[..3] == [0x64, 0xff9b, 1] {
                Class::Never("a local-use NAT64 address (64:ff9b:1::/48)")
            } else if v6.is_loopback() {
                Class::LocalOnly {
                    kind: "a loopback address",
                    range: net("::1/128"),
                }
            } else if s[0] & 0xffc0 == 0xfe80 {
                Class::LocalOnly {
                    kind: "a link-local address",
                    range: net("fe80::/10"),
                }
            } else {
                Class::Dialable
            }
        }
    }
}

/// The pod as a proxy sees it: its listening ports and the addresses of its network
/// namespace. No address of the pod is ever dialed (other containers of the pod listen
/// on them), and the proxy's own ports are never dialed on loopback either (a proxy
/// dialing itself loops); loopback's other ports only when a rule names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnSockets {
    /// The listening ports.
    pub ports: Vec<u16>,
    /// The addresses of the namespace, canonical.
    pub addresses: Vec<IpAddr>,
}

impl OwnSockets {
    /// Whether `address`:`port` reaches one of the proxy's own listeners.
    pub fn contains(&self, address: IpAddr, port: u16) -> bool {
        self.ports.contains(&port)
            && (address.is_loopback()
                || address.is_unspecified()
                || self.addresses.contains(&address))
    }

    /// Whether `address` (canonical) is one of the pod's own, other than loopback: never
    /// dialed, on any port.
    pub fn is_pod_address(&self, address: IpAddr) -> bool {
        !address.is_loopback() && self.addresses.contains(&address)
    }
}

/// The addresses of the current network namespace, canonical.
pub fn local_addresses() -> std::io::Result<Vec<IpAddr>> {
    Ok(interface_addresses()?
        .into_iter()
        .map(|(_, address)| canonical(address))
        .collect())
}

/// Every address of the current network namespace as the kernel lists it, with its
/// interface's name.
pub fn interface_addresses() -> std::io::Result<Vec<(String, IpAddr)>> {
    let mut found = Vec::new();
    for interface in nix::ifaddrs::getifaddrs()? {
        let Some(socket) = interface.address else {
            continue;
        };
        let address = match (socket.as_sockaddr_in(), socket.as_sockaddr_in6()) {
            (Some(v4), _) => IpAddr::V4(v4.ip()),
            (None, Some(v6)) => IpAddr::V6(v6.ip()),
            (None, None) => continue,
        };
        found.push((interface.interface_name, address));
    }
    Ok(found)
}

/// Whether `address` is an IPv6 link-local address (fe80::/10): every interface has
/// its own, so it names no network and leaves no link.
pub fn is_link_local_v6(address: IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

/// The IPv4 address an IPv6 spelling stands for, when it is one a host configures by
/// mistake: IPv4-mapped, IPv4-translated or IPv4-compatible (see [`canonical`]). The
/// NAT64 prefix is left out: behind a translator it is a real IPv6 destination.
pub fn ipv4_in_ipv6(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    match canonical(IpAddr::V6(v6)) {
        IpAddr::V4(v4) if v6.segments()[0] == 0 => Some(v4),
        _ => None,
    }
}

/// Whether `address` can be a host's IPv4 address in a configured list: not in
/// 0.0.0.0/8, 240.0.0.0/4 (broadcast included), multicast or loopback.
pub fn is_unicast(address: Ipv4Addr) -> bool {
    match class(IpAddr::V4(address)) {
        Class::Dialable => true,
        Class::LocalOnly { .. } => !address.is_loopback(),
        Class::Never(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_ipv4_carrying_spelling_is_the_ipv4_address() {
        for spelling in [
            "203.0.113.5",
            "::ffff:203.0.113.5",
            "::ffff:cb00:7105",
            "::ffff:0:203.0.113.5",
            "::203.0.113.5",
            "64:ff9b::203.0.113.5",
            "64:ff9b::cb00:7105",
        ] {
            assert_eq!(canonical(ip(spelling)), ip("203.0.113.5"), "{spelling}");
        }
        for own in [
            "::",
            "::1",
            "2001:db8::1",
            "2002:cb00:7105::1",
            "64:ff9b:1::1",
        ] {
            assert_eq!(canonical(ip(own)), ip(own), "{own}");
        }
    }

    #[test]
    fn networks_spelled_in_ipv6_become_ipv4_networks() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(
            canonical_net(net("::ffff:203.0.113.0/120")),
            net("203.0.113.0/24")
        );
        assert_eq!(canonical_net(net("64:ff9b::/96")), net("0.0.0.0/0"));
        assert_eq!(
            canonical_net(net("::ffff:203.0.113.5/128")),
            net("203.0.113.5/32")
        );
        for own in ["2001:db8::/32", "::/0", "::/96", "::ffff:0:0/95"] {
            assert_eq!(canonical_net(net(own)), net(own), "{own}");
        }
    }

    #[test]
    fn classes_of_special_addresses() {
        for never in [
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::",
            "ff02::1",
            "2002:cb00:7105::1",
            "2001:0:cb00:7105::1",
            "64:ff9b:1::cb00:7105",
        ] {
            assert!(
                matches!(class(canonical(ip(never))), Class::Never(_)),
                "{never}"
            );
        }
        for local in [
            "127.0.0.1",
            "127.9.9.9",
            "169.254.169.254",
            "::1",
            "fe80::1",
        ] {
            assert!(
                matches!(class(canonical(ip(local))), Class::LocalOnly { .. }),
                "{local}"
            );
        }
        for ok in ["203.0.113.5", "198.51.100.1", "2001:db8::1", "10.0.0.1"] {
            assert_eq!(class(ip(ok)), Class::Dialable, "{ok}");
        }
    }

    #[test]
    fn unicast_list_addresses_exclude_special_ones() {
        assert!(is_unicast("203.0.113.5".parse().unwrap()));
        assert!(is_unicast("169.254.1.1".parse().unwrap()));
        for bad in [
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "240.0.0.1",
            "224.0.0.1",
            "127.0.0.1",
        ] {
            assert!(!is_unicast(bad.parse().unwrap()), "{bad}");
        }
    }
}
