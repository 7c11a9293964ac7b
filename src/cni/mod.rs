//! The CNI plugin `egress-router` (SPEC section 7), pure part: the invocation and
//! configuration as validated data, the NAT rules, and the JSON answers.
//!
//! - [`request`]: `CNI_*` variables and stdin into a [`request::Request`].
//! - [`config`]: the network configuration ([`config::NetConf`]); [`ip`]: its `ip` /
//!   `podIP` part, the choice for a pod, and the plugin's NAT rules;
//!   [`json`]: strict JSON reading with errors naming the field.
//! - [`version`]: supported CNI versions; [`result`]: ADD, VERSION and error answers.

pub mod config;
pub mod ip;
pub mod json;
pub mod request;
pub mod result;
pub mod version;
