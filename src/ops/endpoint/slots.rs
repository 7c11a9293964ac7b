//! The endpoint's connection slots (pure: no sockets; the time is given): which
//! connections hold one, from which source, since when, and whether each has sent its
//! request yet; and what a new connection gets.
//!
//! Slots are shared fairly between sources, so that a flood, from one address or from
//! many, never keeps a kubelet probe out nor displaces it:
//! - a source that holds [`MAX_PER_SOURCE`] slots gets one only by displacing its own
//!   oldest connection still waiting for its request, and only one that has waited at
//!   least [`GRACE`] (a probe sends its request at once: its own source's flood, a
//!   hostNetwork pod on the node's address, cannot displace it before it is answered);
//! - when all [`MAX_CONNECTIONS`] are taken, a new connection displaces the oldest
//!   waiting connection of the source holding the most slots, and only when that source
//!   holds more than the newcomer's would (a source with few slots, such as the node
//!   with its probes, is the last to lose one, and a flood that holds its fair share
//!   displaces nobody).
//!
//! Otherwise the new connection is refused.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Connections the endpoint holds at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections one source (an IPv4 address, an IPv6 /64) holds at once.
pub const MAX_PER_SOURCE: usize = 8;
/// How long a connection is safe from its own source's newer connections while it
/// waits for its request.
pub const GRACE: Duration = Duration::from_millis(250);

/// Where a connection comes from, for [`MAX_PER_SOURCE`]: an IPv4 address (also when
/// it reaches a dual-stack socket as `::ffff:a.b.c.d`), or an IPv6 address's /64,
/// which one host usually holds whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source(IpAddr);

impl Source {
    /// The source of a connection from `peer`.
    pub fn of(peer: IpAddr) -> Self {
        match peer.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(prefix.into()))
            }
            v4 => Source(v4),
        }
    }
}

/// What a new connection gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<T> {
    /// A slot, numbered `id`; `evicted` is the handle of the connection it displaced
    /// (to be closed), and why.
    Admitted {
        /// The new connection's number, for [`Slots::answering`] and [`Slots::release`].
        id: u64,
        /// The displaced connection, if one was.
        evicted: Option<(T, Shed)>,
    },
    /// No slot: every connection it could displace is being answered.
    Refused(Shed),
}

/// Why a connection was closed unanswered (the metric's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Its source held its [`MAX_PER_SOURCE`] slots; it was the oldest still waiting,
    /// for longer than [`GRACE`].
    SourceEvicted,
    /// Every slot was taken; it was the oldest still waiting of the source holding the
    /// most slots.
    Evicted,
    /// New, and its source's slots were all being answered or within [`GRACE`].
    SourceRefused,
    /// New, every slot taken, and no source holding more than its would.
    Refused,
}

impl Shed {
    /// Every reason, for series that exist from the start.
    pub const ALL: [Shed; 4] = [
        Shed::SourceEvicted,
        Shed::Evicted,
        Shed::SourceRefused,
        Shed::Refused,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            Shed::SourceEvicted => "source-evicted",
            Shed::Evicted => "evicted",
            Shed::SourceRefused => "source-refused",
            Shed::Refused => "refused",
        }
    }
}

#[derive(Debug)]
struct Entry<T> {
    source: Source,
    since: Instant,
    waiting: bool,
    handle: T,
}

/// The connections holding a slot, by number (numbers grow: lower is older), each
/// with a handle that closes it (`T`).
#[derive(Debug)]
pub struct Slots<T> {
    entries: BTreeMap<u64, Entry<T>>,
    next: u64,
    total: usize,
    per_source: usize,
}

impl<T> Slots<T> {
    /// At most `total` connections, `per_source` of one source.
    pub fn new(total: usize, per_source: usize) -> Self {
        Slots {
            entries: BTreeMap::new(),
            next: 0,
            total,
            per_source,
        }
    }

    /// Takes a slot for a new connection from `peer` at `now`, closed through `handle`.
    pub fn admit(&mut self, peer: IpAddr, handle: T, now: Instant) -> Admission<T> {
        let source = Source::of(peer);
        let held = self.held_by(source);
        let evicted = if held >= self.per_source {
            let waited = |e: &Entry<T>| now.saturating_duration_since(e.since) >= GRACE;
            match self.oldest_waiting(source, waited) {
                Some(id) => Some((id, Shed::SourceEvicted)),
                None => return Admission::Refused(Shed::SourceRefused),
            }
        } else if self.entries.len() >= self.total {
            let victim = self
                .fullest_source(held + 1)
                .and_then(|fullest| self.oldest_waiting(fullest, |_| true));
            match victim {
                Some(id) => Some((id, Shed::Evicted)),
                None => return Admission::Refused(Shed::Refused),
            }
        } else {
            None
        };
        let evicted = evicted.and_then(|(id, why)| Some((self.entries.remove(&id)?.handle, why)));
        let id = self.next;
        self.next += 1;
        self.entries.insert(
            id,
            Entry {
                source,
                since: now,
                waiting: true,
                handle,
            },
        );
        Admission::Admitted { id, evicted }
    }

    /// Connection `id` sent its request: it is being answered and no longer displaced.
    pub fn answering(&mut self, id: u64) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.waiting = false;
        }
    }

    /// Connection `id` ended: its slot is free (nothing when it was displaced).
    pub fn release(&mut self, id: u64) {
        self.entries.remove(&id);
    }

    /// Connections holding a slot.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.entries.len()
    }

    /// Slots `source` holds.
    fn held_by(&self, source: Source) -> usize {
        self.entries.values().filter(|e| e.source == source).count()
    }

    /// The source holding the most slots, when it holds more than `share` and has a
    /// connection still waiting for its request (ties: the one whose waiting connection
    /// is the oldest).
    fn fullest_source(&self, share: usize) -> Option<Source> {
        let mut best: Option<(usize, Source)> = None;
        for entry in self.entries.values().filter(|e| e.waiting) {
            let held = self.held_by(entry.source);
            if held > share && best.is_none_or(|(most, _)| held > most) {
                best = Some((held, entry.source));
            }
        }
        best.map(|(_, source)| source)
    }

    /// The oldest connection of `source` still waiting for its request that `eligible`
    /// accepts.
    fn oldest_waiting(&self, source: Source, eligible: impl Fn(&Entry<T>) -> bool) -> Option<u64> {
        self.entries
            .iter()
            .find(|(_, e)| e.waiting && e.source == source && eligible(e))
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests;
