//! Test harness: network namespaces built by `tests/topology.sh` (`topology`), the
//! binary and other commands run inside them (`process`, `env`), tiny TCP/UDP servers
//! and clients bound to a namespace (`servers`, `clients`), snapshots of a namespace's
//! network state (`snapshot`), shared assertions and waits (`checks`) and what every
//! root test takes first (`root`). `dns`: a DNS server for test names; `egress_lan`:
//! connection attempts from the egress LAN; `ha`: the high-availability LAN (several
//! router pods on one segment); `http`:
//! HTTP/1.1 client and origin server for the proxy tests; `ipv6`: IPv6 added to the
//! topology; `lists`: list files and the reloads they cause; `proxy`: checks shared by the
//! proxy roles (idle timeout, SIGTERM); `cni`:
//! the CNI plugin run as a runtime runs it, and its pods; `cloud`: a VPC of two nodes
//! driven by an EC2 API, for the routed kinds; `monitoring`: the alert rules, the
//! dashboard and `promtool`; `promql`: the metric names an expression selects;
//! `prometheus`: a real Prometheus server in a namespace of the topology.
//!
//! Every item of these modules but `dns`, `egress_lan`, `ha`, `http`, `ipv6`, `lists`,
//! `proxy`, `cni`, `cloud`, `monitoring`, `promql` and `prometheus` is
//! re-exported here, so a suite takes them with `use common::*`.
//!
//! Only documentation addresses are used (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//! 2001:db8::/32), always inside namespaces created by the test itself.
#![allow(dead_code)]

pub mod cloud;
pub mod cni;
pub mod dns;
pub mod egress_lan;
pub mod ha;
pub mod http;
pub mod ipv6;
pub mod lists;
pub mod monitoring;
pub mod prometheus;
pub mod promql;
pub mod proxy;

mod checks;
mod clients;
mod env;
mod process;
mod root;
mod servers;
mod snapshot;
mod topology;

// Not every suite uses every module: an unused re-export is no defect, as dead code above.
#[allow(unused_imports)]
pub use self::{
    checks::*, clients::*, env::*, process::*, root::*, servers::*, snapshot::*, topology::*,
};

/// The script that builds and removes the test topology.
pub const TOPOLOGY_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/topology.sh");
/// The `PATH` every command of the tests runs with.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The router's `EGRESS_SOURCE` in the topology.
pub const SOURCE: &str = "198.51.100.99";
/// The router's `EGRESS_GATEWAY` in the topology.
pub const GATEWAY: &str = "198.51.100.1";
/// The router pod's `eth0` address.
pub const ROUTER_IP: &str = "192.0.2.70";
/// The client's address.
pub const CLIENT_IP: &str = "192.0.2.10";

/// The destination list used by the good cases: comment, blank line and fallback included.
pub const DESTINATION: &str = "80 tcp 203.0.113.5\n\
                               8080 tcp 203.0.113.6 80\n\
                               53 udp 203.0.113.5 5353\n\
                               # a comment\n\
                               \n\
                               203.0.113.7\n";

/// The NAT rules `DESTINATION` + `SOURCE` must produce (SPEC section 3), in order.
pub const PLANNED_RULES: [&str; 5] = [
    "-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.5",
    "-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 203.0.113.6:80",
    "-A PREROUTING -i eth0 -p udp --dport 53 -j DNAT --to-destination 203.0.113.5:5353",
    "-A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7",
    "-A POSTROUTING -j SNAT --to-source 198.51.100.99",
];
