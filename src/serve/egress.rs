//! Dialing out through the egress interface (SPEC section 10): each destination from
//! the egress address of its family on `macvlan0`, which the proxies find there (they
//! are not told `EGRESS_SOURCE`), and never through `eth0`.
//!
//! IPv4 leaves by the main table's default route, which the setup points at `macvlan0`
//! (the readiness check watches it). IPv6 is bound to the egress address and to
//! `macvlan0` itself (`SO_BINDTODEVICE`, unprivileged since Linux 5.7), because the
//! pod's IPv6 default route may lead to `eth0` (a router with no IPv6 source): without
//! an IPv6 egress address, an IPv6 destination is refused rather than dialed with a
//! cluster address. Only an address set by hand or by the setup counts, never one that
//! router advertisements configured on `macvlan0` (not whitelisted by anyone).
//!
//! With high availability (SPEC section 12) the proxy is told `EGRESS_SOURCE`: only it
//! is an egress address (never the pod's own IPAM address on `macvlan0`), whether this
//! pod holds it now or not, and every family is dialed bound to it on `macvlan0`, so
//! that on a backup (which holds it not, and whose default route leads to `eth0`) a
//! dial fails rather than leave from any other address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use tokio::net::{TcpSocket, TcpStream};

use crate::config::address::interface_addresses;
use crate::setup::MACVLAN;

/// The egress address of each family found on the egress interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressSources {
    /// Its IPv4 address.
    pub v4: Option<Ipv4Addr>,
    /// Its IPv6 address that is not link-local.
    pub v6: Option<Ipv6Addr>,
    /// Whether IPv4 too is dialed bound to its address on the egress interface (high
    /// availability: the address may not be there).
    pub pinned: bool,
}

/// The sources of a high-availability proxy, once set: the only egress addresses.
static HA_SOURCES: OnceLock<EgressSources> = OnceLock::new();

/// Makes `v4` and `v6` (`EGRESS_SOURCE`, with high availability) this process's only
/// egress addresses, dialed bound to them; the first call wins.
pub fn pin_sources(v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) {
    let _ = HA_SOURCES.set(EgressSources {
        v4,
        v6,
        pinned: true,
    });
}

/// Pins `sources` when given (see [`pin_sources`]).
pub fn pin(sources: Option<&[IpAddr]>) {
    let Some(sources) = sources else { return };
    let v4 = sources.iter().find_map(|s| match s {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    });
    let v6 = sources.iter().find_map(|s| match s {
        IpAddr::V6(v6) => Some(*v6),
        IpAddr::V4(_) => None,
    });
    pin_sources(v4, v6);
}

/// The pinned sources (high availability), if any.
pub fn pinned_sources() -> Option<EgressSources> {
    HA_SOURCES.get().copied()
}

/// How to dial one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// As the routing table says: IPv4 (the default route is the egress interface's) or
    /// loopback (it never leaves the pod).
    Table,
    /// From this address, on the egress interface (IPv6, and IPv4 with high
    /// availability).
    Bound(IpAddr),
}

impl EgressSources {
    /// The egress addresses among `addresses` (interface name, address), leaving out
    /// the IPv6 addresses in `unusable`.
    pub fn from_interfaces<'a>(
        addresses: impl IntoIterator<Item = (&'a str, IpAddr)>,
        unusable: &[Ipv6Addr],
    ) -> Self {
        let mut found = EgressSources::default();
        for (name, address) in addresses {
            match address {
                _ if name != MACVLAN => {}
                IpAddr::V4(v4) => {
                    found.v4.get_or_insert(v4);
                }
                IpAddr::V6(v6)
                    if !v6.is_unicast_link_local()
                        && !v6.is_loopback()
                        && !unusable.contains(&v6) =>
                {
                    found.v6.get_or_insert(v6);
                }
                IpAddr::V6(_) => {}
            }
        }
        found
    }

    /// The egress addresses among `addresses` as [`interface_addresses`] lists them;
    /// the IPv6 addresses of this namespace that are not usable egress addresses are
    /// read from the kernel (when that fails, no IPv6 address counts: fail closed).
    pub fn from_listing(addresses: &[(String, IpAddr)]) -> Self {
        if let Some(pinned) = pinned_sources() {
            return pinned;
        }
        let listed = addresses.iter().map(|(name, ip)| (name.as_str(), *ip));
        match std::fs::read_to_string(IF_INET6) {
            Ok(table) => Self::from_interfaces(listed, &unusable_ipv6(&table)),
            Err(_) => EgressSources {
                v6: None,
                ..Self::from_interfaces(listed, &[])
            },
        }
    }

    /// The egress addresses of this network namespace now.
    pub fn observe() -> std::io::Result<Self> {
        Ok(Self::from_listing(&interface_addresses()?))
    }

    /// How `destination` (canonical) is dialed, or why it is not: its family has no
    /// egress address. Loopback never leaves the pod; link-local IPv6 needs an
    /// interface of its own and is not dialed.
    pub fn route(&self, destination: IpAddr) -> Result<Route, String> {
        match destination {
            _ if destination.is_loopback() => Ok(Route::Table),
            IpAddr::V4(_) => match self.v4 {
                Some(v4) if self.pinned => Ok(Route::Bound(IpAddr::V4(v4))),
                Some(_) => Ok(Route::Table),
                None => Err(format!("{MACVLAN} has no IPv4 egress address")),
            },
            IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                Err(format!("{destination} is link-local: not dialed"))
            }
            IpAddr::V6(_) => self.v6.map(|v6| Route::Bound(v6.into())).ok_or_else(|| {
                format!(
                    "{MACVLAN} has no IPv6 egress address (the connection would leave through eth0)"
                )
            }),
        }
    }
}

/// The kernel's list of this network namespace's IPv6 addresses, with their flags.
const IF_INET6: &str = "/proc/net/if_inet6";

/// The addresses of an `/proc/net/if_inet6` table that are no egress address: not
/// permanent (configured from router advertisements, with a lifetime), tentative, or
/// found to be duplicates.
fn unusable_ipv6(table: &str) -> Vec<Ipv6Addr> {
    const DADFAILED: u32 = 0x08;
    const TENTATIVE: u32 = 0x40;
    const PERMANENT: u32 = 0x80;
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let address = u128::from_str_radix(fields.first()?, 16).ok()?;
            let flags = u32::from_str_radix(fields.get(4)?, 16).ok()?;
            let usable = flags & PERMANENT != 0 && flags & (TENTATIVE | DADFAILED) == 0;
            (!usable).then_some(Ipv6Addr::from(address))
        })
        .collect()
}

/// Whether `local`, the address a connection was made to, is one of the egress
/// interface's (any family or scope) among `addresses`: the outside network's side.
pub fn on_egress_side(local: IpAddr, addresses: &[(String, IpAddr)]) -> bool {
    let local = local.to_canonical();
    addresses
        .iter()
        .any(|(name, address)| name == MACVLAN && *address == local)
}

/// Connects to `destination` the way `route` says.
pub async fn connect(destination: SocketAddr, route: Route) -> std::io::Result<TcpStream> {
    match route {
        Route::Table => TcpStream::connect(destination).await,
        Route::Bound(source) => {
            let socket = match source {
                IpAddr::V4(_) => TcpSocket::new_v4()?,
                IpAddr::V6(_) => TcpSocket::new_v6()?,
            };
            socket.bind_device(Some(MACVLAN.as_bytes()))?;
            socket.bind(SocketAddr::new(source, 0))?;
            socket.connect(destination).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_family_leaves_from_its_egress_address_or_not_at_all() {
        let found = EgressSources::from_interfaces(
            [
                ("eth0", ip("192.0.2.70")),
                ("eth0", ip("2001:db8:9::70")),
                ("macvlan0", ip("fe80::1")),
                ("macvlan0", ip("198.51.100.99")),
                ("macvlan0", ip("2001:db8:1::99")),
            ],
            &[],
        );
        let v6: Ipv6Addr = "2001:db8:1::99".parse().unwrap();
        assert_eq!(found.v4, Some("198.51.100.99".parse().unwrap()));
        assert_eq!(found.v6, Some(v6));
        assert_eq!(found.route(ip("203.0.113.5")), Ok(Route::Table));
        assert_eq!(
            found.route(ip("2001:db8:2::5")),
            Ok(Route::Bound(v6.into()))
        );
        let pinned = EgressSources {
            pinned: true,
            ..found
        };
        assert_eq!(
            pinned.route(ip("203.0.113.5")),
            Ok(Route::Bound(ip("198.51.100.99"))),
            "with high availability IPv4 is bound to the source too"
        );
        assert!(found.route(ip("fe80::5")).is_err());

        let ipv4_only = EgressSources::from_interfaces(
            [
                ("eth0", ip("2001:db8:9::70")),
                ("macvlan0", ip("198.51.100.99")),
                ("macvlan0", ip("fe80::1")),
                ("macvlan0", ip("2001:db8:1:0:3cc9:5ff:fed7:4984")),
            ],
            &["2001:db8:1:0:3cc9:5ff:fed7:4984".parse().unwrap()],
        );
        assert_eq!(
            ipv4_only.v6, None,
            "neither a link-local nor an autoconfigured address is an egress address"
        );
        let refused = ipv4_only.route(ip("2001:db8:2::5")).unwrap_err();
        assert!(refused.contains("no IPv6 egress address"), "{refused}");
        assert_eq!(
            ipv4_only.route(ip("::1")),
            Ok(Route::Table),
            "loopback stays in the pod"
        );

        let on_macvlan = [
            ("macvlan0".to_string(), ip("198.51.100.99")),
            ("macvlan0".to_string(), ip("fe80::1")),
            ("eth0".to_string(), ip("192.0.2.70")),
        ];
        assert!(on_egress_side(ip("::ffff:198.51.100.99"), &on_macvlan));
        assert!(on_egress_side(ip("fe80::1"), &on_macvlan));
        assert!(!on_egress_side(ip("192.0.2.70"), &on_macvlan));

        let none = EgressSources::default();
        assert!(none.route(ip("203.0.113.5")).is_err());
        assert_eq!(none.route(ip("127.0.0.1")), Ok(Route::Table));
    }

    #[test]
    fn only_permanent_settled_ipv6_addresses_are_usable() {
        let table = "\
20010db8000100000000000000000099 05 40 00 80 macvlan0
20010db8000100003cc905fffed74984 05 40 00 100 macvlan0
20010db8000100000000000000000098 05 40 00 c0 macvlan0
20010db8000100000000000000000097 05 40 00 88 macvlan0
fe800000000000003cc905fffed74984 05 40 20 80 macvlan0
";
        let unusable = unusable_ipv6(table);
        let shown: Vec<String> = unusable.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "2001:db8:1:0:3cc9:5ff:fed7:4984",
                "2001:db8:1::98",
                "2001:db8:1::97"
            ],
            "autoconfigured, tentative, duplicate"
        );
    }
}
