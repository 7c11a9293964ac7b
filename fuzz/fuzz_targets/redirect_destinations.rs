//! `EGRESS_DESTINATION`: never panics; an error names the variable; accepted entries
//! have unicast addresses, ports from 1, the fallback last.
#![no_main]

use egress_router::config::address::is_unicast;
use egress_router::config::redirect::{Destination, parse_destinations};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_destinations(text) {
        Ok(entries) => {
            for (index, entry) in entries.iter().enumerate() {
                match entry {
                    Destination::Port {
                        port,
                        address,
                        target_port,
                        ..
                    } => {
                        assert!(*port > 0 && target_port.is_none_or(|p| p > 0));
                        assert!(is_unicast(*address));
                    }
                    Destination::Fallback(address) => {
                        assert!(is_unicast(*address));
                        assert_eq!(index, entries.len() - 1, "the fallback must be last");
                    }
                }
            }
        }
        Err(e) => assert!(e.to_string().starts_with("EGRESS_DESTINATION: ")),
    }
});
