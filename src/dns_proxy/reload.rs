//! Following `EGRESS_DNS_PROXY_DESTINATION_FILE`: a new list is parsed whole, its new
//! names looked up and its new ports bound before anything changes; then removed ports
//! stop accepting (open connections go on), kept ports get their new target in place
//! (the listener stays: no connection waiting on it is lost), and new ports are handed
//! to every worker. Anything that fails first leaves the running list as it was. The
//! list is parsed and compared with the running one off the runtime.

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::info;

use super::answer::{self, Names};
use super::backends::Backends;
use super::config::{DnsProxyConfig, LIST};
use super::destination::{Forwarder, Target, parse_forwarders};
use super::forward::Forward;
use super::live::{self, Changes, Live, Slot};
use super::reach::{Reach, dialable};
use super::{MIN_REFRESH, refresh, startup};
use crate::config::lines::first_bad_line;
use crate::error::{Error, Result};
use crate::ops::list_reload::{self, Refused};
use crate::ops::metrics::{DNS_PROXY, METRICS};
use crate::serve::list_watch::ListFile;
use crate::serve::listener;
use crate::serve::off_runtime;
use crate::serve::pod_addresses::PodAddresses;
use crate::serve::resolver::Resolver;
use crate::serve::shutdown::Shutdown;

/// A port a reload added, for one worker: its socket, its slot, its stop notice.
pub(super) struct Added {
    pub(super) listener: StdListener,
    pub(super) slot: Arc<Slot>,
    pub(super) stop: Shutdown,
}

/// What applying a list needs.
pub(super) struct Reloader {
    config: Arc<DnsProxyConfig>,
    /// The ports in service.
    pub(super) live: Arc<Live>,
    resolver: tokio::sync::Mutex<Option<Resolver>>,
    /// The proxy's own ports that are not forwarders (answers, metrics).
    fixed_ports: Vec<u16>,
    /// The pod's addresses, kept current.
    pod: Arc<PodAddresses>,
    workers: Vec<mpsc::UnboundedSender<Added>>,
    /// The names the DNS answers are given for, when answers are on.
    answered: Option<Names>,
}

impl Reloader {
    /// A reloader for `config`, whose own non-forwarder ports are `fixed_ports`, in a
    /// pod with the addresses `pod` follows.
    pub(super) fn new(
        config: Arc<DnsProxyConfig>,
        fixed_ports: Vec<u16>,
        pod: Arc<PodAddresses>,
    ) -> Self {
        Reloader {
            config,
            live: Arc::new(Live::default()),
            resolver: tokio::sync::Mutex::new(None),
            fixed_ports,
            pod,
            workers: Vec::new(),
            answered: None,
        }
    }

    /// The same, handing added ports to these workers (one channel each) and keeping
    /// the names of the DNS answers (when on) those of the list in service.
    pub(super) fn with_workers(
        self,
        workers: Vec<mpsc::UnboundedSender<Added>>,
        answered: Option<Names>,
    ) -> Self {
        Reloader {
            workers,
            answered,
            ..self
        }
    }

    /// What forwarders may dial with `forwarders` in service: not the pod itself, only
    /// families with an egress address (judged on the pod's current addresses).
    pub(super) fn reach(&self, forwarders: &[Forwarder]) -> Reach {
        Reach {
            own_ports: forwarders
                .iter()
                .map(|f| f.port)
                .chain(self.fixed_ports.iter().copied())
                .collect(),
            pod: self.pod.clone(),
        }
    }

    /// The resolver, when one was needed so far.
    pub(super) async fn resolver(&self) -> Option<Resolver> {
        self.resolver.lock().await.clone()
    }

    /// The forwards of `forwarders`, each with its first re-resolution delay: their names
    /// looked up at once (the resolver made with the first name), their backends what
    /// `reach` allows of the answers. The list's errors name its file, when it has one.
    pub(super) async fn build(
        &self,
        forwarders: &[Forwarder],
        reach: &Reach,
    ) -> Result<Vec<(Arc<Forward>, Option<Duration>)>> {
        let resolver = if forwarders
            .iter()
            .any(|f| matches!(f.target, Target::Name(_)))
        {
            Some(self.resolver_for_names().await?)
        } else {
            None
        };
        let lookups =
            startup::first_lookups(&self.config, forwarders, resolver.as_ref(), reach).await;
        let file = self.config.list_path();
        forwarders
            .iter()
            .zip(lookups)
            .map(|(forwarder, lookup)| {
                let (backends, first) = startup::backends(&self.config, forwarder, lookup, reach)
                    .map_err(|e| LIST.blame_file(e, file))?;
                Ok((
                    Forward::new(forwarder.clone(), backends, reach.clone()),
                    first,
                ))
            })
            .collect()
    }

    /// The resolver, made now if this is the first name.
    async fn resolver_for_names(&self) -> Result<Resolver> {
        let mut resolver = self.resolver.lock().await;
        if resolver.is_none() {
            *resolver = Some(Resolver::from_system()?);
        }
        Ok(resolver.clone().expect("set above"))
    }

    /// Follows the list file until shutdown.
    pub(super) async fn follow(
        self: Arc<Self>,
        file: ListFile,
        initial: String,
        shutdown: Shutdown,
    ) {
        let reloader = self.clone();
        let apply = move |text| reloader.clone().apply(text);
        list_reload::follow(file, DNS_PROXY, initial, apply, shutdown).await;
    }

    /// Puts the list `text` in service, or refuses it and changes nothing. Everything
    /// that waits comes before the first change, so that shutdown may drop it anywhere.
    async fn apply(self: Arc<Self>, text: String) -> std::result::Result<usize, Refused> {
        // A configuration error stays until the file changes; anything else may pass.
        let refused = |error: Error| Refused {
            line: None,
            retry: !matches!(error, Error::Config { .. }),
            reason: error.to_string(),
        };
        let config = self.config.clone();
        let old = self.live.forwards();
        let old_lines: Vec<Forwarder> = old.iter().map(|f| f.forwarder.clone()).collect();
        let planned = off_runtime::run("list-parse", move || {
            let lines = parse(&text, config.list_path())?;
            let changes = live::plan(&old_lines, &lines);
            Ok((lines, changes, old_lines))
        });
        let (lines, changes, old_lines): (Vec<Forwarder>, Changes, Vec<Forwarder>) =
            planned.await.map_err(Refused::passing)??;
        let file = self.config.list_path();
        if let Some(taken) = lines.iter().find(|f| self.fixed_ports.contains(&f.port)) {
            let error = Error::config(
                LIST.inline,
                format!(
                    "port {} is this proxy's own (the metrics endpoint's or the DNS answers'): pick another one",
                    taken.port
                ),
            );
            return Err(refused(LIST.blame_file(error, file)));
        }
        let reach = self.reach(&lines);
        let looked_up: Vec<Forwarder> = changes
            .added
            .iter()
            .chain(&changes.replaced)
            .cloned()
            .collect();
        let mut built = self.build(&looked_up, &reach).await.map_err(refused)?;
        let old_by_port: HashMap<u16, &Arc<Forward>> =
            old.iter().map(|f| (f.forwarder.port, f)).collect();
        for forwarder in changes.rebuilt {
            let addresses = old_by_port
                .get(&forwarder.port)
                .map(|f| f.backends().addresses())
                .unwrap_or_default();
            let backends =
                Backends::new(&dialable(&addresses, forwarder.target_port, &reach).usable);
            let first = matches!(forwarder.target, Target::Name(_)).then_some(MIN_REFRESH);
            built.push((Forward::new(forwarder, backends, reach.clone()), first));
        }
        let mut sockets = HashMap::new();
        for forwarder in &changes.added {
            // A port in use may be freed; one this process may not bind will not be.
            let bound = listener::bind_all(forwarder.port, self.workers.len()).map_err(|e| {
                let in_use = matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse);
                Refused { retry: in_use, ..refused(e) }
            })?;
            sockets.insert(forwarder.port, bound);
        }
        let resolver = self.resolver().await;
        self.commit(&changes.removed, built, sockets, resolver.as_ref());
        let (before, after) = (answer::names_of(&old_lines), answer::names_of(&lines));
        for gone in before.difference(&after) {
            METRICS.forget_target(gone);
        }
        if let Some(names) = &self.answered {
            *names.write().unwrap_or_else(|p| p.into_inner()) = after;
        }
        Ok(lines.len())
    }

    /// Takes the removed ports out, puts the built forwards in (on new ports: with their
    /// sockets, handed to the workers), and has `resolver` follow their names.
    fn commit(
        &self,
        removed: &[u16],
        built: Vec<(Arc<Forward>, Option<Duration>)>,
        mut sockets: HashMap<u16, Vec<StdListener>>,
        resolver: Option<&Resolver>,
    ) {
        for port in removed {
            self.live.remove(*port);
            info!(port, "dns proxy stopped listening (open connections go on)");
        }
        for (forward, first_refresh) in built {
            let port = forward.forwarder.port;
            let target = forward.forwarder.target.to_string();
            match sockets.remove(&port) {
                Some(per_worker) => {
                    let started = self.live.start(forward.clone());
                    for (worker, listener) in self.workers.iter().zip(per_worker) {
                        let stop = started.listening.clone();
                        let _ = worker.send(Added {
                            listener,
                            slot: started.slot.clone(),
                            stop,
                        });
                    }
                    follow_name(resolver, forward, first_refresh, started.resolving);
                    info!(port, %target, "dns proxy listening");
                }
                None => {
                    if let Some(stop) = self.live.replace(forward.clone()) {
                        follow_name(resolver, forward, first_refresh, stop);
                    }
                }
            }
        }
    }
}

/// Re-resolves `forward`'s name with `resolver` from `first_refresh` on, until `stop`.
pub(super) fn follow_name(
    resolver: Option<&Resolver>,
    forward: Arc<Forward>,
    first_refresh: Option<Duration>,
    stop: Shutdown,
) {
    if let (Some(delay), Some(resolver)) = (first_refresh, resolver) {
        tokio::spawn(refresh::refresh(forward, resolver.clone(), delay, stop));
    }
}

/// The forwarders of the list `text` read from `file`, or why it is refused.
fn parse(text: &str, file: Option<&Path>) -> std::result::Result<Vec<Forwarder>, Refused> {
    parse_forwarders(text).map_err(|e| Refused {
        line: first_bad_line(text, |line| parse_forwarders(line).map(drop)),
        reason: LIST.blame_file(e, file).to_string(),
        retry: false,
    })
}
