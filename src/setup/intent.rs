//! What a setup must achieve, as plain data, whoever asks for it: the router's init
//! container (`macvlan0` beside `eth0`) or the CNI plugin (`CNI_IFNAME` beside the
//! pod's other interfaces). Each address family with a source is a [`FamilyIntent`] of
//! its own: its address, routes, reply routing and forwarding; each family's firewall
//! is a [`Wanted`]: the guard of the egress interface in every family, reply routing
//! and NAT in those with a source.

use std::net::IpAddr;

use crate::config::address::is_link_local_v6;
use crate::config::family::Family;
use crate::config::redirect::forwards;
use crate::config::router::{RouterConfig, SourceAddress};
use crate::setup::firewall::{self, Inbound, NatChains, Resolved, Rule, VrrpFrom, Wanted};

pub use crate::config::router::MACVLAN;

/// The pod's cluster side: where connections arrive whose replies must go back the
/// same way, and whose default routes are kept for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodSide {
    /// One named interface (`eth0` in the router's pod).
    Interface(String),
    /// Every interface but the egress one and loopback (the CNI plugin's pods).
    AllButEgress,
}

/// The intended state of one network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// One entry a family with a source (the router: IPv4 first; the CNI plugin: in the
    /// order of its `addresses`).
    pub families: Vec<FamilyIntent>,
    /// The firewall of each family, IPv4 first: a family without a source has the
    /// guard alone (IPv6's wherever the kernel has IPv6).
    pub firewalls: Vec<Wanted>,
    /// The egress interface.
    pub egress: String,
    /// The cluster side.
    pub pod: PodSide,
    /// The variable or field that gave the source addresses, for errors about them.
    pub source_field: &'static str,
    /// Set when the egress interface is routed (the CNI plugin's veth pair, SPEC
    /// section 11) rather than on the gateways' link (macvlan, ipvlan).
    pub routed: Option<RoutedLink>,
}

/// An egress interface whose only neighbour is a router of its own (the node end of
/// the CNI plugin's veth pair): the sources carry their prefix without its on-link
/// route, so everything, the source's subnet included, leaves via the gateway, and
/// each gateway is pinned to the router's link-layer address (a permanent neighbour
/// entry), since nothing on the link is the gateway itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutedLink {
    /// The router's (the node end's) link-layer address.
    pub gateway_mac: [u8; 6],
}

/// The intended state of one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyIntent {
    /// The address the egress interface carries, and connections leave from.
    pub source: SourceAddress,
    /// The next hop on the egress interface.
    pub gateway: IpAddr,
    /// Whether forwarding must be on (NAT forwards).
    pub forwarding: bool,
    /// Whether a cluster-side default route to keep for replies must exist; when not,
    /// a pod without one (a container on this network alone) has none to keep.
    pub replies_required: bool,
    /// Whether the source address, the route to the gateway and the default route are
    /// wanted (always, but on a high-availability backup: SPEC section 12).
    pub held: bool,
    /// Whether the source goes through duplicate address detection (not with high
    /// availability: VRRP decides who holds it, and a takeover cannot wait).
    pub dad: bool,
}

impl FamilyIntent {
    /// Its family.
    pub fn family(&self) -> Family {
        self.source.family()
    }

    /// Whether the gateway is link-local: on the egress interface by its own
    /// `fe80::/64` route, with no host route of ours.
    pub fn gateway_link_local(&self) -> bool {
        is_link_local_v6(self.gateway)
    }
}

impl Intent {
    /// The router's intent (SPEC sections 2 and 10): `macvlan0` beside `eth0`, NAT in
    /// the redirect modes. IPv4 is set up as it always was; IPv6 forwards, and needs
    /// `eth0`'s default route for replies, only when IPv6 clients are redirected (an
    /// IPv4-only cluster has no IPv6 route, and forwarding turns a host into a router
    /// on every interface). The name entries' chains may hold any well-formed content
    /// (the check resolves nothing).
    pub fn router(config: &RouterConfig) -> Intent {
        Intent::router_with(config, None)
    }

    /// [`Intent::router`] with the name entries' chains sending to the addresses
    /// `resolved` gives (what init installs and its end check verifies).
    pub fn router_resolved(config: &RouterConfig, resolved: &Resolved) -> Intent {
        Intent::router_with(config, Some(resolved))
    }

    fn router_with(config: &RouterConfig, resolved: Option<&Resolved>) -> Intent {
        let families = config
            .egress
            .iter()
            .map(|pair| {
                // A name alone does not require it: an IPv4-only cluster may use a
                // dual-stack egress network (the route is kept when the pod has one).
                let redirected = config
                    .destinations
                    .iter()
                    .any(|d| d.family() == Some(pair.family()));
                FamilyIntent {
                    source: pair.source,
                    gateway: pair.gateway,
                    forwarding: config.mode.uses_nat()
                        && forwards(pair.family(), &config.destinations),
                    replies_required: pair.family() == Family::V4
                        || (config.mode.uses_nat() && redirected),
                    held: config.ha.is_none(),
                    dad: config.ha.is_none(),
                }
            })
            .collect();
        let firewalls = Family::ALL
            .into_iter()
            .map(|family| {
                let Some(pair) = config.egress.iter().find(|p| p.family() == family) else {
                    return Wanted::guard_only(family, MACVLAN);
                };
                let vrrp = config.ha.as_ref().map(|ha| {
                    match ha.peers.iter().any(|peer| Family::of(*peer) == family) {
                        true => VrrpFrom::Peers(ha.peers.clone()),
                        false => VrrpFrom::Group,
                    }
                });
                let nat = config.mode.uses_nat().then(|| {
                    let plan = firewall::router_nat_plan(config, pair.source.address);
                    (
                        NatChains::Builtin,
                        plan.into_iter().map(|(_, r)| r).collect(),
                    )
                });
                let names = match config.mode.uses_nat() {
                    true => firewall::router_name_chains(config, family, resolved),
                    false => Vec::new(),
                };
                Wanted {
                    family,
                    egress: MACVLAN.into(),
                    replies: Some(Inbound::On(firewall::POD_INTERFACE.into())),
                    nat,
                    names,
                    vrrp,
                }
            })
            .collect();
        Intent {
            families,
            firewalls,
            egress: MACVLAN.into(),
            pod: PodSide::Interface(firewall::POD_INTERFACE.into()),
            source_field: "EGRESS_SOURCE",
            routed: None,
        }
    }

    /// The same intent with the source of each family in `held` held, and of the others
    /// not: what a high-availability master (or backup) of those families wants.
    pub fn holding(mut self, held: &[Family]) -> Intent {
        for family in &mut self.families {
            family.held = held.contains(&family.family());
        }
        self
    }

    /// The part of a takeover (or a release) for `family` alone: its address and
    /// routes, no firewall (in place since init, and checked apart).
    pub fn takeover(&self, family: Family) -> Intent {
        Intent {
            families: self
                .families
                .iter()
                .filter(|f| f.family() == family)
                .cloned()
                .collect(),
            firewalls: Vec::new(),
            ..self.clone()
        }
        .holding(&[family])
    }

    /// The NAT rules of every family, IPv4's first.
    pub fn nat_rules(&self) -> impl Iterator<Item = &Rule> {
        self.firewalls
            .iter()
            .filter_map(|wanted| wanted.nat.as_ref())
            .flat_map(|(_, rules)| rules)
    }
}
