use super::*;

/// A ClientHello handshake message (type and length included) naming `name`, with
/// `extra` bytes of padding extension to make it as large as wanted.
pub fn handshake(name: Option<&str>, extra: usize) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend([7u8; 32]); // random
    body.push(0); // session id
    body.extend([0, 4, 0x13, 0x01, 0x13, 0x02]); // two cipher suites
    body.extend([1, 0]); // null compression
    let mut extensions = Vec::new();
    if let Some(name) = name {
        let name = name.as_bytes();
        let mut list = vec![0u8];
        list.extend((name.len() as u16).to_be_bytes());
        list.extend(name);
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend(list);
        extensions.extend((SERVER_NAME as u16).to_be_bytes());
        extensions.extend((data.len() as u16).to_be_bytes());
        extensions.extend(data);
    }
    extensions.extend([0x00, 0x15]); // padding
    extensions.extend((extra as u16).to_be_bytes());
    extensions.extend(vec![0u8; extra]);
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut message = vec![CLIENT_HELLO];
    message.extend(&(body.len() as u32).to_be_bytes()[1..]);
    message.extend(body);
    message
}

/// `handshake` in TLS records of at most `size` bytes each.
pub fn records(handshake: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for fragment in handshake.chunks(size) {
        out.extend([HANDSHAKE, 3, 1]);
        out.extend((fragment.len() as u16).to_be_bytes());
        out.extend(fragment);
    }
    out
}

#[test]
fn the_server_name_is_read_from_one_record_or_many() {
    let message = handshake(Some("api.example.com"), 100);
    for size in [3, 7, 64, 512] {
        assert_eq!(
            peek(&records(&message, size)),
            Peek::Hello(Some("api.example.com".into())),
            "records of {size}"
        );
    }
    assert_eq!(peek(&records(&handshake(None, 0), 512)), Peek::Hello(None));
}

#[test]
fn every_prefix_is_incomplete_and_what_follows_the_hello_is_ignored() {
    let bytes = records(&handshake(Some("a.example"), 40), 50);
    for end in 0..bytes.len() {
        assert_eq!(peek(&bytes[..end]), Peek::Incomplete, "{end} bytes");
    }
    let mut more = bytes.clone();
    more.extend([23, 3, 3, 0, 5, 1, 2, 3, 4, 5]);
    assert_eq!(peek(&more), Peek::Hello(Some("a.example".into())));
}

#[test]
fn other_protocols_are_not_tls() {
    for first in [
        &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
        b"GET / HTTP/1.1\r\n",
        &[0, 0, 0, 8, 4, 210, 22, 47],
        &[22, 0x20],
    ] {
        assert_eq!(peek(first), Peek::NotTls, "{first:?}");
    }
}

#[test]
fn any_record_version_is_tls_and_another_record_first_is_refused() {
    let message = handshake(Some("forbidden.example"), 0);
    let mut odd = records(&message, 512);
    odd[1..3].copy_from_slice(&[0, 0]);
    assert_eq!(peek(&odd), Peek::Hello(Some("forbidden.example".into())));
    let mut alert_first = vec![21, 3, 1, 0, 2, 1, 90];
    alert_first.extend(records(&message, 512));
    assert!(matches!(peek(&alert_first), Peek::Malformed(r) if r.contains("other than handshake")));
    assert!(matches!(
        peek(&records(&message, 1)),
        Peek::Malformed(r) if r.contains("too many records")
    ));
}

#[test]
fn tls_that_is_no_readable_client_hello_is_malformed() {
    let good = handshake(Some("a.example"), 0);
    let mut server_hello = good.clone();
    server_hello[0] = 2;
    let mut alert_first = records(&good[..10], 10);
    alert_first.extend([21, 3, 3, 0, 2, 2, 40]);
    let mut huge = vec![CLIENT_HELLO, 0x01, 0x00, 0x00];
    huge.extend([0u8; 8]);
    let twice = {
        // the server_name extension repeated: a second name a server might read
        let mut message = handshake(Some("a.example"), 0);
        let one = handshake(Some("b.example"), 0);
        let ext_start = 4 + 2 + 32 + 1 + 6 + 2 + 2;
        let sni_len = 4 + 2 + 1 + 2 + "b.example".len();
        let copy = one[ext_start..ext_start + sni_len].to_vec();
        message.splice(ext_start..ext_start, copy);
        let body_len = message.len() - 4;
        message[1..4].copy_from_slice(&(body_len as u32).to_be_bytes()[1..]);
        let ext_len = message.len() - ext_start;
        message[ext_start - 2..ext_start].copy_from_slice(&(ext_len as u16).to_be_bytes());
        message
    };
    // a session id claimed longer than what follows
    let mut overrun = good.clone();
    overrun[4 + 2 + 32] = 0xff;
    for (bytes, reason) in [
        (records(&server_hello, 512), "not a ClientHello"),
        (alert_first, "other than handshake"),
        (records(&huge, 512), "larger than 16 KiB"),
        (records(&twice, 512), "given twice"),
        (records(&overrun, 512), "cut short"),
        (vec![22, 3, 1, 0, 0], "impossible length"),
    ] {
        let found = peek(&bytes);
        assert!(
            matches!(found, Peek::Malformed(r) if r.contains(reason)),
            "{reason}: {found:?}"
        );
    }
}

#[test]
fn a_hello_past_the_size_bound_is_refused_without_waiting_for_the_rest() {
    let bytes = records(&handshake(Some("a.example"), 20_000), 16_384);
    let partial = &bytes[..MAX_HELLO_BYTES + 100];
    assert!(matches!(peek(partial), Peek::Malformed(_)));
}

/// Bounded property test: however a ClientHello is cut into records and reads, and
/// whatever single byte of it is changed, reading it never panics, a prefix never
/// names a server, and the whole names the same server.
#[test]
fn any_split_reads_the_same_and_no_change_panics() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    let message = handshake(Some("split.example"), 300);
    for _ in 0..300 {
        let bytes = records(&message, message.len() / 60 + 1 + next(600));
        let cut = next(bytes.len());
        assert_eq!(peek(&bytes[..cut]), Peek::Incomplete);
        assert_eq!(peek(&bytes), Peek::Hello(Some("split.example".into())));
        let mut changed = bytes.clone();
        let at = next(changed.len());
        changed[at] = next(256) as u8;
        let _ = peek(&changed);
    }
}
