//! The endpoint's connection slots (pure: no sockets, no clock): which connections
//! hold one, from which source, and whether each has sent its request yet; and what a
//! new connection gets.
//!
//! A new connection always gets a slot unless every connection it could displace is
//! already being answered: when its source holds [`MAX_PER_SOURCE`] slots, the
//! source's oldest connection still waiting for its request is closed for it; when all
//! [`MAX_CONNECTIONS`] are taken, the oldest waiting one of any source is. So idle
//! connections, from one address or from many, never keep a fresh probe out.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Connections the endpoint holds at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections one source (an IPv4 address, an IPv6 /64) holds at once.
pub const MAX_PER_SOURCE: usize = 8;

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
    /// Its source held its [`MAX_PER_SOURCE`] slots; it was the oldest still waiting.
    SourceEvicted,
    /// Every slot was taken; it was the oldest still waiting.
    Evicted,
    /// New, and its source's slots were all being answered.
    SourceRefused,
    /// New, and every slot was being answered.
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

    /// Takes a slot for a new connection from `peer`, closed through `handle`.
    pub fn admit(&mut self, peer: IpAddr, handle: T) -> Admission<T> {
        let source = Source::of(peer);
        let held = self.entries.values().filter(|e| e.source == source).count();
        let evicted = if held >= self.per_source {
            match self.oldest_waiting(Some(source)) {
                Some(id) => Some((id, Shed::SourceEvicted)),
                None => return Admission::Refused(Shed::SourceRefused),
            }
        } else if self.entries.len() >= self.total {
            match self.oldest_waiting(None) {
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

    /// The oldest connection still waiting for its request (of `source`, if given).
    fn oldest_waiting(&self, source: Option<Source>) -> Option<u64> {
        self.entries
            .iter()
            .find(|(_, e)| e.waiting && source.is_none_or(|s| e.source == s))
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests;
