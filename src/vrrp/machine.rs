//! The VRRP version 3 state machine of one virtual router (RFC 5798 section 6.4), on
//! plain data: told the time, the advertisements received and when its timer is due,
//! it answers with what to send and which state to take (pure).
//!
//! Initialize → Backup at startup (a pod's priority is at most 254: never the address
//! owner). A backup becomes master when no advertisement came for
//! `Master_Down_Interval` (3 × the master's interval + `Skew_Time`, shorter the higher
//! its priority), or `Skew_Time` after the master's priority 0. A master steps down
//! for an advertisement of a higher priority, or of the same priority from a higher
//! primary address; it answers a priority 0 at once with an advertisement of its own.
//! Without preemption a backup follows any master; with it, it ignores masters of a
//! lower priority and so takes over.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The state of one virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running (before start, after shutdown).
    Initialize,
    /// Watching the master; holds nothing.
    Backup,
    /// Holding the address and advertising.
    Master,
}

impl State {
    /// Every state, in the order of the `state` label.
    pub const ALL: [State; 3] = [State::Initialize, State::Backup, State::Master];

    /// The metric label and log word.
    pub fn label(self) -> &'static str {
        match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why the state changed (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The process started.
    Startup,
    /// No advertisement from a master within `Master_Down_Interval`.
    MasterDown,
    /// The master sent priority 0 (it stops), and `Skew_Time` passed.
    Handover,
    /// An advertisement of a higher priority (or the same from a higher address).
    Preempted,
    /// The process stops.
    Shutdown,
    /// The pod is backup in IPv4: its IPv6 master hands over, so that one pod holds
    /// both families.
    OtherFamily,
}

impl Reason {
    /// The metric label and log word.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::MasterDown => "master-down",
            Reason::Handover => "handover",
            Reason::Preempted => "preempted",
            Reason::Shutdown => "shutdown",
            Reason::OtherFamily => "other-family",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Every transition the machine makes: the state taken and why (for series that
/// exist from the start).
pub const TRANSITIONS: [(State, Reason); 6] = [
    (State::Backup, Reason::Startup),
    (State::Master, Reason::MasterDown),
    (State::Master, Reason::Handover),
    (State::Backup, Reason::Preempted),
    (State::Initialize, Reason::Shutdown),
    (State::Backup, Reason::OtherFamily),
];

/// What the machine asks of the one who runs it, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority.
    Send(u8),
    /// Take this state (a master takes the address; a backup releases it).
    Become(State, Reason),
}

/// The settings of one virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// This router's priority, 1-254.
    pub priority: u8,
    /// `Advertisement_Interval`: how often it advertises as master.
    pub interval: Duration,
    /// `Preempt_Mode`.
    pub preempt: bool,
    /// The primary address it sends from (the tie-break).
    pub primary: IpAddr,
}

/// One virtual router's state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    params: Params,
    state: State,
    /// `Master_Adver_Interval`: the master's, as its advertisements say.
    master_interval: Duration,
    /// When the timer (Adver_Timer or Master_Down_Timer) fires.
    deadline: Option<Instant>,
    /// The master sent priority 0: the coming takeover is a handover.
    handing_over: bool,
}

impl Machine {
    /// A machine in Initialize.
    pub fn new(params: Params) -> Self {
        Machine {
            params,
            state: State::Initialize,
            master_interval: params.interval,
            deadline: None,
            handing_over: false,
        }
    }

    /// Its state.
    pub fn state(&self) -> State {
        self.state
    }

    /// When [`Machine::timer`] is due; `None` in Initialize.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// `Skew_Time`: (256 − priority) / 256 of the master's interval.
    pub fn skew(&self) -> Duration {
        self.master_interval * (256 - u32::from(self.params.priority)) / 256
    }

    /// `Master_Down_Interval`: three of the master's intervals and `Skew_Time`.
    pub fn down_interval(&self) -> Duration {
        self.master_interval * 3 + self.skew()
    }

    /// Startup: Initialize → Backup, waiting `Master_Down_Interval` for a master.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        if self.state != State::Initialize {
            return Vec::new();
        }
        self.master_interval = self.params.interval;
        self.deadline = Some(now + self.down_interval());
        self.state = State::Backup;
        vec![Action::Become(State::Backup, Reason::Startup)]
    }

    /// The timer fired at `now` (call when `now` ≥ [`Machine::deadline`]).
    pub fn timer(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Initialize => Vec::new(),
            State::Master => {
                self.deadline = Some(now + self.params.interval);
                vec![Action::Send(self.params.priority)]
            }
            State::Backup => {
                let reason = match std::mem::take(&mut self.handing_over) {
                    true => Reason::Handover,
                    false => Reason::MasterDown,
                };
                self.state = State::Master;
                self.deadline = Some(now + self.params.interval);
                vec![
                    Action::Send(self.params.priority),
                    Action::Become(State::Master, reason),
                ]
            }
        }
    }

    /// An advertisement of this virtual router arrived at `now` from `from` with the
    /// sender's `priority` and advertisement `interval`.
    pub fn advertisement(
        &mut self,
        now: Instant,
        from: IpAddr,
        priority: u8,
        interval: Duration,
    ) -> Vec<Action> {
        let local = self.params.priority;
        match self.state {
            State::Initialize => Vec::new(),
            State::Backup if priority == 0 => {
                self.handing_over = true;
                self.deadline = Some(now + self.skew());
                Vec::new()
            }
            State::Backup if !self.params.preempt || priority >= local => {
                self.handing_over = false;
                self.master_interval = interval;
                self.deadline = Some(now + self.down_interval());
                Vec::new()
            }
            State::Backup => Vec::new(),
            State::Master if priority == 0 => {
                self.deadline = Some(now + self.params.interval);
                vec![Action::Send(local)]
            }
            State::Master
                if priority > local || (priority == local && wins(from, self.params.primary)) =>
            {
                self.master_interval = interval;
                self.deadline = Some(now + self.down_interval());
                self.state = State::Backup;
                vec![Action::Become(State::Backup, Reason::Preempted)]
            }
            State::Master => Vec::new(),
        }
    }

    /// A master hands over and keeps running as backup (`reason`): it sends priority 0,
    /// so that a backup takes over after its `Skew_Time`, and waits for a master as a
    /// backup does. Nothing in another state.
    pub fn resign(&mut self, now: Instant, reason: Reason) -> Vec<Action> {
        if self.state != State::Master {
            return Vec::new();
        }
        self.state = State::Backup;
        self.master_interval = self.params.interval;
        self.deadline = Some(now + self.down_interval());
        vec![Action::Send(0), Action::Become(State::Backup, reason)]
    }

    /// Shutdown: a master sends priority 0 first; every state goes to Initialize.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let was = std::mem::replace(&mut self.state, State::Initialize);
        self.deadline = None;
        match was {
            State::Initialize => Vec::new(),
            State::Backup => vec![Action::Become(State::Initialize, Reason::Shutdown)],
            State::Master => vec![
                Action::Send(0),
                Action::Become(State::Initialize, Reason::Shutdown),
            ],
        }
    }
}

/// Whether `theirs` beats `ours` on a tie of priority: the greater address, compared
/// as an unsigned number.
fn wins(theirs: IpAddr, ours: IpAddr) -> bool {
    let number = |address: IpAddr| match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    number(theirs) > number(ours)
}

#[cfg(test)]
mod tests;
