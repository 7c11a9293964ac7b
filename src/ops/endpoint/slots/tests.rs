use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A table and a clock: each admission `at` a number of milliseconds after the start.
struct Table {
    slots: Slots<String>,
    start: Instant,
}

impl Table {
    fn new(total: usize, per_source: usize) -> Self {
        Table {
            slots: Slots::new(total, per_source),
            start: Instant::now(),
        }
    }

    fn try_admit(&mut self, peer: &str, name: &str, at_ms: u64) -> Admission<String> {
        let now = self.start + Duration::from_millis(at_ms);
        self.slots.admit(ip(peer), name.to_string(), now)
    }

    /// Admits a connection: its id and what it displaced.
    fn admit(&mut self, peer: &str, name: &str, at_ms: u64) -> (u64, Option<(String, Shed)>) {
        match self.try_admit(peer, name, at_ms) {
            Admission::Admitted { id, evicted } => (id, evicted),
            Admission::Refused(why) => panic!("{name} from {peer} refused: {why:?}"),
        }
    }
}

#[test]
fn a_source_over_its_cap_displaces_its_own_oldest_waiting_connection_after_the_grace() {
    let mut t = Table::new(64, 3);
    let (first, _) = t.admit("192.0.2.10", "a0", 0);
    t.admit("192.0.2.10", "a1", 0);
    t.admit("192.0.2.10", "a2", 0);
    t.admit("192.0.2.11", "b0", 0);
    t.slots.answering(first);
    assert_eq!(
        t.try_admit("192.0.2.10", "a3", 100),
        Admission::Refused(Shed::SourceRefused),
        "a1 and a2 have waited less than the grace: a probe among them is safe"
    );
    let (_, evicted) = t.admit("192.0.2.10", "a3", 300);
    assert_eq!(
        evicted,
        Some(("a1".to_string(), Shed::SourceEvicted)),
        "a0 is being answered: a1 is the oldest waiting of 192.0.2.10, b0 is another source's"
    );
    assert_eq!(t.slots.held(), 4);
}

#[test]
fn a_full_table_displaces_from_the_source_holding_the_most_slots() {
    let mut t = Table::new(6, 4);
    for (i, name) in ["a0", "a1", "a2"].iter().enumerate() {
        t.admit("192.0.2.10", name, i as u64);
    }
    t.admit("192.0.2.11", "b0", 3);
    t.admit("192.0.2.11", "b1", 4);
    t.admit("192.0.2.12", "c0", 5);
    let (_, evicted) = t.admit("192.0.2.65", "probe", 6);
    assert_eq!(
        evicted,
        Some(("a0".to_string(), Shed::Evicted)),
        "192.0.2.10 holds the most: its oldest waiting one goes, at once"
    );
    let (_, evicted) = t.admit("192.0.2.66", "probe2", 7);
    assert!(
        matches!(&evicted, Some((name, Shed::Evicted)) if name == "a1" || name == "b0"),
        "a source holding two gives one up: {evicted:?}"
    );
}

#[test]
fn a_flood_that_holds_its_fair_share_displaces_no_probe() {
    let mut t = Table::new(4, 4);
    let (probe, _) = t.admit("192.0.2.65", "probe", 0);
    t.admit("192.0.2.10", "a0", 1);
    t.admit("192.0.2.11", "b0", 2);
    t.admit("192.0.2.12", "c0", 3);
    for (peer, at) in [("192.0.2.13", 4), ("192.0.2.10", 5), ("192.0.2.14", 6)] {
        assert_eq!(
            t.try_admit(peer, "flood", at),
            Admission::Refused(Shed::Refused),
            "every source holds one: {peer} displaces nobody, the probe least of all"
        );
    }
    t.slots.answering(probe);
    t.slots.release(probe);
    let (_, evicted) = t.admit("192.0.2.65", "next probe", 7);
    assert_eq!(evicted, None, "a released slot is free");
}

#[test]
fn a_new_connection_is_refused_when_every_candidate_is_being_answered() {
    let mut t = Table::new(3, 2);
    let (a0, _) = t.admit("192.0.2.10", "a0", 0);
    let (a1, _) = t.admit("192.0.2.10", "a1", 0);
    t.slots.answering(a0);
    t.slots.answering(a1);
    assert_eq!(
        t.try_admit("192.0.2.10", "a2", 1000),
        Admission::Refused(Shed::SourceRefused)
    );
    let (b0, _) = t.admit("192.0.2.11", "b0", 1000);
    t.slots.answering(b0);
    assert_eq!(
        t.try_admit("192.0.2.12", "c0", 1000),
        Admission::Refused(Shed::Refused)
    );
}

#[test]
fn a_displaced_connection_frees_its_slot_and_releasing_it_again_is_harmless() {
    let mut t = Table::new(2, 2);
    let (a0, _) = t.admit("192.0.2.10", "a0", 0);
    t.admit("192.0.2.10", "a1", 0);
    let (a2, evicted) = t.admit("192.0.2.10", "a2", 300);
    assert_eq!(evicted, Some(("a0".to_string(), Shed::SourceEvicted)));
    t.slots.release(a0);
    t.slots.answering(a0);
    assert_eq!(t.slots.held(), 2);
    t.slots.release(a2);
    assert_eq!(t.slots.held(), 1);
}

#[test]
fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
    assert_eq!(
        Source::of(ip("::ffff:192.0.2.10")),
        Source::of(ip("192.0.2.10")),
        "an IPv4 peer on a dual-stack socket"
    );
    assert_ne!(Source::of(ip("192.0.2.10")), Source::of(ip("192.0.2.11")));
    assert_eq!(
        Source::of(ip("2001:db8:1:2::10")),
        Source::of(ip("2001:db8:1:2:ffff::1"))
    );
    assert_ne!(
        Source::of(ip("2001:db8:1:2::10")),
        Source::of(ip("2001:db8:1:3::10"))
    );
    let mut t = Table::new(64, 2);
    t.admit("2001:db8:1:2::1", "a0", 0);
    t.admit("2001:db8:1:2::2", "a1", 0);
    let (_, evicted) = t.admit("2001:db8:1:2::3", "a2", 300);
    assert_eq!(
        evicted,
        Some(("a0".to_string(), Shed::SourceEvicted)),
        "another address of the same /64 is the same source"
    );
}
