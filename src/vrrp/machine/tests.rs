use super::*;

const MS: Duration = Duration::from_millis(1);

fn params(priority: u8, primary: &str, preempt: bool) -> Params {
    Params {
        priority,
        interval: 100 * MS,
        preempt,
        primary: primary.parse().unwrap(),
    }
}

fn started(priority: u8, primary: &str, preempt: bool, now: Instant) -> Machine {
    let mut machine = Machine::new(params(priority, primary, preempt));
    assert_eq!(
        machine.start(now),
        [Action::Become(State::Backup, Reason::Startup)]
    );
    machine
}

/// A machine that became master at `now` (its master down interval passed).
fn master(priority: u8, primary: &str, now: Instant) -> Machine {
    let mut machine = started(priority, primary, false, now);
    let due = machine.deadline().unwrap();
    machine.timer(due);
    assert_eq!(machine.state(), State::Master);
    machine
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn master_down_interval_and_skew_follow_rfc_5798() {
    let now = Instant::now();
    let machine = started(100, "198.51.100.11", false, now);
    // Skew = (256 - 100) * 100 ms / 256 = 60.9375 ms; down = 300 ms + skew.
    assert_eq!(
        machine.skew(),
        Duration::from_micros(60_937) + Duration::from_nanos(500)
    );
    assert_eq!(machine.down_interval(), 300 * MS + machine.skew());
    assert_eq!(machine.deadline(), Some(now + machine.down_interval()));
    let high = started(254, "198.51.100.11", false, now);
    assert!(high.down_interval() < machine.down_interval());
}

#[test]
fn a_backup_without_advertisements_becomes_master_and_advertises() {
    let now = Instant::now();
    let mut machine = started(100, "198.51.100.11", false, now);
    let due = machine.deadline().unwrap();
    assert_eq!(
        machine.timer(due),
        [
            Action::Send(100),
            Action::Become(State::Master, Reason::MasterDown)
        ]
    );
    assert_eq!(machine.deadline(), Some(due + 100 * MS));
    assert_eq!(machine.timer(due + 100 * MS), [Action::Send(100)]);
    assert_eq!(machine.state(), State::Master);
}

#[test]
fn advertisements_keep_a_backup_backup_and_it_learns_the_masters_interval() {
    let now = Instant::now();
    let mut machine = started(100, "198.51.100.11", false, now);
    let later = now + 200 * MS;
    let peer = ip("198.51.100.12");
    assert!(machine.advertisement(later, peer, 50, 1000 * MS).is_empty());
    assert_eq!(machine.state(), State::Backup);
    assert_eq!(machine.deadline(), Some(later + 3000 * MS + machine.skew()));
    assert!(
        machine.skew() > 600 * MS,
        "the skew follows the master's interval"
    );
}

#[test]
fn priority_0_hands_over_after_the_skew_time_alone() {
    let now = Instant::now();
    let mut machine = started(100, "198.51.100.11", false, now);
    let peer = ip("198.51.100.12");
    machine.advertisement(now, peer, 200, 100 * MS);
    let at = now + 50 * MS;
    assert!(machine.advertisement(at, peer, 0, 100 * MS).is_empty());
    assert_eq!(machine.deadline(), Some(at + machine.skew()));
    assert!(machine.skew() < 100 * MS);
    assert_eq!(
        machine.timer(at + machine.skew()),
        [
            Action::Send(100),
            Action::Become(State::Master, Reason::Handover)
        ]
    );
}

#[test]
fn a_master_yields_to_a_higher_priority_or_a_higher_address_on_a_tie() {
    let now = Instant::now();
    for (priority, from, yields) in [
        (101, "198.51.100.2", true),
        (99, "198.51.100.200", false),
        (100, "198.51.100.12", true),
        (100, "198.51.100.10", false),
    ] {
        let mut machine = master(100, "198.51.100.11", now);
        let actions = machine.advertisement(now, ip(from), priority, 100 * MS);
        match yields {
            true => {
                assert_eq!(actions, [Action::Become(State::Backup, Reason::Preempted)]);
                assert_eq!(machine.state(), State::Backup);
                assert_eq!(machine.deadline(), Some(now + machine.down_interval()));
            }
            false => {
                assert!(actions.is_empty(), "{priority} {from}");
                assert_eq!(machine.state(), State::Master);
            }
        }
    }
}

#[test]
fn ipv6_ties_compare_the_whole_address() {
    let now = Instant::now();
    let mut machine = master(100, "fe80::2", now);
    assert!(
        machine
            .advertisement(now, ip("fe80::1"), 100, 100 * MS)
            .is_empty()
    );
    let actions = machine.advertisement(now, ip("fe80::1:0:0:1"), 100, 100 * MS);
    assert_eq!(actions, [Action::Become(State::Backup, Reason::Preempted)]);
}

#[test]
fn a_master_answers_priority_0_with_an_advertisement() {
    let now = Instant::now();
    let mut machine = master(100, "198.51.100.11", now);
    let at = now + 10 * MS;
    assert_eq!(
        machine.advertisement(at, ip("198.51.100.12"), 0, 100 * MS),
        [Action::Send(100)]
    );
    assert_eq!(machine.deadline(), Some(at + 100 * MS));
}

#[test]
fn preemption_ignores_lower_masters_and_without_it_a_backup_follows_them() {
    let now = Instant::now();
    let lower = ip("198.51.100.12");
    let mut patient = started(200, "198.51.100.11", false, now);
    let mut eager = started(200, "198.51.100.11", true, now);
    let at = now + 300 * MS;
    patient.advertisement(at, lower, 100, 100 * MS);
    eager.advertisement(at, lower, 100, 100 * MS);
    assert!(patient.deadline() > eager.deadline());
    let due = eager.deadline().unwrap();
    assert_eq!(
        eager.timer(due)[1],
        Action::Become(State::Master, Reason::MasterDown)
    );
    // The lower master then yields to the eager one's advertisements.
    let mut old = master(100, "198.51.100.12", now);
    let yielded = old.advertisement(due, ip("198.51.100.11"), 200, 100 * MS);
    assert_eq!(yielded, [Action::Become(State::Backup, Reason::Preempted)]);
}

#[test]
fn two_masters_after_a_partition_become_one_at_the_first_advertisement() {
    let now = Instant::now();
    let mut a = master(100, "198.51.100.11", now);
    let mut b = master(100, "198.51.100.12", now);
    let a_sees = a.advertisement(now, ip("198.51.100.12"), 100, 100 * MS);
    let b_sees = b.advertisement(now, ip("198.51.100.11"), 100, 100 * MS);
    assert_eq!(a_sees, [Action::Become(State::Backup, Reason::Preempted)]);
    assert!(b_sees.is_empty());
    assert_eq!((a.state(), b.state()), (State::Backup, State::Master));
}

#[test]
fn shutdown_sends_priority_0_from_a_master_only() {
    let now = Instant::now();
    let mut m = master(100, "198.51.100.11", now);
    assert_eq!(
        m.shutdown(),
        [
            Action::Send(0),
            Action::Become(State::Initialize, Reason::Shutdown)
        ]
    );
    assert_eq!((m.state(), m.deadline()), (State::Initialize, None));
    let mut b = started(100, "198.51.100.11", false, now);
    assert_eq!(
        b.shutdown(),
        [Action::Become(State::Initialize, Reason::Shutdown)]
    );
    assert!(b.shutdown().is_empty());
    assert!(
        b.advertisement(now, ip("198.51.100.12"), 100, 100 * MS)
            .is_empty()
    );
    assert!(b.timer(now).is_empty());
}

#[test]
fn a_resigning_master_sends_priority_0_and_waits_as_a_backup() {
    let now = Instant::now();
    let mut machine = master(100, "2001:db8:1::12", now);
    let later = now + 50 * MS;
    assert_eq!(
        machine.resign(later, Reason::OtherFamily),
        [
            Action::Send(0),
            Action::Become(State::Backup, Reason::OtherFamily)
        ]
    );
    assert_eq!(machine.state(), State::Backup);
    assert_eq!(machine.deadline(), Some(later + machine.down_interval()));
    assert!(
        machine.resign(later, Reason::OtherFamily).is_empty(),
        "only a master resigns"
    );
}
