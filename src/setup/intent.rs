//! What a setup must achieve, as plain data, whoever asks for it: the router's init
//! container (`macvlan0` beside `eth0`) or the CNI plugin (`CNI_IFNAME` beside the
//! pod's other interfaces).

use std::net::Ipv4Addr;

use crate::config::router::{RouterConfig, SourceAddress};
use crate::setup::firewall::{self, Inbound, NatChains, Wanted};

/// The name of the router's egress interface.
pub const MACVLAN: &str = "macvlan0";

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
    /// The address the egress interface carries, and connections leave from.
    pub source: SourceAddress,
    /// The next hop on the egress interface.
    pub gateway: Ipv4Addr,
    /// The egress interface.
    pub egress: String,
    /// The cluster side.
    pub pod: PodSide,
    /// The firewall rules (reply routing, and NAT unless a proxy does the forwarding).
    pub firewall: Wanted,
    /// Whether `net.ipv4.ip_forward` must be on (NAT forwards).
    pub forwarding: bool,
    /// Whether a cluster-side default route to keep for replies must exist; when not,
    /// a pod without one (a container on this network alone) has none to keep.
    pub replies_required: bool,
}

impl Intent {
    /// The router's intent (SPEC section 2): `macvlan0` beside `eth0`, NAT in the
    /// redirect modes.
    pub fn router(config: &RouterConfig) -> Intent {
        let nat = config.mode.uses_nat().then(|| {
            (
                NatChains::Builtin,
                firewall::nat_rules(config.source.address, &config.destinations),
            )
        });
        Intent {
            source: config.source,
            gateway: config.gateway,
            egress: MACVLAN.into(),
            pod: PodSide::Interface(firewall::POD_INTERFACE.into()),
            firewall: Wanted {
                inbound: Inbound::On(firewall::POD_INTERFACE.into()),
                nat,
            },
            forwarding: config.mode.uses_nat(),
            replies_required: true,
        }
    }
}
