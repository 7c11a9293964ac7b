//! A real DNS server for the tests: dnsmasq in the server namespace on 203.0.113.53,
//! answering only for test names, and the router namespace's resolv.conf pointing at it.
//! The router reaches it through the egress network once set up; with
//! [`Dns::start_outside`] also before (through the node, as a cluster's pods reach the
//! outside: what init's lookups of `EGRESS_DESTINATION` names need).
//! Besides the fixed `RECORDS`, a test may keep names in a hosts file it rewrites while
//! dnsmasq runs (`set_hosts`), and may stop the server to simulate an outage.

use super::{ChildGuard, Topology};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

pub const DNS_IP: &str = "203.0.113.53";
/// Where [`Dns::start_v6`] runs the server.
pub const DNS_IP6: &str = "2001:db8:2::53";
pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// Zones dnsmasq answers for itself: any other name in them is NXDOMAIN at once.
const LOCAL_ZONES: &str = "/example.com/example.net/example.org/";

/// The test names. A name given twice has two addresses. The last three point where
/// a proxy must never go: an IPv4-mapped IPv6 address (AAAA), loopback, and the router
/// pod itself.
pub const RECORDS: [(&str, &str); 13] = [
    ("web.example.com", "203.0.113.5"),
    ("example.com", "203.0.113.5"),
    ("api.web.example.com", "203.0.113.7"),
    ("badexample.com", "203.0.113.5"),
    ("other.example.net", "203.0.113.6"),
    ("www.example.org", "203.0.113.6"),
    ("multi.example.org", "203.0.113.5"),
    ("multi.example.org", "203.0.113.7"),
    ("mixed.example.org", "203.0.113.5"),
    ("mixed.example.org", "203.0.113.6"),
    ("mapped.example.net", "::ffff:203.0.113.5"),
    ("loop.example.net", "127.0.0.1"),
    ("self.example.net", "192.0.2.70"),
];

/// dnsmasq and the router's `/etc/netns/<router ns>/resolv.conf`; dropping it stops
/// dnsmasq and removes that directory (`topology.sh down` does both too) and the
/// hosts file.
pub struct Dns {
    server: ChildGuard,
    netns_dir: PathBuf,
    /// dnsmasq's `--addn-hosts` file (outside /etc/netns: it must not become the
    /// router's /etc/hosts).
    hosts: PathBuf,
    /// The address dnsmasq listens on.
    listen: String,
}

impl Dns {
    pub fn start(topo: &Topology) -> Dns {
        Dns::start_with_hosts(topo, &[])
    }

    /// Like `start`, plus the (name, address) pairs of `hosts` from a file that
    /// `set_hosts` can rewrite. Their TTL is 0, like the host records'.
    pub fn start_with_hosts(topo: &Topology, hosts: &[(&str, &str)]) -> Dns {
        Dns::start_at(topo, hosts, DNS_IP)
    }

    /// Like `start_with_hosts`, reachable from the router before any setup too: the
    /// node routes the outside network (203.0.113.0/24) through the gateway and
    /// masquerades what leaves by its uplink, as a node does for its pods' own traffic.
    pub fn start_outside(topo: &Topology, hosts: &[(&str, &str)]) -> Dns {
        let route = "ip route add 203.0.113.0/24 via 198.51.100.1";
        let masquerade = "iptables-nft -t nat -A POSTROUTING -o uplink0 -j MASQUERADE";
        for command in [route, masquerade] {
            topo.sh("node", &command.split(' ').collect::<Vec<_>>());
        }
        Dns::start_at(topo, hosts, DNS_IP)
    }

    /// Like `start_with_hosts`, with the server on [`DNS_IP6`] alone (added to the
    /// server namespace, whose IPv6 must be on): what a router without an IPv4 path to
    /// the DNS server (an IPv6-only one) uses.
    pub fn start_v6(topo: &Topology, hosts: &[(&str, &str)]) -> Dns {
        topo.sh(
            "server",
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{DNS_IP6}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
        Dns::start_at(topo, hosts, DNS_IP6)
    }

    fn start_at(topo: &Topology, hosts: &[(&str, &str)], listen: &str) -> Dns {
        assert!(
            std::path::Path::new(DNSMASQ).exists(),
            "{DNSMASQ} missing: apt-get install dnsmasq-base (tests/run.sh does)"
        );
        let mut args = vec![
            DNSMASQ.to_string(),
            "--no-daemon".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--conf-file=/dev/null".into(),
            "--pid-file=".into(),
            "--user=root".into(),
            "--port=53".into(),
            format!("--listen-address={listen}"),
            "--bind-interfaces".into(),
            format!("--local={LOCAL_ZONES}"),
        ];
        args.extend(
            RECORDS
                .iter()
                .map(|(name, ip)| format!("--host-record={name},{ip}")),
        );
        let hosts_file = std::env::temp_dir().join(format!("{}-dnsmasq.hosts", topo.prefix));
        write_hosts(&hosts_file, hosts);
        args.push(format!("--addn-hosts={}", hosts_file.display()));
        let server = topo.spawn("server", &args, &[]);

        let netns_dir = PathBuf::from(format!("/etc/netns/{}", topo.ns("router")));
        assert!(
            !netns_dir.exists(),
            "{} exists already: left over from another run?",
            netns_dir.display()
        );
        let dns = Dns {
            server,
            netns_dir,
            hosts: hosts_file,
            listen: listen.to_string(),
        };
        std::fs::create_dir_all(&dns.netns_dir).unwrap();
        std::fs::write(
            dns.netns_dir.join("resolv.conf"),
            format!("nameserver {listen}\noptions timeout:2 attempts:2\n"),
        )
        .unwrap();

        // ready when it answers, through the router's real path (macvlan0, gateway; or
        // the node's, before the setup)
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let server = listen.to_string();
            let got = topo.with_ns("router", move || query_a(&server, "web.example.com"));
            match got {
                Ok(addrs) if addrs == [Ipv4Addr::new(203, 0, 113, 5)] => break,
                other if Instant::now() >= end => panic!(
                    "dnsmasq on {listen} did not answer web.example.com -> 203.0.113.5 \
                     from the router namespace: {other:?}\ndnsmasq stderr:\n{}",
                    dns.server.stderr()
                ),
                _ => thread::sleep(Duration::from_millis(100)),
            }
        }
        dns
    }

    /// Replace the names of the hosts file and make dnsmasq reread it (SIGHUP); returns
    /// once every name in `hosts` answers with exactly its addresses, A and AAAA (at
    /// most 5 s).
    pub fn set_hosts(&self, topo: &Topology, hosts: &[(&'static str, &'static str)]) {
        write_hosts(&self.hosts, hosts);
        self.server.signal(libc::SIGHUP);
        let hosts = hosts.to_vec();
        let end = Instant::now() + Duration::from_secs(5);
        for (name, _) in &hosts {
            let mut want: Vec<IpAddr> = hosts
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, ip)| ip.parse().unwrap())
                .collect();
            want.sort();
            loop {
                let (name, server) = (*name, self.listen.clone());
                let v6 = want.iter().any(IpAddr::is_ipv6);
                let got = topo.with_ns("router", move || query_all(&server, name, v6));
                match got.map(|mut addrs| {
                    addrs.sort();
                    addrs
                }) {
                    Ok(addrs) if addrs == want => break,
                    other if Instant::now() >= end => {
                        panic!(
                            "after SIGHUP dnsmasq answers {name} with {other:?}, not {want:?}\n\
                             dnsmasq stderr:\n{}",
                            self.server.stderr()
                        )
                    }
                    _ => thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }

    /// Replaces the router namespace's resolv.conf with `text`.
    pub fn set_resolv_conf(&self, text: &str) {
        std::fs::write(self.netns_dir.join("resolv.conf"), text).unwrap();
    }

    /// Stop the server: names no longer resolve (queries go unanswered).
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

fn write_hosts(path: &std::path::Path, hosts: &[(&str, &str)]) {
    let text: String = hosts.iter().map(|(n, ip)| format!("{ip} {n}\n")).collect();
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.server.stop();
        let _ = std::fs::remove_dir_all(&self.netns_dir);
        let _ = std::fs::remove_file(&self.hosts);
    }
}

/// One A query over UDP (1 s, 2 tries): the IPv4 addresses of the answer, or the error.
pub fn query_a(server: &str, name: &str) -> Result<Vec<Ipv4Addr>, String> {
    let found = query(server, name, 1)?;
    Ok(found
        .into_iter()
        .filter_map(|a| match a {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect())
}

/// An A and an AAAA query: every address of `name`; a failed AAAA query counts only
/// when `v6` (a name outside dnsmasq's own zones gets no AAAA answer at all).
pub fn query_all(server: &str, name: &str, v6: bool) -> Result<Vec<IpAddr>, String> {
    let mut found = query(server, name, 1)?;
    match query(server, name, 28) {
        Ok(more) => found.extend(more),
        Err(e) if v6 => return Err(e),
        Err(_) => {}
    }
    Ok(found)
}

/// One query of type `qtype` (1: A, 28: AAAA) over UDP (1 s, 2 tries): the addresses
/// of the answer, or the error.
fn query(server: &str, name: &str, qtype: u8) -> Result<Vec<IpAddr>, String> {
    let id: u16 = 0x4567;
    let mut q = id.to_be_bytes().to_vec();
    q.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend(label.as_bytes());
    }
    q.extend([0, 0, qtype, 0, 1]); // root, type, class IN

    let any = if server.contains(':') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let s = UdpSocket::bind(any).map_err(|e| e.to_string())?;
    s.connect((server, 53)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 1500];
    let mut last = String::from("no answer");
    for _ in 0..2 {
        s.send(&q).map_err(|e| e.to_string())?;
        match s.recv(&mut buf) {
            Ok(n) if n >= 12 && buf[..2] == id.to_be_bytes() => {
                return parse_answer(&buf[..n], q.len());
            }
            Ok(n) => last = format!("bad answer of {n} bytes"),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

fn parse_answer(msg: &[u8], question_end: usize) -> Result<Vec<IpAddr>, String> {
    let rcode = msg[3] & 0x0f;
    if rcode != 0 {
        return Err(format!("rcode {rcode}"));
    }
    let count = u16::from_be_bytes([msg[6], msg[7]]);
    let mut at = question_end; // the question comes back as sent; answers follow it
    let mut addrs = Vec::new();
    for _ in 0..count {
        // name: a pointer (2 bytes) or labels ending in 0
        while at < msg.len() && msg[at] != 0 && msg[at] & 0xc0 != 0xc0 {
            at += 1 + msg[at] as usize;
        }
        at += if msg.get(at).is_some_and(|b| b & 0xc0 == 0xc0) {
            2
        } else {
            1
        };
        let fixed = msg.get(at..at + 10).ok_or("short answer")?;
        let (rtype, len) = (
            u16::from_be_bytes([fixed[0], fixed[1]]),
            u16::from_be_bytes([fixed[8], fixed[9]]) as usize,
        );
        let data = msg.get(at + 10..at + 10 + len).ok_or("short answer")?;
        match (rtype, len) {
            (1, 4) => addrs.push(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))),
            (28, 16) => {
                let octets: [u8; 16] = data.try_into().unwrap();
                addrs.push(IpAddr::V6(Ipv6Addr::from(octets)));
            }
            _ => {}
        }
        at += 10 + len;
    }
    Ok(addrs)
}
