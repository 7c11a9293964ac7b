//! The host names of `EGRESS_DESTINATION` (SPEC section 13): looked up as absolute names
//! (the resolver's search list never applies) in the families the router has a source
//! of, their answers screened as the DNS proxy's are ([`screen`]: never loopback,
//! unspecified, link-local, multicast, an address of the pod, nor a family without a
//! source), at most [`MAX_ADDRESSES`](crate::serve::screen::MAX_ADDRESSES) a name. Init resolves every name before it
//! changes anything ([`resolve_all`]); the `redirect` and `legacy` containers follow
//! them ([`follow`]), keeping each name entry's chain in step ([`state`] is what they
//! tell the metrics and readiness).

use std::net::IpAddr;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::family::Family;
use crate::config::redirect::{Destination, names};
use crate::config::router::RouterConfig;
use crate::error::{Error, Result};
use crate::serve::pod_addresses::Listing;
use crate::serve::resolver::{Families, Resolver};
use crate::serve::screen::{Screened, bounded, screen};
use crate::setup::firewall::Resolved;

pub mod follow;
pub mod state;

/// How long init waits for each name when unresolved names are allowed (a DNS outage
/// must not hold the pod back; the redirect container takes over).
pub const ALLOWED_WAIT: Duration = Duration::from_secs(2);

/// The address records to ask for: those of the families the router has a source of.
pub fn families(config: &RouterConfig) -> Families {
    match (
        config.families().contains(&Family::V4),
        config.families().contains(&Family::V6),
    ) {
        (true, false) => Families::V4,
        (false, true) => Families::V6,
        _ => Families::Both,
    }
}

/// The addresses of `found` (an answer for a name) the router may send to, sorted, at
/// most [`MAX_ADDRESSES`](crate::serve::screen::MAX_ADDRESSES) (the lowest); with what was left out and why. `pod` is the
/// pod's addresses now.
pub fn usable(config: &RouterConfig, found: &[IpAddr], pod: &[IpAddr]) -> (Vec<IpAddr>, Screened) {
    let sources = config.families();
    let mut pod = pod.to_vec();
    pod.extend(config.egress.iter().map(|pair| pair.source.address));
    let screened = screen(found, &pod, |address| {
        let family = Family::of(address);
        match sources.contains(&family) {
            true => Ok(()),
            false => Err(format!("EGRESS_SOURCE has no {family} address")),
        }
    });
    let (mut kept, _) = bounded(&screened.usable);
    kept.sort();
    (kept, screened)
}

/// The entry of `config` that first names `name`, as written in the list.
pub fn first_line(config: &RouterConfig, name: &str) -> String {
    config
        .destinations
        .iter()
        .find(|d| d.name() == Some(name))
        .map_or_else(|| name.to_string(), Destination::to_string)
}

/// Every name of `config`, looked up at once and screened: init's view before it
/// changes anything. A name with no usable address is an error naming its line,
/// unless `EGRESS_ROUTER_ALLOW_UNRESOLVED=true`, when it is left without addresses
/// (its traffic refused) and the lookup waits at most [`ALLOWED_WAIT`].
pub async fn resolve_all(config: &RouterConfig) -> Result<Resolved> {
    let mut resolved = Resolved::default();
    let names = names(&config.destinations);
    if names.is_empty() {
        return Ok(resolved);
    }
    let resolver = Resolver::from_system()?;
    let pod = Listing::now()
        .map_err(|e| Error::io("listing this pod's addresses", e))?
        .addresses;
    let lookups = names.iter().map(|name| {
        let lookup = resolver.lookup(name, families(config));
        async move {
            match config.allow_unresolved {
                true => tokio::time::timeout(ALLOWED_WAIT, lookup)
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!("no answer for {name} within {ALLOWED_WAIT:?}"))
                    }),
                false => lookup.await,
            }
        }
    });
    let answers = futures::future::join_all(lookups).await;
    for (name, answer) in names.iter().zip(answers) {
        let found = answer.and_then(|found| {
            let (addresses, screened) = usable(config, &found.addresses, &pod);
            if !screened.refused.is_empty() {
                warn!(target = %name, skipped = %screened.describe_refused(), "skipping addresses of the answer");
            }
            match addresses.is_empty() {
                true => Err(format!(
                    "no address of its answer may be used ({})",
                    screened.describe_refused()
                )),
                false => Ok(addresses),
            }
        });
        match found {
            Ok(addresses) => {
                info!(target = %name, ?addresses, "resolved");
                resolved.insert(name, addresses);
            }
            Err(reason) if config.allow_unresolved => {
                warn!(target = %name, %reason, "not resolved: its traffic is refused until the redirect container resolves it");
                resolved.insert(name, Vec::new());
            }
            Err(reason) => {
                return Err(Error::State(format!(
                    "EGRESS_DESTINATION: line {:?}: {name} has no usable address: {reason} \
                     (set EGRESS_ROUTER_ALLOW_UNRESOLVED=true to start anyway, its traffic refused until it resolves)",
                    first_line(config, name)
                )));
            }
        }
    }
    Ok(resolved)
}
