//! DEL and CHECK (the routed kinds': [`routed::commands`]). DEL removes what this
//! container's ADD made and puts back the pod's
//! routes; it succeeds when things are already gone, when the namespace is gone, and
//! when repeated, and it leaves alone an interface another ADD made. CHECK observes
//! and reports precisely what differs from the intended state.

use std::path::Path;

use netlink_packet_route::route::RouteHeader;
use tracing::info;

use super::attach::{self, intent, node_side, open_pod};
use super::code;
use super::config::NetConf;
use super::host::{self, Owner};
use super::request::Container;
use super::routed;
use crate::config::family::Family;
use crate::config::router::BackendChoice;
use crate::error::{Error, Result};
use crate::setup::firewall::{self, REPLY_MARK, REPLY_TABLE};
use crate::setup::{self, Namespace};
use crate::sys::netlink::{self, Netlink};
use crate::sys::netns::Netns;
use crate::sys::sysctl;

/// Runs DEL.
pub async fn del(container: &Container, netns: Option<&Path>, config: &NetConf) -> Result<()> {
    if config.interface.kind.is_routed() {
        return routed::commands::del(container, netns, config).await;
    }
    let node_nl = Netlink::connect(&Netns::current()?)?;
    remove_if_ours(
        &node_nl,
        &host::temporary_name(&container.id),
        &container.id,
    )
    .await?;
    let errors = teardown_pod(container, netns).await?;
    finish(container, errors)
}

/// DEL's outcome: success, or an error listing what was left behind.
pub fn finish(container: &Container, errors: Vec<Error>) -> Result<()> {
    match errors.len() {
        0 => {
            info!(container = %container.id, interface = %container.ifname, "detached");
            Ok(())
        }
        _ => Err(Error::Setup {
            cause: Box::new(Error::cni(
                code::PLUGIN_FAILURE,
                format!("DEL of {} left things behind", container.ifname),
            )),
            rollback: errors,
        }),
    }
}

/// Removes from the pod (when its namespace is there) what this container's ADD made
/// in it: the chains, the interface, the reply routing, putting the kept default
/// routes back; the errors met, every piece tried.
pub async fn teardown_pod(container: &Container, netns: Option<&Path>) -> Result<Vec<Error>> {
    let Some(path) = netns else {
        return Ok(Vec::new());
    };
    let pod = match Netns::open_if_present(path) {
        Ok(Some(pod)) => pod,
        Ok(None) => {
            info!(container = %container.id, netns = %path.display(), "namespace gone: nothing to remove in it");
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(Error::cni(
                code::UNKNOWN_CONTAINER,
                format!("CNI_NETNS: {e}"),
            ));
        }
    };
    let _lock = setup::lock(&pod).await?;
    let (ns, _) = Namespace::open(pod, BackendChoice::Auto)?;
    let link = match ns.nl.find_link(&container.ifname).await? {
        Some((_, alias)) if Owner::of(alias.as_deref(), &container.id).is_none() => {
            info!(interface = %container.ifname, "not made by this container's ADD: left as it is");
            return Ok(Vec::new());
        }
        found => found.map(|(link, _)| link),
    };
    let mut errors = Vec::new();
    // Without IPv6 in the kernel, or without the IPv6 tools, no IPv6 piece of ours can
    // be there.
    let families: &[Family] = match sysctl::has_ipv6(&ns.netns) {
        true => &[Family::V4, Family::V6],
        false => &[Family::V4],
    };
    for &family in families {
        let Ok(backend) = ns.backend.for_family(family) else {
            continue;
        };
        let script = firewall::teardown_script(&backend.save_all(&ns.netns)?);
        if !script.is_empty()
            && let Err(e) = backend.restore(&ns.netns, &script, true)
        {
            errors.push(e);
        }
    }
    if let Some(link) = link
        && let Err(e) = ns.nl.delete_link(link.index).await
    {
        errors.push(e);
    }
    for &family in families {
        errors.extend(restore_routes(&ns.nl, family).await);
        if let Some(rule) = ns.nl.mark_rule(family, REPLY_MARK, REPLY_TABLE).await?
            && let Err(e) = ns.nl.del_rule(rule).await
        {
            errors.push(e);
        }
    }
    Ok(errors)
}

/// Puts the default routes of `family` kept in the reply table back into the main
/// table (when it has no default route of the family left), and empties the reply
/// table of them.
async fn restore_routes(nl: &Netlink, family: Family) -> Vec<Error> {
    let mut errors = Vec::new();
    let kept = match nl.routes(family, REPLY_TABLE).await {
        Ok(kept) => kept,
        Err(e) => return vec![e],
    };
    let main = u32::from(RouteHeader::RT_TABLE_MAIN);
    let has_default = match nl.routes(family, main).await {
        Ok(routes) => routes
            .iter()
            .any(|r| r.header.destination_prefix_length == 0),
        Err(e) => return vec![e],
    };
    for route in kept {
        if !has_default
            && route.header.destination_prefix_length == 0
            && let Err(e) = nl.add_route(netlink::in_table(&route, main)).await
        {
            errors.push(e);
        }
        if let Err(e) = nl.del_route(route).await {
            errors.push(e);
        }
    }
    errors
}

/// Deletes interface `name` of the namespace of `nl` when it carries this container's
/// mark (an ADD interrupted before the interface moved into the pod).
pub async fn remove_if_ours(nl: &Netlink, name: &str, container: &str) -> Result<()> {
    match nl.find_link(name).await? {
        Some((link, alias)) if Owner::of(alias.as_deref(), container).is_some() => {
            nl.delete_link(link.index).await
        }
        _ => Ok(()),
    }
}

/// Runs CHECK: every piece of the attachment that is not in place, as one error.
pub async fn check(container: &Container, netns: &Path, config: &NetConf) -> Result<()> {
    if config.interface.kind.is_routed() {
        return routed::commands::check(container, netns, config).await;
    }
    let ip = config.ip_config(container.pod.name.as_deref())?;
    let pod = open_pod(netns)?;
    let node_nl = Netlink::connect(&Netns::current()?)?;
    let (_, gateways) = node_side(&node_nl, config, ip).await?;
    let (ns, _) = Namespace::open(pod, BackendChoice::Auto)?;
    let mut problems = match ns.nl.find_link(&container.ifname).await? {
        None => vec![format!("interface {} is missing", container.ifname)],
        Some((_, alias)) => match Owner::of(alias.as_deref(), &container.id) {
            None => vec![format!(
                "interface {} was not made by this container's ADD",
                container.ifname
            )],
            Some(owner) => {
                let intent = intent(ip, &container.ifname, &gateways, &owner, None);
                setup::check(&ns, &intent).await?
            }
        },
    };
    if let Some(prev) = &config.prev_result {
        problems.extend(attach::differs_from_previous(prev, &ns, &container.ifname).await?);
    }
    check_outcome(problems)
}

/// CHECK's outcome: success, or one error naming every problem.
pub fn check_outcome(problems: Vec<String>) -> Result<()> {
    match problems.is_empty() {
        true => Ok(()),
        false => Err(Error::cni(
            code::PLUGIN_FAILURE,
            format!("CHECK: {}", problems.join("; ")),
        )),
    }
}
