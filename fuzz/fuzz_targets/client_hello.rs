//! The ClientHello reader: never panics on any bytes, reads the same whatever is
//! appended after a complete answer, and a prefix of bytes that name a server is
//! never read as a different server or as not TLS.
#![no_main]

use egress_router::http_proxy::client_hello::{Peek, peek};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = peek(data);
    if let Peek::Hello(_) | Peek::NotTls = whole {
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"\x17\x03\x03\x00\x01x");
        assert_eq!(peek(&longer), whole, "bytes after the answer changed it");
    }
    if let Peek::Hello(Some(name)) = &whole {
        for end in 0..data.len() {
            match peek(&data[..end]) {
                Peek::Incomplete => {}
                Peek::Hello(Some(other)) => assert_eq!(&other, name),
                other => panic!("a prefix read as {other:?}, the whole as {name:?}"),
            }
        }
    }
});
