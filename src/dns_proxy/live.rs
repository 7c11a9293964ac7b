//! The forwarders in service, changed by a list reload while connections run: each
//! port's accept loops read its current [`Forward`] from a [`Slot`] at every accept,
//! so a new target takes over without touching the listener, and each port has the
//! notices that stop its accept loops and its re-resolution. What a new list changes
//! is planned by [`plan`] (pure). Ports are looked up in maps, so that a reload of a
//! list of thousands of lines takes time in proportion to its length.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::destination::Forwarder;
use super::forward::Forward;
use crate::serve::shutdown::Shutdown;

/// Where a port's accept loops find the forward to use.
pub struct Slot(RwLock<Arc<Forward>>);

impl Slot {
    /// The forward in use now.
    pub fn current(&self) -> Arc<Forward> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, forward: Arc<Forward>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = forward;
    }
}

/// One port in service.
struct Entry {
    slot: Arc<Slot>,
    /// Stops the port's accept loops (every worker's).
    listening: watch::Sender<bool>,
    /// Stops the re-resolution of the forward in use.
    resolving: watch::Sender<bool>,
}

/// Every port in service, and whether the proxy stops (a port put in service after
/// that is stopped at once).
#[derive(Default)]
pub struct Live {
    entries: Mutex<BTreeMap<u16, Entry>>,
    stopped: AtomicBool,
}

/// A port newly put in service: what its accept loops and its re-resolution wait on.
pub struct Started {
    /// The slot its accept loops read.
    pub slot: Arc<Slot>,
    /// Turns true when the port is removed or the proxy stops.
    pub listening: Shutdown,
    /// Turns true when the forward is replaced, the port removed or the proxy stops.
    pub resolving: Shutdown,
}

impl Live {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The forwards in service, by port.
    pub fn forwards(&self) -> Vec<Arc<Forward>> {
        self.entries().values().map(|e| e.slot.current()).collect()
    }

    /// Puts `forward` in service on its port (not in service yet).
    pub fn start(&self, forward: Arc<Forward>) -> Started {
        let (listening, listening_notice) = watch::channel(false);
        let (resolving, resolving_notice) = watch::channel(false);
        let port = forward.forwarder.port;
        let slot = Arc::new(Slot(RwLock::new(forward)));
        let mut entries = self.entries();
        if self.stopped.load(Ordering::SeqCst) {
            let _ = (listening.send(true), resolving.send(true));
        }
        let entry = Entry {
            slot: slot.clone(),
            listening,
            resolving,
        };
        if let Some(previous) = entries.insert(port, entry) {
            previous.stop();
        }
        Started {
            slot,
            listening: listening_notice,
            resolving: resolving_notice,
        }
    }

    /// Puts `forward` in place of the one on its port; returns the notice that stops
    /// its re-resolution (the old one's is sent).
    pub fn replace(&self, forward: Arc<Forward>) -> Option<Shutdown> {
        let mut entries = self.entries();
        let entry = entries.get_mut(&forward.forwarder.port)?;
        let (resolving, notice) = watch::channel(false);
        let _ = std::mem::replace(&mut entry.resolving, resolving).send(true);
        entry.slot.set(forward);
        Some(notice)
    }

    /// Takes `port` out of service: its accept loops and re-resolution stop (open
    /// connections go on).
    pub fn remove(&self, port: u16) {
        if let Some(entry) = self.entries().remove(&port) {
            entry.stop();
        }
    }

    /// Stops every port (shutdown).
    pub fn stop_all(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.entries().values().for_each(Entry::stop);
    }
}

impl Entry {
    /// Stops the port's accept loops and re-resolution.
    fn stop(&self) {
        let _ = self.listening.send(true);
        let _ = self.resolving.send(true);
    }
}

/// What a new list changes, by port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Lines whose port is new.
    pub added: Vec<Forwarder>,
    /// Ports no longer listed.
    pub removed: Vec<u16>,
    /// Lines whose port stays with another target (or target port).
    pub replaced: Vec<Forwarder>,
    /// Lines kept as they were, rebuilt because the set of ports changed (see [`plan`]).
    pub rebuilt: Vec<Forwarder>,
}

/// The changes from the lines `old` to the lines `new` (each line's port appears once in
/// its list). When the set of ports changes, every kept line is rebuilt too, so that each
/// forward knows the new set of the proxy's own ports (never a backend). Linear: each
/// list is looked up by port in a map of the other.
pub fn plan(old: &[Forwarder], new: &[Forwarder]) -> Changes {
    let old_by_port: HashMap<u16, &Forwarder> = old.iter().map(|f| (f.port, f)).collect();
    let new_ports: HashSet<u16> = new.iter().map(|f| f.port).collect();
    let mut changes = Changes {
        removed: old
            .iter()
            .map(|f| f.port)
            .filter(|port| !new_ports.contains(port))
            .collect(),
        ..Changes::default()
    };
    let mut kept = Vec::new();
    for line in new {
        match old_by_port.get(&line.port) {
            None => changes.added.push(line.clone()),
            Some(previous) if *previous != line => changes.replaced.push(line.clone()),
            Some(_) => kept.push(line.clone()),
        }
    }
    if !changes.added.is_empty() || !changes.removed.is_empty() {
        changes.rebuilt = kept;
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns_proxy::destination::parse_forwarders;

    fn lines(text: &str) -> Vec<Forwarder> {
        parse_forwarders(text).unwrap()
    }

    #[test]
    fn a_port_put_in_service_after_the_stop_is_stopped_at_once() {
        use crate::dns_proxy::backends::Backends;
        use crate::dns_proxy::reach::Reach;
        use crate::serve::pod_addresses::{Listing, PodAddresses};
        let reach = Reach {
            own_ports: Vec::new(),
            pod: PodAddresses::fixed(Listing::default()),
        };
        let forward =
            |line| Forward::new(lines(line).remove(0), Backends::default(), reach.clone());
        let live = Live::default();
        let before = live.start(forward("80 203.0.113.5"));
        assert!(!*before.listening.borrow());
        live.stop_all();
        assert!(*before.listening.borrow() && *before.resolving.borrow());
        let after = live.start(forward("81 203.0.113.5"));
        assert!(*after.listening.borrow() && *after.resolving.borrow());
    }

    #[test]
    fn by_port_added_removed_replaced() {
        let old = lines("80 203.0.113.5\n443 203.0.113.6\n5432 db.example.com");
        let same_ports = lines("80 203.0.113.5\n443 203.0.113.7\n5432 db.example.com");
        assert_eq!(
            plan(&old, &same_ports),
            Changes {
                replaced: lines("443 203.0.113.7"),
                ..Changes::default()
            }
        );
        assert_eq!(plan(&old, &old), Changes::default());
        let new_ports = lines("80 203.0.113.5\n8443 203.0.113.6 443\n5432 db.example.com 5433");
        assert_eq!(
            plan(&old, &new_ports),
            Changes {
                added: lines("8443 203.0.113.6 443"),
                removed: vec![443],
                replaced: lines("5432 db.example.com 5433"),
                rebuilt: lines("80 203.0.113.5"),
            }
        );
    }

    #[test]
    fn lists_of_30k_lines_are_planned_whole() {
        let list = |ports: std::ops::Range<u16>, last: u8| -> String {
            ports
                .map(|port| {
                    format!(
                        "{port} 203.0.113.{} 80\n",
                        if port % 2 == 0 { last } else { 5 }
                    )
                })
                .collect()
        };
        let (old, new) = (lines(&list(1..30_001, 6)), lines(&list(10_001..40_001, 7)));
        let changes = plan(&old, &new);
        assert_eq!(changes.added, new[20_000..]);
        assert_eq!(changes.removed, (1..10_001).collect::<Vec<u16>>());
        let kept = &new[..20_000];
        let (even, odd): (Vec<_>, Vec<_>) = kept.iter().cloned().partition(|f| f.port % 2 == 0);
        assert_eq!((changes.replaced, changes.rebuilt), (even, odd));
    }
}
