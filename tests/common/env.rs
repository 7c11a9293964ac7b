//! Environments for the binary under test: the variables of a good router run, of a
//! proxy mode's init run, and helpers to build and change such lists.

use super::{DESTINATION, GATEWAY, SOURCE};

/// Env for a good init run.
pub fn good_env(mode: &str) -> Vec<(String, String)> {
    envs(&[
        ("EGRESS_SOURCE", SOURCE),
        ("EGRESS_GATEWAY", GATEWAY),
        ("EGRESS_DESTINATION", DESTINATION),
        ("EGRESS_ROUTER_MODE", mode),
    ])
}

/// Env for an init run of a proxy mode (`http-proxy`, `dns-proxy`): network only.
pub fn proxy_mode_env(mode: &str) -> Vec<(String, String)> {
    envs(&[
        ("EGRESS_SOURCE", SOURCE),
        ("EGRESS_GATEWAY", GATEWAY),
        ("EGRESS_ROUTER_MODE", mode),
    ])
}

/// Owned `(name, value)` pairs from borrowed ones.
pub fn envs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Replace (or add) one variable in an env list; `None` removes it.
pub fn with_var(
    mut env: Vec<(String, String)>,
    key: &str,
    val: Option<&str>,
) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != key);
    if let Some(v) = val {
        env.push((key.to_string(), v.to_string()));
    }
    env
}
