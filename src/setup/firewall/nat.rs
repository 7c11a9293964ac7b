//! The redirect NAT (SPEC sections 3, 7, 10 and 13), planned from the destination list:
//! one DNAT rule an address entry (a jump to its chain a name entry, see
//! [`names`](super::names)), in entry order, then the SNAT; for the router, the metrics
//! endpoint's port exempted from the fallback entry when the init container's
//! environment sets `EGRESS_METRICS_ADDRESS` (a `RETURN` just before the fallback, so
//! that Prometheus and the kubelet reach the `redirect` container through `eth0`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::names::{NameChain, Resolved, Shape, name_chain};
use super::{DNAT_CHAIN, Inbound, POD_INTERFACE, Rule, SNAT_CHAIN};
use crate::config::family::Family;
use crate::config::redirect::{Destination, Target};
use crate::config::router::RouterConfig;

/// Which interfaces the redirect NAT rules match, and which chains hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatInterfaces {
    /// The DNAT rules apply to traffic arriving as this says.
    pub inbound: Inbound,
    /// The SNAT rule applies to traffic leaving by this interface; `None`: to all.
    pub outbound: Option<String>,
    /// Where the rules live.
    pub chains: NatChains,
    /// A TCP port the fallback entry does not redirect (the metrics endpoint's).
    pub exempt_tcp: Option<u16>,
    /// Whether VRRP is left alone by the SNAT (high availability): the SNAT would
    /// rewrite the advertisements' source without fixing their checksum.
    pub exempt_vrrp: bool,
}

/// The chains that hold the NAT rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatChains {
    /// `PREROUTING` and `POSTROUTING` themselves, flushed and refilled (the router's
    /// contract, SPEC section 3).
    Builtin,
    /// Chains of our own, jumped to from the built-in ones (the CNI plugin's: the pod
    /// may hold other rules, and DEL removes exactly ours).
    Own,
}

impl NatInterfaces {
    /// The router's (SPEC section 3): DNAT what arrives on `eth0`, SNAT everything;
    /// the fallback leaves TCP port `exempt_tcp` alone when given.
    pub fn router(exempt_tcp: Option<u16>) -> Self {
        NatInterfaces {
            inbound: Inbound::On(POD_INTERFACE.into()),
            outbound: None,
            chains: NatChains::Builtin,
            exempt_tcp,
            exempt_vrrp: false,
        }
    }

    /// The CNI plugin's (SPEC section 7): DNAT what arrives on the pod's other
    /// interfaces, SNAT what leaves by `egress`, the plugin's interface.
    pub fn plugin(egress: &str) -> Self {
        NatInterfaces {
            inbound: Inbound::NotOn(egress.into()),
            outbound: Some(egress.into()),
            chains: NatChains::Own,
            exempt_tcp: None,
            exempt_vrrp: false,
        }
    }
}

/// What one NAT rule implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatPurpose<'a> {
    /// An `EGRESS_DESTINATION` entry.
    Entry(&'a Destination),
    /// The metrics endpoint's port, left out of the fallback.
    Exempt(u16),
    /// VRRP, left out of the source NAT.
    Vrrp,
    /// The source NAT.
    Snat,
}

impl fmt::Display for NatPurpose<'_> {
    /// The `rule` label of the NAT counters: the entry as written in the list,
    /// `metrics-port` or `snat`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatPurpose::Entry(destination) => write!(f, "{destination}"),
            NatPurpose::Exempt(_) => f.write_str("metrics-port"),
            NatPurpose::Vrrp => f.write_str("vrrp"),
            NatPurpose::Snat => f.write_str("snat"),
        }
    }
}

/// The redirect NAT rules of SPEC sections 3 and 10 for the family of `source`: its
/// entries in order, then the SNAT (no exemption).
pub fn nat_rules(source: IpAddr, destinations: &[Destination]) -> Vec<Rule> {
    nat_rules_on(&NatInterfaces::router(None), source, destinations)
}

/// The router's NAT rules for the family of `source`, the metrics port exempted from
/// the fallback as `config` asks ([`RouterConfig::metrics_exemption`]) and VRRP from
/// the SNAT with high availability, each with what it implements.
pub fn router_nat_plan(config: &RouterConfig, source: IpAddr) -> Vec<(NatPurpose<'_>, Rule)> {
    let interfaces = NatInterfaces {
        exempt_vrrp: config.ha.is_some(),
        ..NatInterfaces::router(config.metrics_exemption(Family::of(source)))
    };
    nat_plan_on(&interfaces, source, &config.destinations)
}

/// The chains of the router's name entries in `family`'s table, each with the
/// addresses `resolved` gives its name (`None`: not resolved, for a check).
pub fn router_name_chains(
    config: &RouterConfig,
    family: Family,
    resolved: Option<&Resolved>,
) -> Vec<NameChain> {
    config
        .destinations
        .iter()
        .enumerate()
        .filter_map(|(index, destination)| {
            let name = destination.name()?;
            Some(NameChain {
                chain: name_chain(index + 1),
                label: destination.to_string(),
                name: name.to_string(),
                family,
                shape: Shape::of(destination),
                addresses: resolved.map(|r| r.of(name, family)),
            })
        })
        .collect()
}

/// The redirect NAT rules matching `interfaces` for the family of `source` (for
/// `iptables` or `ip6tables`).
pub fn nat_rules_on(
    interfaces: &NatInterfaces,
    source: IpAddr,
    destinations: &[Destination],
) -> Vec<Rule> {
    nat_plan_on(interfaces, source, destinations)
        .into_iter()
        .map(|(_, rule)| rule)
        .collect()
}

/// [`nat_rules_on`], each rule with what it implements: the entries in order (the
/// exemption, when asked for, just before the fallback), then VRRP's exemption when
/// asked for, then the SNAT.
pub fn nat_plan_on<'a>(
    interfaces: &NatInterfaces,
    source: IpAddr,
    destinations: &'a [Destination],
) -> Vec<(NatPurpose<'a>, Rule)> {
    let (pre, post) = match interfaces.chains {
        NatChains::Builtin => ("PREROUTING", "POSTROUTING"),
        NatChains::Own => (DNAT_CHAIN, SNAT_CHAIN),
    };
    let nat = |chain: &'static str, spec: String| Rule {
        table: "nat",
        chain: chain.into(),
        spec,
    };
    let inbound = &interfaces.inbound;
    let family = Family::of(source);
    let mut rules = Vec::new();
    let entries = destinations.iter().enumerate();
    for (index, destination) in entries.filter(|(_, d)| d.redirects(family)) {
        let to = match destination.target() {
            Target::Address(address) => format!("DNAT --to-destination {address}"),
            Target::Name(_) => name_chain(index + 1),
        };
        let spec = match destination {
            Destination::Port {
                port,
                protocol,
                target: Target::Address(address),
                target_port: Some(target),
            } => format!(
                "{inbound} -p {protocol} --dport {port} -j DNAT --to-destination {}",
                SocketAddr::new(*address, *target)
            ),
            Destination::Port { port, protocol, .. } => {
                format!("{inbound} -p {protocol} --dport {port} -j {to}")
            }
            Destination::Fallback(_) => {
                if let Some(port) = interfaces.exempt_tcp {
                    let spec = format!("{inbound} -p tcp --dport {port} -j RETURN");
                    rules.push((NatPurpose::Exempt(port), nat(pre, spec)));
                }
                format!("{inbound} -j {to}")
            }
        };
        rules.push((NatPurpose::Entry(destination), nat(pre, spec)));
    }
    if interfaces.exempt_vrrp {
        rules.push((NatPurpose::Vrrp, nat(post, "-p 112 -j RETURN".into())));
    }
    let snat = match &interfaces.outbound {
        Some(name) => format!("-o {name} -j SNAT --to-source {source}"),
        None => format!("-j SNAT --to-source {source}"),
    };
    rules.push((NatPurpose::Snat, nat(post, snat)));
    rules
}
