//! egress-router: gives Kubernetes pods a fixed, whitelisted source IP for
//! reaching outside servers. One binary plays every role (see [`role`]).
//!
//! Layout, from input to effect (data flows down):
//! - [`config`]: configuration from an injectable key/value source into validated
//!   types (pure).
//! - [`role`]: which role the environment selects (pure).
//! - [`router`]: the router role (init, legacy, redirect, check), on [`setup`].
//! - [`setup`]: observe the namespace, plan the missing steps (pure), apply them with
//!   a journal that rolls back on failure.
//! - [`sys`]: thin layers that read and change the network namespace.
//! - [`http_proxy`], [`dns_proxy`]: the proxy roles, on [`serve`].
//! - [`serve`]: what the proxies share: listeners, cap, shutdown, relay, resolver.
//! - [`cni`]: the CNI plugin role; its invocation, configuration, NAT rules and
//!   answers are plain data (pure).
//! - [`ops`]: metrics, health and readiness on their own listener, beside a role.
//! - [`validate`]: every problem of an environment at once, for `egress-router validate`.
//! - [`vrrp`]: the VRRP version 3 protocol (pure); [`ha`]: the role that runs it.
//! - [`error`]: the one error type.

pub mod cni;
pub mod config;
pub mod dns_proxy;
pub mod error;
pub mod ha;
pub mod http_proxy;
pub mod logging;
pub mod ops;
pub mod role;
pub mod router;
pub mod serve;
pub mod setup;
pub mod sys;
pub mod validate;
pub mod vrrp;
