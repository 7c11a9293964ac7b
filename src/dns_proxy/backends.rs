//! The backends of one forwarder and the choice among them: pure data, with time
//! passed in, so selection is unit-tested without sleeping.
//!
//! Connections are spread round-robin over the addresses the target has. A backend
//! whose connect failed is marked down for a while and skipped while others are
//! up; when every backend is down, the one that failed longest ago is tried anyway,
//! so a connection is never refused without an attempt.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a backend whose connect failed is skipped.
pub const DOWN_TIME: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Backend {
    address: IpAddr,
    down_until: Option<Instant>,
}

/// The current addresses of a target and their health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backends {
    backends: Vec<Backend>,
    next: usize,
}

impl Backends {
    /// A set of fixed addresses, all up.
    pub fn new(addresses: &[IpAddr]) -> Self {
        let mut set = Backends::default();
        set.replace(addresses);
        set
    }

    /// Takes a new address list (a re-resolution); addresses that stay keep their health.
    /// Returns whether the list changed.
    pub fn replace(&mut self, addresses: &[IpAddr]) -> bool {
        let mut unique: Vec<IpAddr> = Vec::with_capacity(addresses.len());
        for address in addresses {
            if !unique.contains(address) {
                unique.push(*address);
            }
        }
        if unique == self.addresses() {
            return false;
        }
        let old = std::mem::take(&mut self.backends);
        self.backends = unique
            .into_iter()
            .map(|address| Backend {
                address,
                down_until: old
                    .iter()
                    .find(|b| b.address == address)
                    .and_then(|b| b.down_until),
            })
            .collect();
        self.next = 0;
        true
    }

    /// The addresses, in resolution order.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.backends.iter().map(|b| b.address).collect()
    }

    /// Whether there is no address at all (a name not resolved yet).
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// Each address and whether it is up at `now` (not marked down, or its time is over).
    pub fn states(&self, now: Instant) -> Vec<(IpAddr, bool)> {
        self.backends
            .iter()
            .map(|b| (b.address, b.down_until.is_none_or(|t| t <= now)))
            .collect()
    }

    /// Picks the next backend to try at `now`, never one in `tried`.
    pub fn pick(&mut self, now: Instant, tried: &[IpAddr]) -> Option<IpAddr> {
        let count = self.backends.len();
        let candidates = || {
            self.backends
                .iter()
                .enumerate()
                .filter(|(_, b)| !tried.contains(&b.address))
        };
        let up = (0..count)
            .map(|offset| (self.next + offset) % count)
            .find(|&i| {
                !tried.contains(&self.backends[i].address)
                    && self.backends[i].down_until.is_none_or(|t| t <= now)
            });
        let chosen = up.or_else(|| {
            candidates()
                .min_by_key(|(_, b)| b.down_until)
                .map(|(i, _)| i)
        })?;
        self.next = (chosen + 1) % count;
        Some(self.backends[chosen].address)
    }

    /// Records a failed connect to `address` at `now`.
    pub fn mark_down(&mut self, address: IpAddr, now: Instant) {
        if let Some(backend) = self.backends.iter_mut().find(|b| b.address == address) {
            backend.down_until = Some(now + DOWN_TIME);
        }
    }

    /// Records a successful connect to `address`.
    pub fn mark_up(&mut self, address: IpAddr) {
        if let Some(backend) = self.backends.iter_mut().find(|b| b.address == address) {
            backend.down_until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn states_say_which_backends_are_up() {
        let mut set = Backends::new(&ips(&["203.0.113.5", "203.0.113.7"]));
        let now = Instant::now();
        set.mark_down(ips(&["203.0.113.7"])[0], now);
        let [five, seven] = [ips(&["203.0.113.5"])[0], ips(&["203.0.113.7"])[0]];
        assert_eq!(set.states(now), vec![(five, true), (seven, false)]);
        assert_eq!(
            set.states(now + DOWN_TIME),
            vec![(five, true), (seven, true)]
        );
    }

    #[test]
    fn spreads_connections_round_robin() {
        let mut set = Backends::new(&ips(&["203.0.113.5", "203.0.113.7"]));
        let now = Instant::now();
        let picks: Vec<IpAddr> = (0..4).map(|_| set.pick(now, &[]).unwrap()).collect();
        assert_eq!(
            picks,
            ips(&["203.0.113.5", "203.0.113.7", "203.0.113.5", "203.0.113.7"])
        );
    }

    #[test]
    fn a_down_backend_is_skipped_until_its_time_is_over() {
        let mut set = Backends::new(&ips(&["203.0.113.5", "203.0.113.7"]));
        let now = Instant::now();
        set.mark_down(ips(&["203.0.113.5"])[0], now);
        for _ in 0..3 {
            assert_eq!(set.pick(now, &[]), Some(ips(&["203.0.113.7"])[0]));
        }
        let later = now + DOWN_TIME;
        let picks: Vec<IpAddr> = (0..2).map(|_| set.pick(later, &[]).unwrap()).collect();
        assert!(
            picks.contains(&ips(&["203.0.113.5"])[0]),
            "back in rotation: {picks:?}"
        );
    }

    #[test]
    fn when_all_are_down_the_oldest_failure_is_tried_and_tried_ones_are_excluded() {
        let mut set = Backends::new(&ips(&["203.0.113.5", "203.0.113.7"]));
        let now = Instant::now();
        set.mark_down(ips(&["203.0.113.7"])[0], now);
        set.mark_down(ips(&["203.0.113.5"])[0], now + Duration::from_secs(1));
        assert_eq!(set.pick(now, &[]), Some(ips(&["203.0.113.7"])[0]));
        assert_eq!(
            set.pick(now, &ips(&["203.0.113.7"])),
            Some(ips(&["203.0.113.5"])[0])
        );
        assert_eq!(set.pick(now, &ips(&["203.0.113.5", "203.0.113.7"])), None);
        set.mark_up(ips(&["203.0.113.5"])[0]);
        assert_eq!(set.pick(now, &[]), Some(ips(&["203.0.113.5"])[0]));
    }

    #[test]
    fn replacing_keeps_health_of_addresses_that_stay_and_reports_changes() {
        let mut set = Backends::new(&ips(&["203.0.113.5", "203.0.113.7"]));
        let now = Instant::now();
        set.mark_down(ips(&["203.0.113.7"])[0], now);
        assert!(
            !set.replace(&ips(&["203.0.113.5", "203.0.113.7", "203.0.113.5"])),
            "same set, duplicates ignored"
        );
        assert!(set.replace(&ips(&["203.0.113.7", "203.0.113.6"])));
        assert_eq!(set.addresses(), ips(&["203.0.113.7", "203.0.113.6"]));
        assert_eq!(
            set.pick(now, &[]),
            Some(ips(&["203.0.113.6"])[0]),
            "203.0.113.7 is still down"
        );
    }

    #[test]
    fn an_empty_set_picks_nothing() {
        let mut set = Backends::default();
        assert!(set.is_empty());
        assert_eq!(set.pick(Instant::now(), &[]), None);
    }
}
