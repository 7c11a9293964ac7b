//! The second announcement (SPEC 2.3): an unsolicited ARP request about 2 s after the
//! first, sent by a detached copy of this binary on the inherited packet socket, so the
//! caller's exit (an init container, a CNI ADD) is not delayed.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::sys::arp::{Announcement, ArpSocket};

/// Delay before the unsolicited ARP request that follows the first announcement.
pub const SECOND_ANNOUNCEMENT_DELAY: Duration = Duration::from_secs(2);

/// Starts the detached helper (the hidden `announce` command) with the socket `arp`.
pub fn spawn_second(arp: &ArpSocket, address: Ipv4Addr) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this executable", e))?;
    let mac_text: Vec<String> = arp.mac().iter().map(|b| format!("{b:02x}")).collect();
    let delay = SECOND_ANNOUNCEMENT_DELAY.as_millis().to_string();
    std::process::Command::new(exe)
        .args([
            "announce",
            "--socket-fd",
            &arp.share_with_child()?.to_string(),
        ])
        .args([
            "--ifindex",
            &arp.ifindex().to_string(),
            "--mac",
            &mac_text.join(":"),
        ])
        .args(["--address", &address.to_string(), "--delay-ms", &delay])
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
        .map_err(|e| Error::io("starting the delayed ARP announcement", e))
}

/// The hidden `announce` command: wait, then send one unsolicited ARP request on the
/// packet socket inherited as descriptor `socket_fd`.
pub fn announce_later(
    socket_fd: i32,
    ifindex: u32,
    mac: [u8; 6],
    address: Ipv4Addr,
    delay: Duration,
) -> Result<()> {
    let socket = ArpSocket::inherited(socket_fd, ifindex, mac)?;
    std::thread::sleep(delay);
    socket.announce(Announcement::Request, address)
}
