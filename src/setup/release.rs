//! Giving the source up (SPEC section 12): what a high-availability master stepping
//! down removes, and what a restarted container removes when it finds a master's
//! leftovers, decided from an [`Intent`] and what was [`Observed`] (pure). The
//! firewall, reply routing and forwarding stay: a backup keeps everything but the
//! address and its routes, so that taking it over is only those and an announcement.

use netlink_packet_route::route::RouteHeader;

use super::intent::Intent;
use super::observe::Observed;
use super::plan::{pod_defaults, reply_route_kept};
use super::step::Step;
use crate::sys::netlink;

/// The steps that leave no source of `intent`'s families in `observed`, in order: the
/// default routes through the egress interface go, the cluster side's default routes
/// come back from the reply table (where the setup kept them) unless the main table
/// still has one, the host route to the gateway goes, and the address last (its
/// routes gone first, so none vanishes with it unjournaled).
pub fn release(intent: &Intent, observed: &Observed) -> Vec<Step> {
    let index = observed.egress.index;
    let mut steps = Vec::new();
    for (wanted, found) in intent.families.iter().zip(&observed.families) {
        let ours = found
            .main_defaults
            .iter()
            .filter(|r| netlink::route_interface(r) == Some(index));
        steps.extend(ours.cloned().map(Step::DeleteRoute));
        if pod_defaults(observed, found).is_empty() && reply_route_kept(observed, found) {
            let pods: Vec<u32> = observed.pod_links.iter().map(|p| p.link.index).collect();
            let kept = found.reply_routes.iter().filter(|r| {
                r.header.destination_prefix_length == 0
                    && netlink::route_interface(r).is_some_and(|oif| pods.contains(&oif))
            });
            let main = u32::from(RouteHeader::RT_TABLE_MAIN);
            steps.extend(kept.map(|r| Step::AddRoute(netlink::in_table(r, main))));
        }
        if let Some(route) = &found.gateway_route {
            steps.push(Step::DeleteRoute(route.clone()));
        }
        if found.source.is_some() {
            steps.push(Step::DeleteAddress {
                index,
                source: wanted.source,
            });
        }
    }
    steps
}
