//! egress-router: gives Kubernetes pods a fixed, whitelisted source IP for
//! reaching outside servers. One binary plays every role (see [`role`]).
//!
//! Layout, from input to effect:
//! - [`vars`], [`config`], [`destination`]: configuration from an injectable
//!   key/value source into validated types (pure); [`names`] and [`address`]: one
//!   reading of host names, ports and addresses for every parser (pure).
//! - [`role`]: which role the environment selects (pure).
//! - [`firewall`], [`network::plan`]: what to change, as plain data (pure).
//! - [`netlink`], [`iptables`], [`arp`], [`sysctl`]: thin layers that read and
//!   change the network namespace.
//! - [`network`], [`router`]: orchestration with validation first and rollback
//!   of every applied step on failure.
//! - [`http_proxy`]: the HTTP proxy role; [`http_proxy::policy`] is its pure
//!   allow/deny decision.
//! - [`dns_proxy`]: the DNS (TCP forwarding) proxy role, with optional DNS answers.
//! - [`tunnel`], [`resolver`], [`process`]: what the proxies share: splice relay,
//!   resolv.conf resolver, signal-driven shutdown notice and descriptor limit.
//! - [`cni`]: the CNI plugin's invocation, configuration, NAT rules and answers
//!   as plain data (pure).
//! - [`error`]: the one error type.

pub mod address;
pub mod arp;
pub mod cni;
pub mod config;
pub mod destination;
pub mod dns_proxy;
pub mod error;
pub mod firewall;
pub mod http_proxy;
pub mod iptables;
pub mod names;
pub mod netlink;
pub mod network;
pub mod process;
pub mod resolver;
pub mod role;
pub mod router;
pub mod sysctl;
pub mod tunnel;
pub mod vars;
