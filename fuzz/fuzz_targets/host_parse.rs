//! `Host::parse`: never panics; literals come out canonical; a parsed host prints as
//! text that parses back to the same host (one spelling).
#![no_main]

use egress_router::config::address::canonical;
use egress_router::http_proxy::policy::Host;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(host) = Host::parse(text) else {
        return;
    };
    if let Host::Ip(ip) = host {
        assert_eq!(canonical(ip), ip, "{text:?}");
    }
    assert_eq!(Host::parse(&host.to_string()), Some(host), "{text:?}");
});
