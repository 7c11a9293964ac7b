//! The egress LAN as an attacker sees the router: the gateway's namespace (`gw`, on
//! the link of the egress interface) trying connections in, directly to
//! `EGRESS_SOURCE` or, through a route via it, to the pod's `eth0` address and the
//! cluster network behind it.

use super::{SOURCE, Topology};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a connection attempt from the egress LAN is given: a guard that drops the
/// SYN makes it time out instead of being answered.
pub const ATTEMPT: Duration = Duration::from_secs(1);

/// Connects from namespace `role` to `address` (within [`ATTEMPT`]): whether the
/// connection was made.
pub fn connects(t: &Topology, role: &str, address: &str) -> bool {
    let address: SocketAddr = address.parse().unwrap();
    t.with_ns(role, move || {
        TcpStream::connect_timeout(&address, ATTEMPT).is_ok()
    })
}

/// Asserts that none of `addresses` can be connected to from the egress LAN.
pub fn assert_closed_from_egress_lan(t: &Topology, addresses: &[&str]) {
    for address in addresses {
        assert!(
            !connects(t, "gw", address),
            "{address} accepted a connection from the egress LAN\nstate:\n{}",
            t.dump()
        );
    }
}

/// The egress LAN routes the router pod's cluster subnet (192.0.2.64/26) via
/// `EGRESS_SOURCE`, as any host of that LAN can: packets for `eth0`'s address, or for
/// the node behind it, then arrive on the egress interface.
pub fn route_cluster_via_source(t: &Topology) {
    t.sh(
        "gw",
        &["ip", "route", "add", "192.0.2.64/26", "via", SOURCE],
    );
}
