//! The backends of one forwarder and the choice among them: pure data, with time
//! passed in, so selection is unit-tested without sleeping.
//!
//! Connections are spread round-robin over the addresses the target has, at most
//! [`MAX_BACKENDS`] of them. A backend whose connect failed is marked down for a while
//! and skipped while others are up; when every backend is down, the one that failed
//! longest ago is tried anyway, so a connection is never refused without an attempt.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a backend whose connect failed is skipped.
pub const DOWN_TIME: Duration = Duration::from_secs(10);
pub use crate::serve::screen::{MAX_ADDRESSES as MAX_BACKENDS, bounded};

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
    left_out: usize,
}

impl Backends {
    /// A set of fixed addresses, all up.
    pub fn new(addresses: &[IpAddr]) -> Self {
        let mut set = Backends::default();
        set.replace(addresses);
        set
    }

    /// Takes a new address list (a re-resolution), [`bounded`]; addresses that stay keep
    /// their health. Returns whether the backends changed.
    pub fn replace(&mut self, addresses: &[IpAddr]) -> bool {
        let (unique, left_out) = bounded(addresses);
        self.left_out = left_out;
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

    /// How many distinct addresses of the last resolution are not backends (over
    /// [`MAX_BACKENDS`]).
    pub fn left_out(&self) -> usize {
        self.left_out
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
    fn a_long_answer_keeps_the_lowest_addresses_whatever_their_order() {
        let many: Vec<IpAddr> = (0..100u8)
            .rev()
            .map(|i| IpAddr::from([203, 0, 113, i]))
            .collect();
        let (kept, left_out) = bounded(&many);
        assert_eq!((kept.len(), left_out), (MAX_BACKENDS, 100 - MAX_BACKENDS));
        let mut sorted = kept.clone();
        sorted.sort();
        let lowest: Vec<IpAddr> = (0..MAX_BACKENDS as u8)
            .map(|i| IpAddr::from([203, 0, 113, i]))
            .collect();
        assert_eq!(sorted, lowest);
        assert_eq!(kept[0], IpAddr::from([203, 0, 113, 63]), "resolution order");
        let mut rotated = many.clone();
        rotated.rotate_left(37);
        let mut set = Backends::new(&many);
        assert!(
            set.replace(&rotated),
            "another order is a change: the round-robin starts over"
        );
        let mut again = set.addresses();
        again.sort();
        assert_eq!(again, lowest, "a rotated answer keeps the same backends");
        assert_eq!(set.left_out(), 36);
        assert_eq!(bounded(&ips(&["203.0.113.5", "203.0.113.5"])).1, 0);
    }

    #[test]
    fn an_empty_set_picks_nothing() {
        let mut set = Backends::default();
        assert!(set.is_empty());
        assert_eq!(set.pick(Instant::now(), &[]), None);
    }
}
