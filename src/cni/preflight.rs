//! What ADD checks in the pod before it changes anything there, beside its own
//! interface name: no other egress-router setup.

use super::code;
use crate::config::family::Family;
use crate::error::{Error, Result};
use crate::setup::Namespace;
use crate::setup::firewall;
use crate::sys::sysctl;

/// Fails, before any change, when the pod already has an egress-router setup (an
/// attachment of this plugin, or the router's init): both would share the same chains,
/// and the second would take the first's guard and NAT away.
pub fn refuse_a_second_setup(ns: &Namespace) -> Result<()> {
    let families: &[Family] = match sysctl::has_ipv6(&ns.netns) {
        true => &Family::ALL,
        false => &[Family::V4],
    };
    for family in families {
        let dump = ns.backend.for_family(*family)?.save_all(&ns.netns)?;
        if let Some(chain) = firewall::our_chain_in(&dump) {
            return Err(Error::cni(
                code::PLUGIN_FAILURE,
                format!(
                    "the pod already has an egress-router setup ({family} chain {chain}): one egress-router attachment a pod; nothing was changed"
                ),
            ));
        }
    }
    Ok(())
}
