//! The forwarders in service, changed by a list reload while connections run: each
//! port's accept loops read its current [`Forward`] from a [`Slot`] at every accept,
//! so a new target takes over without touching the listener, and each port has the
//! notices that stop its accept loops and its re-resolution. What a new list changes
//! is planned by [`plan`] (pure).

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
    entries: Mutex<Vec<Entry>>,
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
    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The forwards in service, in the order their ports were put in service.
    pub fn forwards(&self) -> Vec<Arc<Forward>> {
        self.entries().iter().map(|e| e.slot.current()).collect()
    }

    /// Puts `forward` in service on its port (not in service yet).
    pub fn start(&self, forward: Arc<Forward>) -> Started {
        let (listening, listening_notice) = watch::channel(false);
        let (resolving, resolving_notice) = watch::channel(false);
        let slot = Arc::new(Slot(RwLock::new(forward)));
        let mut entries = self.entries();
        if self.stopped.load(Ordering::SeqCst) {
            let _ = (listening.send(true), resolving.send(true));
        }
        entries.push(Entry {
            slot: slot.clone(),
            listening,
            resolving,
        });
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
        let port = forward.forwarder.port;
        let entry = entries
            .iter_mut()
            .find(|e| e.slot.current().forwarder.port == port)?;
        let (resolving, notice) = watch::channel(false);
        let _ = std::mem::replace(&mut entry.resolving, resolving).send(true);
        entry.slot.set(forward);
        Some(notice)
    }

    /// Takes `port` out of service: its accept loops and re-resolution stop (open
    /// connections go on).
    pub fn remove(&self, port: u16) {
        let mut entries = self.entries();
        if let Some(at) = entries
            .iter()
            .position(|e| e.slot.current().forwarder.port == port)
        {
            let entry = entries.remove(at);
            let _ = entry.listening.send(true);
            let _ = entry.resolving.send(true);
        }
    }

    /// Stops every port (shutdown).
    pub fn stop_all(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for entry in self.entries().iter() {
            let _ = entry.listening.send(true);
            let _ = entry.resolving.send(true);
        }
    }
}

/// What a new list changes, by port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Lines whose port is new.
    pub added: Vec<Forwarder>,
    /// Ports no longer listed.
    pub removed: Vec<u16>,
    /// Lines whose port stays with another target (or one to rebuild, see [`plan`]).
    pub replaced: Vec<Forwarder>,
}

/// The changes from the lines `old` to the lines `new`. When the set of ports changes,
/// every kept line is replaced too, so that each forward knows the new set of the
/// proxy's own ports (never a backend).
pub fn plan(old: &[Forwarder], new: &[Forwarder]) -> Changes {
    let has_port = |list: &[Forwarder], port| list.iter().any(|f| f.port == port);
    let added: Vec<Forwarder> = new
        .iter()
        .filter(|f| !has_port(old, f.port))
        .cloned()
        .collect();
    let removed: Vec<u16> = old
        .iter()
        .filter(|f| !has_port(new, f.port))
        .map(|f| f.port)
        .collect();
    let ports_changed = !added.is_empty() || !removed.is_empty();
    let replaced = new
        .iter()
        .filter(|f| has_port(old, f.port) && (ports_changed || !old.contains(f)))
        .cloned()
        .collect();
    Changes {
        added,
        removed,
        replaced,
    }
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
        let new_ports = lines("80 203.0.113.5\n8443 203.0.113.6 443\n5432 db.example.com");
        assert_eq!(
            plan(&old, &new_ports),
            Changes {
                added: lines("8443 203.0.113.6 443"),
                removed: vec![443],
                replaced: lines("80 203.0.113.5\n5432 db.example.com"),
            }
        );
    }
}
