//! `EGRESS_DNS_PROXY_DESTINATION`: never panics; an error names the variable; every
//! accepted target is a canonical address a forwarder may dial, or a name that is not a
//! number in disguise.
#![no_main]

use egress_router::config::address::{Class, canonical, class};
use egress_router::dns_proxy::destination::{Target, parse_forwarders};
use egress_router::config::names::ends_in_number;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_forwarders(text) {
        Ok(forwarders) => {
            for forwarder in forwarders {
                assert!(forwarder.port > 0 && forwarder.target_port > 0);
                match forwarder.target {
                    Target::Address(ip) => {
                        assert_eq!(canonical(ip), ip);
                        assert!(matches!(class(ip), Class::Dialable), "{ip}");
                    }
                    Target::Name(name) => assert!(!ends_in_number(&name), "{name}"),
                }
            }
        }
        Err(e) => assert!(e.to_string().starts_with("EGRESS_DNS_PROXY_DESTINATION: ")),
    }
});
