//! One VRRP instance: one family's state machine with its socket, the advertisements it
//! sends (its source address as the one virtual address) and what it does with what
//! arrives; its transitions take or give up the family's source ([`hold`](super::hold)).

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::hold;
use super::shared::HaShared;
use crate::config::family::Family;
use crate::config::ha::HaConfig;
use crate::error::Result;
use crate::setup::announce::{Announced, SECOND_ANNOUNCEMENT_DELAY};
use crate::setup::{Intent, Namespace};
use crate::sys::arp::Announcement;
use crate::sys::vrrp::VrrpSocket;
use crate::vrrp::machine::{Action, Machine, Reason, State};
use crate::vrrp::packet::{Addresses, Advertisement, Ignored};

/// One family's virtual router.
pub struct Instance {
    /// Its family.
    pub family: Family,
    /// The socket it sends and receives on.
    pub socket: AsyncFd<VrrpSocket>,
    /// Its state machine.
    pub machine: Machine,
    /// The virtual router id.
    pub vrid: u8,
    /// The interval advertised, in centiseconds.
    pub centis: u16,
    /// The source address it holds as master (`EGRESS_SOURCE` of its family).
    pub virtual_address: IpAddr,
    /// Where advertisements go: the group, or the peers but this pod.
    pub destinations: Vec<IpAddr>,
    /// The peers advertisements are accepted from; `None`: anyone on the link.
    pub peers: Option<Vec<IpAddr>>,
    /// This pod's addresses on the egress interface (its own advertisements).
    pub own: Vec<IpAddr>,
    /// The announcement to repeat, and when.
    pub again: Option<(Instant, Announced)>,
    /// The state last carried out (what the namespace reflects).
    pub applied: State,
    /// Whether the last advertisement could not be sent (logged once, not each time).
    pub failing: bool,
    /// When an advertisement of another router (priority above 0) last arrived.
    pub heard: Option<Instant>,
    /// When it last handed over because the pod is backup in IPv4 (IPv6 only).
    pub resigned: Option<Instant>,
}

impl Instance {
    /// The machine's settings for `family` with `primary` as its address.
    pub fn params(ha: &HaConfig, primary: IpAddr) -> crate::vrrp::machine::Params {
        crate::vrrp::machine::Params {
            priority: ha.priority,
            interval: ha.advert_interval,
            preempt: ha.preempt,
            primary,
        }
    }

    /// The earliest of its timer and its pending announcement.
    pub fn deadline(&self) -> Option<Instant> {
        let timer = self.machine.deadline().map(Instant::from_std);
        let again = self.again.as_ref().map(|(at, _)| *at);
        match (timer, again) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs what is due at `now`: the machine's timer, the second announcement.
    pub async fn due(&mut self, ns: &Namespace, intent: &Intent, shared: &HaShared) {
        let now = Instant::now();
        if self.again.as_ref().is_some_and(|(at, _)| *at <= now)
            && let Some((_, announced)) = self.again.take()
        {
            repeat(&announced);
        }
        if self
            .machine
            .deadline()
            .is_some_and(|at| at <= now.into_std())
        {
            let actions = self.machine.timer(now.into_std());
            self.act(actions, ns, intent, shared).await;
        }
    }

    /// Reads and handles every packet waiting on the socket.
    pub async fn readable(&mut self, ns: &Namespace, intent: &Intent, shared: &HaShared) {
        let Ok(mut guard) = self.socket.readable().await else {
            return;
        };
        let received = match guard.try_io(|socket| socket.get_ref().receive()) {
            Ok(Ok(received)) => received,
            Ok(Err(e)) => {
                debug!(error = %e, "reading a VRRP packet");
                return;
            }
            Err(_would_block) => return,
        };
        match self.judge(received.addresses, &received.message, received.ttl) {
            Err(reason) => shared.ignored(self.family, reason),
            Ok(advert) => {
                shared.received(self.family);
                if advert.priority > 0 {
                    self.heard = Some(Instant::now());
                }
                let interval = Duration::from_millis(u64::from(advert.interval_centis) * 10);
                let from = received.addresses.source;
                let now = Instant::now().into_std();
                let actions = self
                    .machine
                    .advertisement(now, from, advert.priority, interval);
                self.act(actions, ns, intent, shared).await;
            }
        }
    }

    /// The advertisement in a packet, or why it is ignored.
    fn judge(&self, ip: Addresses, message: &[u8], ttl: u8) -> Result<Advertisement, Ignored> {
        if self.own.contains(&ip.source) {
            return Err(Ignored::Own);
        }
        if self
            .peers
            .as_ref()
            .is_some_and(|peers| !peers.contains(&ip.source))
        {
            return Err(Ignored::NotPeer);
        }
        let advert = Advertisement::decode(message, ip, ttl)?;
        if advert.vrid != self.vrid {
            return Err(Ignored::Vrid);
        }
        if !advert.addresses.contains(&self.virtual_address) {
            debug!(from = %ip.source, addresses = ?advert.addresses, "an advertisement of our VRID without our address");
        }
        Ok(advert)
    }

    /// Carries out the machine's actions, in order.
    pub async fn act(
        &mut self,
        actions: Vec<Action>,
        ns: &Namespace,
        intent: &Intent,
        shared: &HaShared,
    ) {
        for action in actions {
            match action {
                Action::Send(priority) => self.send(priority, shared),
                Action::Become(to, reason) => {
                    shared.begin();
                    let from = std::mem::replace(&mut self.applied, to);
                    let outcome = match to {
                        State::Master => hold::take(ns, intent, self.family).await,
                        _ if from == State::Master => hold::release(ns, intent, self.family)
                            .await
                            .map(|_| Announced::default()),
                        _ => Ok(Announced::default()),
                    };
                    shared.end(self.family, to, reason);
                    info!(
                        vrid = self.vrid,
                        family = %self.family,
                        from = %from,
                        to = %to,
                        reason = %reason,
                        "VRRP {} virtual router {}: {from} -> {to} ({reason})",
                        self.family,
                        self.vrid
                    );
                    match outcome {
                        Ok(announced) if !announced.is_empty() => {
                            let at = Instant::now() + SECOND_ANNOUNCEMENT_DELAY;
                            self.again = Some((at, announced));
                        }
                        Ok(_) => {}
                        Err(e) if to == State::Master => {
                            error!(error = %e, "taking {} over failed: handing over", self.virtual_address);
                            self.step_back(ns, intent, shared).await;
                        }
                        Err(e) => error!(error = %e, "giving {} up failed", self.virtual_address),
                    }
                }
            }
        }
    }

    /// On a dual-stack router the IPv4 election decides for both families: an IPv6
    /// master hands over (priority 0) while the pod is backup in IPv4, so that after a
    /// partition heals with equal priorities one pod holds both sources rather than each
    /// pod one (and neither ready). It does so once a time the pod is backup in IPv4:
    /// when nobody took IPv6 over and it became master again, it hands over again only
    /// after hearing another router of its family.
    pub async fn follow_ipv4(
        &mut self,
        ipv4_backup: bool,
        ns: &Namespace,
        intent: &Intent,
        shared: &HaShared,
    ) {
        if self.family != Family::V6 {
            return;
        }
        if !ipv4_backup {
            self.resigned = None;
            return;
        }
        let again = self
            .resigned
            .is_none_or(|at| self.heard.is_some_and(|heard| heard > at));
        if self.machine.state() == State::Master && again {
            let now = Instant::now();
            self.resigned = Some(now);
            let actions = self.machine.resign(now.into_std(), Reason::OtherFamily);
            self.act(actions, ns, intent, shared).await;
        }
    }

    /// A takeover that failed: priority 0, the source given up again, back to backup.
    async fn step_back(&mut self, ns: &Namespace, intent: &Intent, shared: &HaShared) {
        self.machine.shutdown();
        self.send(0, shared);
        shared.begin();
        if let Err(e) = hold::release(ns, intent, self.family).await {
            error!(error = %e, "giving {} up failed", self.virtual_address);
        }
        let actions = self.machine.start(Instant::now().into_std());
        if let Some(Action::Become(to, reason)) = actions.first() {
            self.applied = *to;
            shared.end(self.family, *to, *reason);
        }
    }

    /// Sends one advertisement with `priority` to every destination.
    fn send(&mut self, priority: u8, shared: &HaShared) {
        let advert = Advertisement {
            vrid: self.vrid,
            priority,
            interval_centis: self.centis,
            addresses: vec![self.virtual_address],
        };
        let socket = self.socket.get_ref();
        for destination in &self.destinations {
            let ip = Addresses {
                source: socket.source(),
                destination: *destination,
            };
            match socket.send(&advert.encode(ip), *destination) {
                Ok(()) => {
                    shared.sent(self.family);
                    if std::mem::take(&mut self.failing) {
                        info!(family = %self.family, "VRRP advertisements are sent again");
                    }
                }
                Err(e) if !self.failing => {
                    self.failing = true;
                    warn!(error = %e, "sending a VRRP advertisement failed (logged again once it works)");
                }
                Err(e) => debug!(error = %e, "sending a VRRP advertisement"),
            }
        }
    }
}

/// The second announcement (an unsolicited ARP request, another neighbour
/// advertisement) on the sockets of the first.
fn repeat(announced: &Announced) {
    if let Some((socket, address)) = &announced.arp
        && let Err(e) = socket.announce(Announcement::Request, *address)
    {
        warn!(error = %e, "repeating the ARP announcement");
    }
    if let Some(socket) = &announced.ndp
        && let Err(e) = socket.announce()
    {
        warn!(error = %e, "repeating the neighbour advertisement");
    }
}
