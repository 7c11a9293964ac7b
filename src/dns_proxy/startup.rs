//! What each forwarder starts with: its names looked up all at once, and the backends
//! (and first re-resolution) each lookup gives, or the startup error it means.

use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::backends::Backends;
use super::config::{DnsProxyConfig, LIST};
use super::destination::{Forwarder, Target};
use super::reach::{Reach, dialable};
use super::{MIN_REFRESH, refresh_delay};
use crate::error::{Error, Result};
use crate::ops::metrics::METRICS;
use crate::serve::resolver::{Addresses, Resolver};

/// A first lookup: `None` for an address target.
pub type Lookup = Option<std::result::Result<Addresses, String>>;

/// Looks the names of `forwarders` up at once, for the families `reach` can dial. When unresolved names are allowed, each lookup waits
/// at most [`MIN_REFRESH`] (a DNS outage must not hold the listeners back); the
/// refresher takes over from there.
pub async fn first_lookups(
    config: &DnsProxyConfig,
    forwarders: &[Forwarder],
    resolver: Option<&Resolver>,
    reach: &Reach,
) -> Vec<Lookup> {
    let lookups = forwarders.iter().map(|forwarder| async move {
        let (Target::Name(name), Some(resolver)) = (&forwarder.target, resolver) else {
            return None;
        };
        let lookup = resolver.lookup(name, reach.families());
        let found = if config.allow_unresolved {
            tokio::time::timeout(MIN_REFRESH, lookup)
                .await
                .unwrap_or_else(|_| Err(format!("no answer for {name} within {MIN_REFRESH:?}")))
        } else {
            lookup.await
        };
        Some(found.map_err(|reason| match reach.unasked() {
            Some(note) => format!("{reason} ({note})"),
            None => reason,
        }))
    });
    futures::future::join_all(lookups).await
}

/// The backends `forwarder` starts with and when to resolve it again, from its first
/// `lookup`. A name none of whose addresses may be dialed counts as not resolved (each
/// address's reason given); a name not resolved is a startup error unless unresolved
/// names are allowed; a literal target that may not be dialed (the pod itself, or a
/// family without an egress address) is a configuration error.
pub fn backends(
    config: &DnsProxyConfig,
    forwarder: &Forwarder,
    lookup: Lookup,
    reach: &Reach,
) -> Result<(Backends, Option<Duration>)> {
    let lookup = lookup.map(|found| {
        let found = found?;
        let screened = dialable(&found.addresses, forwarder.target_port, reach);
        if screened.usable.is_empty() {
            return Err(format!(
                "no address of its answer may be dialed ({})",
                screened.describe_refused()
            ));
        }
        if !screened.refused.is_empty() {
            warn!(port = forwarder.port, target = %forwarder.target, skipped = %screened.describe_refused(), "skipping addresses of the answer");
        }
        Ok((
            screened.usable,
            found.valid_until.saturating_duration_since(Instant::now()),
        ))
    });
    match (&forwarder.target, lookup) {
        (Target::Address(ip), _) => {
            if let Err(reason) = reach.route(*ip, forwarder.target_port) {
                return Err(Error::config(
                    LIST.inline,
                    format!(
                        "port {}: target {ip}:{}: {reason}",
                        forwarder.port, forwarder.target_port
                    ),
                ));
            }
            Ok((Backends::new(&[*ip]), None))
        }
        (Target::Name(name), Some(Ok((addresses, ttl)))) => {
            let backends = Backends::new(&addresses);
            let (addresses, left_out) = (backends.addresses(), backends.left_out());
            info!(port = forwarder.port, target = %name, ?addresses, left_out, "resolved");
            METRICS.resolved(name, true);
            Ok((backends, Some(refresh_delay(ttl))))
        }
        (Target::Name(name), Some(Err(reason))) if config.allow_unresolved => {
            warn!(port = forwarder.port, target = %name, %reason, "not resolved yet; retrying");
            METRICS.resolved(name, false);
            Ok((Backends::default(), Some(MIN_REFRESH)))
        }
        (Target::Name(name), Some(Err(reason))) => Err(Error::State(format!(
            "EGRESS_DNS_PROXY_DESTINATION: port {} target {name:?}: {reason} \
             (set EGRESS_DNS_PROXY_ALLOW_UNRESOLVED=true to start anyway)",
            forwarder.port
        ))),
        (Target::Name(name), None) => Err(Error::State(format!(
            "EGRESS_DNS_PROXY_DESTINATION: port {} target {name:?} was not looked up",
            forwarder.port
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::Vars;
    use crate::serve::egress::EgressSources;
    use crate::serve::pod_addresses::{Listing, PodAddresses};

    fn reach(interfaces: &[(&str, &str)], egress: EgressSources) -> Reach {
        let interfaces = interfaces
            .iter()
            .map(|(name, ip)| (name.to_string(), ip.parse().unwrap()))
            .collect();
        Reach {
            own_ports: vec![80],
            pod: PodAddresses::fixed(Listing::new(interfaces, egress)),
        }
    }

    fn first(list: &str, reach: &Reach) -> Result<(Backends, Option<Duration>)> {
        let vars = Vars::from_pairs([("EGRESS_DNS_PROXY_DESTINATION", list)]);
        let config = DnsProxyConfig::from_vars(&vars).unwrap();
        backends(&config, &config.forwarders[0], None, reach)
    }

    #[test]
    fn a_literal_target_of_a_family_without_an_egress_address_is_a_configuration_error() {
        let none = reach(&[("eth0", "192.0.2.70")], EgressSources::default());
        let error = first("80 203.0.113.5", &none).unwrap_err().to_string();
        assert!(
            error.contains("EGRESS_DNS_PROXY_DESTINATION") && error.contains("no IPv4 egress"),
            "{error}"
        );
        let egress = EgressSources {
            v4: Some("198.51.100.99".parse().unwrap()),
            v6: None,
            pinned: false,
        };
        let ipv4 = reach(&[("macvlan0", "198.51.100.99")], egress);
        assert!(first("80 203.0.113.5", &ipv4).is_ok());
    }

    #[test]
    fn a_literal_target_that_is_the_pod_itself_is_a_configuration_error() {
        let egress = EgressSources {
            v4: Some("198.51.100.99".parse().unwrap()),
            v6: None,
            pinned: false,
        };
        let pod = reach(
            &[("eth0", "192.0.2.70"), ("macvlan0", "198.51.100.99")],
            egress,
        );
        for list in ["80 192.0.2.70 5432", "80 198.51.100.99 22"] {
            let error = first(list, &pod).unwrap_err().to_string();
            assert!(error.contains("an address of this pod"), "{error}");
        }
    }
}
