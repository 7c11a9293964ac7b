//! VRRP version 3 advertisements (RFC 5798 section 5.2), encoded and decoded (pure).
//!
//! ```text
//!  0                   1                   2                   3
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! |                  IPvX Address(es) ...                         |
//! ```
//!
//! The checksum covers the message and a pseudo-header of the IP packet that carries
//! it (source, destination, protocol 112, length), for IPv4 (RFC 768's form) as for
//! IPv6 (RFC 8200's), as RFC 5798 section 5.2.8 says; a decoder is therefore told the
//! addresses the packet came from and went to.

use std::fmt;
use std::net::IpAddr;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The VRRP version spoken.
pub const VERSION: u8 = 3;
/// The only message type: ADVERTISEMENT.
pub const ADVERTISEMENT: u8 = 1;
/// The TTL (IPv4) or hop limit (IPv6) every advertisement is sent with and must
/// arrive with: a packet from beyond the link cannot have it.
pub const TTL: u8 = 255;
/// Bytes before the addresses.
const HEADER: usize = 8;
/// Most addresses one advertisement may carry.
pub const MAX_ADDRESSES: usize = 255;

/// One advertisement, as the sender's state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// The virtual router.
    pub vrid: u8,
    /// The sender's priority (0: the master stops).
    pub priority: u8,
    /// The sender's advertisement interval in centiseconds (12 bits).
    pub interval_centis: u16,
    /// The virtual addresses, all of the family of the packet.
    pub addresses: Vec<IpAddr>,
}

/// Why a received packet is not an advertisement to act on (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// Shorter than its header and addresses.
    Malformed,
    /// Not version 3.
    Version,
    /// Not an ADVERTISEMENT.
    Type,
    /// The checksum does not match.
    Checksum,
    /// TTL or hop limit not 255: not sent on this link.
    Ttl,
    /// Another virtual router's.
    Vrid,
    /// Sent from an address of this pod.
    Own,
    /// With unicast peers configured: from an address that is none of them.
    NotPeer,
    /// An advertisement interval of 0.
    Interval,
}

impl Ignored {
    /// Every reason, for series that exist from the start.
    pub const ALL: [Ignored; 9] = [
        Ignored::Malformed,
        Ignored::Version,
        Ignored::Type,
        Ignored::Checksum,
        Ignored::Ttl,
        Ignored::Vrid,
        Ignored::Own,
        Ignored::NotPeer,
        Ignored::Interval,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Ignored::Malformed => "malformed",
            Ignored::Version => "version",
            Ignored::Type => "type",
            Ignored::Checksum => "checksum",
            Ignored::Ttl => "ttl",
            Ignored::Vrid => "vrid",
            Ignored::Own => "own",
            Ignored::NotPeer => "not-peer",
            Ignored::Interval => "interval",
        }
    }
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The addresses of the IP packet that carries (or carried) an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// Its source.
    pub source: IpAddr,
    /// Its destination (the multicast group, or a peer).
    pub destination: IpAddr,
}

impl Advertisement {
    /// The message for the packet `ip`, checksum included. The addresses must all be of
    /// the packet's family; at most [`MAX_ADDRESSES`].
    pub fn encode(&self, ip: Addresses) -> Vec<u8> {
        let mut message = Vec::with_capacity(HEADER + 16 * self.addresses.len());
        message.push((VERSION << 4) | ADVERTISEMENT);
        message.push(self.vrid);
        message.push(self.priority);
        message.push(self.addresses.len().min(MAX_ADDRESSES) as u8);
        message.extend_from_slice(&(self.interval_centis & 0x0fff).to_be_bytes());
        message.extend_from_slice(&[0, 0]);
        for address in self.addresses.iter().take(MAX_ADDRESSES) {
            match address {
                IpAddr::V4(v4) => message.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => message.extend_from_slice(&v6.octets()),
            }
        }
        let sum = checksum(ip, &message);
        message[6..8].copy_from_slice(&sum.to_be_bytes());
        message
    }

    /// Reads the message `bytes` of a packet `ip` that arrived with `ttl`; checks the
    /// TTL, version, type, length and checksum (not the VRID: that is the receiver's).
    pub fn decode(bytes: &[u8], ip: Addresses, ttl: u8) -> Result<Advertisement, Ignored> {
        if ttl != TTL {
            return Err(Ignored::Ttl);
        }
        if bytes.len() < HEADER {
            return Err(Ignored::Malformed);
        }
        if bytes[0] >> 4 != VERSION {
            return Err(Ignored::Version);
        }
        if bytes[0] & 0x0f != ADVERTISEMENT {
            return Err(Ignored::Type);
        }
        let width = match ip.source {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 16,
        };
        let count = usize::from(bytes[3]);
        let end = HEADER + count * width;
        if bytes.len() < end {
            return Err(Ignored::Malformed);
        }
        // Trailing bytes are covered by the checksum (the sender summed what it sent).
        if checksum(ip, bytes) != 0 {
            return Err(Ignored::Checksum);
        }
        let interval_centis = u16::from_be_bytes([bytes[4], bytes[5]]) & 0x0fff;
        if interval_centis == 0 {
            return Err(Ignored::Interval);
        }
        let addresses = bytes[HEADER..end]
            .chunks_exact(width)
            .map(|chunk| match width {
                4 => IpAddr::from(<[u8; 4]>::try_from(chunk).unwrap_or_default()),
                _ => IpAddr::from(<[u8; 16]>::try_from(chunk).unwrap_or_default()),
            })
            .collect();
        Ok(Advertisement {
            vrid: bytes[1],
            priority: bytes[2],
            interval_centis,
            addresses,
        })
    }
}

/// The Internet checksum of `message` with the pseudo-header of `ip`: 0 over a message
/// whose checksum field is right, the field's value over one whose field is 0.
pub fn checksum(ip: Addresses, message: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let high = u64::from(pair[0]) << 8;
            sum += high | pair.get(1).map_or(0, |&low| u64::from(low));
        }
    };
    let length = message.len() as u32;
    match (ip.source, ip.destination) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => {
            add(&source.octets());
            add(&destination.octets());
            add(&[0, PROTOCOL]);
            add(&(length as u16).to_be_bytes());
        }
        (source, destination) => {
            add(&v6_octets(source));
            add(&v6_octets(destination));
            add(&length.to_be_bytes());
            add(&[0, 0, 0, PROTOCOL]);
        }
    }
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An address as IPv6 octets (an IPv4 one mapped; mixed families never match anyway).
fn v6_octets(address: IpAddr) -> [u8; 16] {
    match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests;
