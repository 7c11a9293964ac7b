//! The CNI plugin `egress-router` (SPEC section 7): the invocation and configuration
//! as validated data, the node-side choices and the NAT rules (pure), the JSON
//! answers, and the commands, which run on the same setup path as the router.
//!
//! - [`plugin`]: the entry point: request in, command, answer out.
//! - [`attach`]: ADD (after [`preflight`]: one egress-router setup a pod); [`detach`]:
//!   DEL and CHECK.
//! - [`host`]: master, gateway and interface names on the node (pure).
//! - [`routed`]: the node side of `routed` and `aws-elastic-ip` (a veth pair the
//!   node routes); [`aws`]: the EC2 side of `aws-elastic-ip`.
//! - [`request`]: `CNI_*` variables and stdin into a [`request::Request`].
//! - [`config`]: the network configuration ([`config::NetConf`]); [`ip`]: its `ip` /
//!   `podIP` part, the choice for a pod, and the plugin's NAT rules;
//!   [`json`]: strict JSON reading with errors naming the field.
//! - [`log_file`]: the `log_file` rules (pure) and opening it beneath `/var/log`;
//!   [`metrics_file`]: the command counts for node_exporter's textfile collector.
//! - [`version`]: supported CNI versions; [`result`]: ADD, VERSION and error answers.

pub mod attach;
pub mod aws;
pub mod code;
pub mod config;
pub mod detach;
pub mod host;
pub mod ip;
pub mod json;
pub mod log_file;
pub mod metrics_file;
pub mod plugin;
pub mod preflight;
pub mod request;
pub mod result;
pub mod routed;
pub mod version;
