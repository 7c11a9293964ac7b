//! The server name a TLS client asks for, read from the first bytes it sends through a
//! tunnel (pure, no decryption): the `server_name` extension of its ClientHello, which
//! may be split across several TLS records and arrive in several reads. With Encrypted
//! Client Hello this is the outer, public name: the one the front end routes by.
//!
//! What counts as TLS is what TLS servers accept, not what the standard asks: a first
//! byte of a TLS record type with a version below 0x10, whatever the version bytes
//! say (Go's TLS stack, for one, takes any), so no odd spelling passes as "not TLS".

/// The most ClientHello bytes (records included) read before giving up: far above
/// real ones (post-quantum key shares make them about 1.8 KiB), far below a memory
/// concern.
pub const MAX_HELLO_BYTES: usize = 16 * 1024;

/// The most records a ClientHello may be cut into (real ones come in one or two).
const MAX_RECORDS: usize = 64;

/// The most bytes worth reading for a ClientHello: the largest one in the most records.
pub const MAX_READ: usize = MAX_HELLO_BYTES + 5 * MAX_RECORDS;

/// What the first bytes of a tunnel are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// Too few bytes to tell yet.
    Incomplete,
    /// Not TLS: the tunnel carries something else (SSH, plain text, ...).
    NotTls,
    /// A ClientHello, and the server name it names (`None`: it names none).
    Hello(Option<String>),
    /// TLS that is not a readable ClientHello: never let through unjudged.
    Malformed(&'static str),
}

/// TLS record types: change cipher spec, alert, handshake, application data, heartbeat.
const RECORD_TYPES: std::ops::RangeInclusive<u8> = 20..=24;
/// TLS record type of handshake messages.
const HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// Extension type of `server_name`.
const SERVER_NAME: usize = 0;
/// The largest TLS record payload.
const MAX_RECORD: usize = 16 * 1024;

/// Reads `bytes`, the client's first bytes so far. The record headers are walked
/// first; the handshake is copied out and parsed only once it is all there, so reading
/// again after each of many small reads stays cheap.
pub fn peek(bytes: &[u8]) -> Peek {
    match bytes {
        [] => return Peek::Incomplete,
        [first, ..] if !RECORD_TYPES.contains(first) => return Peek::NotTls,
        [_, major, ..] if *major >= 0x10 => return Peek::NotTls,
        _ => {}
    }
    // Where each fragment lies, and the handshake length once its header is in.
    let mut fragments: Vec<(usize, usize)> = Vec::new();
    let mut header = [0u8; 4];
    let mut gathered = 0;
    let mut at = 0;
    loop {
        if gathered >= 4 {
            if header[0] != CLIENT_HELLO {
                return Peek::Malformed("the first handshake message is not a ClientHello");
            }
            let length = u24(&header[1..4]);
            if length > MAX_HELLO_BYTES {
                return Peek::Malformed("the ClientHello is larger than 16 KiB");
            }
            if gathered >= 4 + length {
                let mut handshake = Vec::with_capacity(gathered);
                for (start, end) in &fragments {
                    handshake.extend_from_slice(&bytes[*start..*end]);
                }
                return match server_name(&handshake[4..4 + length]) {
                    Ok(name) => Peek::Hello(name),
                    Err(reason) => Peek::Malformed(reason),
                };
            }
        }
        if at >= MAX_HELLO_BYTES {
            return Peek::Malformed("the ClientHello is larger than 16 KiB");
        }
        if fragments.len() == MAX_RECORDS {
            return Peek::Malformed("the ClientHello is cut into too many records");
        }
        let Some([kind, major, _, high, low]) = bytes.get(at..at + 5) else {
            return Peek::Incomplete;
        };
        if *kind != HANDSHAKE {
            return Peek::Malformed(
                "a record other than handshake came before the ClientHello ended",
            );
        }
        if *major >= 0x10 {
            return Peek::Malformed("a record with an impossible version");
        }
        let length = usize::from(u16::from_be_bytes([*high, *low]));
        if length == 0 || length > MAX_RECORD {
            return Peek::Malformed("a record of impossible length");
        }
        let (start, end) = (at + 5, at + 5 + length);
        if end > bytes.len() {
            return Peek::Incomplete;
        }
        for (i, byte) in bytes[start..end]
            .iter()
            .take(4usize.saturating_sub(gathered))
            .enumerate()
        {
            header[gathered + i] = *byte;
        }
        gathered += length;
        fragments.push((start, end));
        at = end;
    }
}

fn u24(bytes: &[u8]) -> usize {
    (usize::from(bytes[0]) << 16) | (usize::from(bytes[1]) << 8) | usize::from(bytes[2])
}

/// A cursor over a message that fails on every overrun.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("the ClientHello is cut short");
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<usize, &'static str> {
        Ok(usize::from(self.take(1)?[0]))
    }

    fn u16(&mut self) -> Result<usize, &'static str> {
        let bytes = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([bytes[0], bytes[1]])))
    }

    /// A vector with a length prefix of `width` bytes.
    fn vector(&mut self, width: usize) -> Result<Reader<'a>, &'static str> {
        let length = if width == 1 { self.u8()? } else { self.u16()? };
        self.take(length).map(Reader)
    }
}

/// The host name of the `server_name` extension of ClientHello `body`, if any.
fn server_name(body: &[u8]) -> Result<Option<String>, &'static str> {
    let mut hello = Reader(body);
    hello.take(2 + 32)?; // legacy version, random
    if hello.vector(1)?.0.len() > 32 {
        return Err("a session id longer than 32 bytes");
    }
    let suites = hello.vector(2)?;
    if suites.0.is_empty() || suites.0.len() % 2 != 0 {
        return Err("no cipher suites, or an odd number of bytes of them");
    }
    if hello.vector(1)?.0.is_empty() {
        return Err("no compression method");
    }
    if hello.0.is_empty() {
        return Ok(None);
    }
    let mut extensions = hello.vector(2)?;
    if !hello.0.is_empty() {
        return Err("bytes after the extensions");
    }
    let mut found = None;
    let mut seen = Vec::new();
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let mut data = extensions.vector(2)?;
        if seen.contains(&kind) {
            return Err("an extension given twice");
        }
        seen.push(kind);
        if kind != SERVER_NAME {
            continue;
        }
        let mut names = data.vector(2)?;
        if !data.0.is_empty() || names.0.is_empty() {
            return Err("a malformed server_name extension");
        }
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let name = names.vector(2)?.0;
            if name_type != 0 {
                continue;
            }
            if found.is_some() {
                return Err("two host names in server_name");
            }
            let name = std::str::from_utf8(name).map_err(|_| "a host name that is not text")?;
            found = Some(name.to_string());
        }
    }
    Ok(found)
}

#[cfg(test)]
pub(crate) mod tests;
