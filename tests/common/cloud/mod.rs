//! The cloud of the `routed` and `aws-elastic-ip` suites (SPEC section 11): a "cloud"
//! namespace playing an AWS VPC between two nodes and a server, driven by the EC2 API
//! of `tests/cloud/ec2.py` (moto's server, made to behave as EC2 where it matters),
//! which runs in it.
//!
//! ```text
//!  PREFIX-pa (pod on A)            PREFIX-na (node A)                PREFIX-cloud
//!  eth0 192.0.2.130/26 --- pa0 192.0.2.129/26
//!                                  eth0 192.0.2.10/25 ----------------- ca   (ENI A's MAC
//!                                       2001:db8:10::10/64                   and addresses)
//!                                  default via 192.0.2.1, fe80::1      lo 192.0.2.1/32,
//!  PREFIX-pb (pod on B)            PREFIX-nb (node B)                     203.0.113.100/32 (API)
//!  eth0 192.0.2.194/26 --- pb0 192.0.2.193/26                          ca, cb: fe80::1/64
//!                                  eth0 192.0.2.20/25 ----------------- cb   (ENI B's)
//!                                       2001:db8:10::20/64
//!                                                                      inet0 203.0.113.1/24 ---
//!  PREFIX-srv: eth0 203.0.113.5/24, 2001:db8:20::5/64 (the server) ----      2001:db8:20::1/64
//! ```
//!
//! Each node's `eth0` has the MAC of its ENI (tagged `cloud-link=ca` / `cb`), and a
//! rule that masquerades everything leaving by `eth0` (as a cloud network plugin's
//! SNAT does); IPv4 forwarding is off on the nodes until the plugin turns on what it
//! needs. The cloud delivers an address to the node whose ENI holds it, drops frames
//! from other MACs and packets from addresses the sending ENI does not hold, and
//! shows the servers an associated Elastic IP (198.51.100.x) instead of the private
//! address. Everything is removed on drop.
//!
//! - [`topology`]: the namespaces; [`api`]: the EC2 API's process, its faults and a
//!   client for the test's own calls; [`world`]: the VPC, ENIs and Elastic IP made
//!   through it; [`attach`]: the plugin's configurations and attachments on the nodes.

mod api;
mod attach;
mod topology;
mod world;

// Not every suite uses every module (see `common`).
#[allow(unused_imports)]
pub use self::{api::*, attach::*, topology::*, world::*};
