//! The second announcement (SPEC 2.3 and 10): about 2 s after the first, an
//! unsolicited ARP request on the inherited packet socket and another unsolicited
//! neighbour advertisement, sent by a detached copy of this binary, so the caller's
//! exit (an init container, a CNI ADD) is not delayed.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::sys::arp::{Announcement, ArpSocket};
use crate::sys::ndp;
use crate::sys::netns::Netns;

/// Delay before the announcements that follow the first ones.
pub const SECOND_ANNOUNCEMENT_DELAY: Duration = Duration::from_secs(2);

/// What a setup announced on its egress interface, for the second announcement.
#[derive(Default)]
pub struct Announced {
    /// The packet socket the gratuitous ARP went out on, and the IPv4 address.
    pub arp: Option<(ArpSocket, Ipv4Addr)>,
    /// The interface, its hardware address and the IPv6 address advertised.
    pub ipv6: Option<(u32, [u8; 6], Ipv6Addr)>,
}

impl Announced {
    /// Whether anything was announced.
    pub fn is_empty(&self) -> bool {
        self.arp.is_none() && self.ipv6.is_none()
    }
}

/// Starts the detached helper (the hidden `announce` command) that repeats what
/// `announced` holds.
pub fn spawn_second(announced: &Announced) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this executable", e))?;
    let mut command = std::process::Command::new(exe);
    command.arg("announce");
    let (ifindex, mac) = match (&announced.arp, &announced.ipv6) {
        (Some((arp, _)), _) => (arp.ifindex(), arp.mac()),
        (None, Some((ifindex, mac, _))) => (*ifindex, *mac),
        (None, None) => return Ok(()),
    };
    if let Some((arp, address)) = &announced.arp {
        command.args(["--socket-fd", &arp.share_with_child()?.to_string()]);
        command.args(["--address", &address.to_string()]);
    }
    if let Some((_, _, address)) = &announced.ipv6 {
        command.args(["--address6", &address.to_string()]);
    }
    let mac_text: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    let delay = SECOND_ANNOUNCEMENT_DELAY.as_millis().to_string();
    command
        .args([
            "--ifindex",
            &ifindex.to_string(),
            "--mac",
            &mac_text.join(":"),
        ])
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

/// The hidden `announce` command: wait, then send one unsolicited ARP request on the
/// packet socket inherited as descriptor `arp` (with its IPv4 address) and one
/// unsolicited neighbour advertisement of `ipv6`, on interface `ifindex` at `mac`.
pub fn announce_later(
    arp: Option<(i32, Ipv4Addr)>,
    ipv6: Option<Ipv6Addr>,
    ifindex: u32,
    mac: [u8; 6],
    delay: Duration,
) -> Result<()> {
    let socket = arp
        .map(|(fd, address)| ArpSocket::inherited(fd, ifindex, mac).map(|s| (s, address)))
        .transpose()?;
    std::thread::sleep(delay);
    if let Some((socket, address)) = socket {
        socket.announce(Announcement::Request, address)?;
    }
    if let Some(address) = ipv6 {
        ndp::announce(&Netns::current()?, ifindex, mac, address)?;
    }
    Ok(())
}
