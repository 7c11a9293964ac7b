//! IPv6 in the test topology where a dual-stack cluster has it (SPEC section 10): the
//! client pod (2001:db8:7::10) and the router pod's `eth0` (2001:db8:9::70), each with
//! a default route via the node; the node forwarding to the outside network
//! (2001:db8:1::/64, where `macvlan0` lives) through the gateway (2001:db8:1::1, also
//! fe80::1 on that link); the server (2001:db8:2::5, ::6, ::7) behind it. The gateway
//! routes the router pod's cluster prefix back (so a connection leaking out of `eth0`
//! would reach the server and show it a cluster address) but not the client's: a
//! reply to a client that took the egress path is lost.

use super::Topology;

pub const SERVER6: &str = "2001:db8:2::5";
pub const POD6: &str = "2001:db8:9::70";
pub const SOURCE6: &str = "2001:db8:1::99";

/// Switches IPv6 on and addresses every namespace of `t` as the module says; the
/// router's `macvlan0` is left to the setup.
pub fn enable(t: &Topology) {
    let on = [
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=0",
        "net.ipv6.conf.default.disable_ipv6=0",
    ];
    for ns in ["client", "router", "node", "gw", "server"] {
        t.sh(ns, &on);
    }
    for (ns, commands) in [
        (
            "client",
            &[
                "ip -6 addr add 2001:db8:7::10/64 dev eth0 nodad",
                "ip -6 route add default via 2001:db8:7::1 dev eth0",
            ][..],
        ),
        (
            "router",
            &[
                "ip -6 addr add 2001:db8:9::70/64 dev eth0 nodad",
                "ip -6 route add default via 2001:db8:9::1 dev eth0",
            ][..],
        ),
        (
            "node",
            &[
                "sysctl -qw net.ipv6.conf.all.forwarding=1",
                "ip -6 addr add 2001:db8:7::1/64 dev cl0 nodad",
                "ip -6 addr add 2001:db8:9::1/64 dev pod0 nodad",
                "ip -6 addr add 2001:db8:1::2/64 dev uplink0 nodad",
                "ip -6 route add default via 2001:db8:1::1",
            ][..],
        ),
        (
            "gw",
            &[
                "sysctl -qw net.ipv6.conf.all.forwarding=1",
                "ip -6 addr add 2001:db8:1::1/64 dev lan0 nodad",
                "ip -6 addr add fe80::1/64 dev lan0 nodad",
                "ip -6 addr add 2001:db8:2::1/64 dev wan0 nodad",
                "ip -6 route add 2001:db8:9::/64 via 2001:db8:1::2",
            ][..],
        ),
        (
            "server",
            &[
                "ip -6 addr add 2001:db8:2::5/64 dev eth0 nodad",
                "ip -6 addr add 2001:db8:2::6/64 dev eth0 nodad",
                "ip -6 addr add 2001:db8:2::7/64 dev eth0 nodad",
                "ip -6 route add default via 2001:db8:2::1",
            ][..],
        ),
    ] {
        for command in commands {
            t.sh(ns, &command.split(' ').collect::<Vec<_>>());
        }
    }
}

/// The server's answer line (`PEER LOCAL:PORT`, or socat's `[2001:0db8:...]`) reduced
/// to the peer address in its usual spelling.
pub fn peer(answer: &str) -> String {
    let first = answer.split_whitespace().next().unwrap_or("");
    let text = first.trim_start_matches('[').trim_end_matches(']');
    text.parse::<std::net::IpAddr>()
        .map_or_else(|_| answer.trim().to_string(), |a| a.to_string())
}

/// Sends one router advertisement from the gateway (fe80::1 on `lan0`) to all nodes
/// of the egress network: a default router for 30 minutes and the prefix
/// 2001:db8:1::/64 for address autoconfiguration (what an egress network's router may
/// announce on its own).
pub fn advertise_router(t: &Topology) {
    use nix::sys::socket::{
        AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn6, bind, sendto,
        setsockopt, socket, sockopt,
    };
    use std::net::{Ipv6Addr, SocketAddrV6};
    use std::os::fd::AsRawFd;
    let lan0: u32 = t
        .sh("gw", &["cat", "/sys/class/net/lan0/ifindex"])
        .trim()
        .parse()
        .unwrap();
    t.with_ns("gw", move || {
        let fd = socket(
            AddressFamily::Inet6,
            SockType::Raw,
            SockFlag::empty(),
            SockProtocol::IcmpV6,
        )
        .expect("raw ICMPv6 socket");
        setsockopt(&fd, sockopt::Ipv6MulticastHops, &255).unwrap();
        let from = SocketAddrV6::new("fe80::1".parse().unwrap(), 0, 0, lan0);
        bind(fd.as_raw_fd(), &SockaddrIn6::from(from)).expect("bind fe80::1%lan0");
        let mut message = vec![134u8, 0, 0, 0, 64, 0];
        message.extend(1800u16.to_be_bytes()); // router lifetime
        message.extend([0u8; 8]); // reachable time, retrans timer
        // prefix information: 2001:db8:1::/64, on-link and autonomous
        message.extend([3u8, 4, 64, 0xc0]);
        message.extend(86_400u32.to_be_bytes());
        message.extend(14_400u32.to_be_bytes());
        message.extend([0u8; 4]);
        message.extend("2001:db8:1::".parse::<Ipv6Addr>().unwrap().octets());
        let to = SocketAddrV6::new("ff02::1".parse().unwrap(), 0, 0, lan0);
        sendto(
            fd.as_raw_fd(),
            &message,
            &SockaddrIn6::from(to),
            MsgFlags::empty(),
        )
        .expect("send the router advertisement");
    });
}
