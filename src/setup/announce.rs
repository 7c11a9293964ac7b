//! The second announcement (SPEC 2.3 and 10): about 2 s after the first, an
//! unsolicited ARP request on the inherited packet socket and another unsolicited
//! neighbour advertisement, sent by a detached copy of this binary, so the caller's
//! exit (an init container, a CNI ADD) is not delayed.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::sys::arp::{Announcement, ArpSocket};
use crate::sys::ndp::NdpSocket;

/// Delay before the announcements that follow the first ones.
pub const SECOND_ANNOUNCEMENT_DELAY: Duration = Duration::from_secs(2);

/// What a setup announced on its egress interface, with the sockets it used (opened in
/// the namespace it set up), for the second announcement.
#[derive(Default)]
pub struct Announced {
    /// The packet socket the gratuitous ARP went out on, and the IPv4 address.
    pub arp: Option<(ArpSocket, Ipv4Addr)>,
    /// The ICMPv6 socket the neighbour advertisement went out on.
    pub ndp: Option<NdpSocket>,
}

impl Announced {
    /// Whether anything was announced.
    pub fn is_empty(&self) -> bool {
        self.arp.is_none() && self.ndp.is_none()
    }
}

/// Starts the detached helper (the hidden `announce` command) that repeats what
/// `announced` holds, on the same sockets.
pub fn spawn_second(announced: &Announced) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this executable", e))?;
    let mut command = std::process::Command::new(exe);
    command.arg("announce");
    // Both sockets send on the egress interface.
    let (ifindex, mac) = match (&announced.arp, &announced.ndp) {
        (Some((arp, _)), _) => (arp.ifindex(), arp.mac()),
        (None, Some(ndp)) => (ndp.ifindex(), ndp.mac()),
        (None, None) => return Ok(()),
    };
    let mac_text: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    command.args([
        "--ifindex",
        &ifindex.to_string(),
        "--mac",
        &mac_text.join(":"),
    ]);
    if let Some((arp, address)) = &announced.arp {
        command.args(["--socket-fd", &arp.share_with_child()?.to_string()]);
        command.args(["--address", &address.to_string()]);
    }
    if let Some(ndp) = &announced.ndp {
        command.args(["--socket6-fd", &ndp.share_with_child()?.to_string()]);
        command.args(["--address6", &ndp.target().to_string()]);
    }
    let delay = SECOND_ANNOUNCEMENT_DELAY.as_millis().to_string();
    command
        .args(["--delay-ms", &delay])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map(|mut child| {
            // Reaps the helper in long-running modes; a short-lived caller exits without waiting.
            std::thread::spawn(move || child.wait());
        })
        .map_err(|e| Error::io("starting the delayed announcement", e))
}

/// The hidden `announce` command: take over the sockets inherited as `arp` (with its
/// IPv4 address) and `ndp` (with its IPv6 address), both for interface `ifindex` at
/// `mac`, wait `delay`, then send one unsolicited ARP request and one unsolicited
/// neighbour advertisement; both are tried, and every failure is reported.
pub fn announce_later(
    arp: Option<(RawFd, Ipv4Addr)>,
    ndp: Option<(RawFd, Ipv6Addr)>,
    ifindex: u32,
    mac: [u8; 6],
    delay: Duration,
) -> Result<()> {
    let arp = arp
        .map(|(fd, address)| ArpSocket::inherited(fd, ifindex, mac).map(|s| (s, address)))
        .transpose()?;
    let ndp = ndp
        .map(|(fd, address)| NdpSocket::inherited(fd, ifindex, mac, address))
        .transpose()?;
    std::thread::sleep(delay);
    let sent = [
        arp.map(|(socket, address)| socket.announce(Announcement::Request, address)),
        ndp.map(|socket| socket.announce()),
    ];
    let failures: Vec<String> = sent
        .into_iter()
        .flatten()
        .filter_map(|result| result.err().map(|e| e.to_string()))
        .collect();
    match failures.is_empty() {
        true => Ok(()),
        false => Err(Error::State(failures.join("; "))),
    }
}
