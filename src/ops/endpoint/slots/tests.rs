use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Admits a connection from `peer` with handle `name`: its id and what it displaced.
fn admit(slots: &mut Slots<String>, peer: &str, name: &str) -> (u64, Option<(String, Shed)>) {
    match slots.admit(ip(peer), name.to_string()) {
        Admission::Admitted { id, evicted } => (id, evicted),
        Admission::Refused(why) => panic!("{name} from {peer} refused: {why:?}"),
    }
}

#[test]
fn a_source_over_its_cap_displaces_its_own_oldest_waiting_connection() {
    let mut slots = Slots::new(64, 3);
    let (first, _) = admit(&mut slots, "192.0.2.10", "a0");
    admit(&mut slots, "192.0.2.10", "a1");
    admit(&mut slots, "192.0.2.10", "a2");
    admit(&mut slots, "192.0.2.11", "b0");
    slots.answering(first);
    let (_, evicted) = admit(&mut slots, "192.0.2.10", "a3");
    assert_eq!(
        evicted,
        Some(("a1".to_string(), Shed::SourceEvicted)),
        "a0 is being answered: a1 is the oldest waiting of 192.0.2.10, b0 is another source's"
    );
    assert_eq!(slots.held(), 4);
}

#[test]
fn a_full_table_displaces_the_oldest_waiting_connection_of_any_source() {
    let mut slots = Slots::new(4, 2);
    let (a0, _) = admit(&mut slots, "192.0.2.10", "a0");
    admit(&mut slots, "192.0.2.10", "a1");
    admit(&mut slots, "192.0.2.11", "b0");
    admit(&mut slots, "192.0.2.12", "c0");
    slots.answering(a0);
    let (_, evicted) = admit(&mut slots, "192.0.2.65", "probe");
    assert_eq!(evicted, Some(("a1".to_string(), Shed::Evicted)));
    let (_, evicted) = admit(&mut slots, "192.0.2.66", "probe2");
    assert_eq!(evicted, Some(("b0".to_string(), Shed::Evicted)));
    assert_eq!(slots.held(), 4);
}

#[test]
fn a_new_connection_is_refused_only_when_every_candidate_is_being_answered() {
    let mut slots = Slots::new(3, 2);
    let (a0, _) = admit(&mut slots, "192.0.2.10", "a0");
    let (a1, _) = admit(&mut slots, "192.0.2.10", "a1");
    slots.answering(a0);
    slots.answering(a1);
    assert_eq!(
        slots.admit(ip("192.0.2.10"), "a2".into()),
        Admission::Refused(Shed::SourceRefused)
    );
    let (b0, _) = admit(&mut slots, "192.0.2.11", "b0");
    slots.answering(b0);
    assert_eq!(
        slots.admit(ip("192.0.2.12"), "c0".into()),
        Admission::Refused(Shed::Refused)
    );
    slots.release(b0);
    let (_, evicted) = admit(&mut slots, "192.0.2.12", "c0");
    assert_eq!(evicted, None, "a released slot is free");
}

#[test]
fn a_displaced_connection_frees_its_slot_and_releasing_it_again_is_harmless() {
    let mut slots = Slots::new(2, 2);
    let (a0, _) = admit(&mut slots, "192.0.2.10", "a0");
    admit(&mut slots, "192.0.2.10", "a1");
    let (a2, evicted) = admit(&mut slots, "192.0.2.10", "a2");
    assert_eq!(evicted, Some(("a0".to_string(), Shed::SourceEvicted)));
    slots.release(a0);
    slots.answering(a0);
    assert_eq!(slots.held(), 2);
    slots.release(a2);
    assert_eq!(slots.held(), 1);
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
    let mut slots = Slots::new(64, 2);
    admit(&mut slots, "2001:db8:1:2::1", "a0");
    admit(&mut slots, "2001:db8:1:2::2", "a1");
    let (_, evicted) = admit(&mut slots, "2001:db8:1:2::3", "a2");
    assert_eq!(
        evicted,
        Some(("a0".to_string(), Shed::SourceEvicted)),
        "another address of the same /64 is the same source"
    );
}
