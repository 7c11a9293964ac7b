//! `EGRESS_DESTINATION`, and the router variables around it: never panics; an error
//! names its variable; accepted entries have unicast addresses of a family the router
//! has a source of, ports from 1, each local port once a family, and a fallback a
//! family after every port entry.
#![no_main]

use std::collections::HashSet;
use std::net::IpAddr;

use egress_router::config::address::is_unicast;
use egress_router::config::redirect::{Destination, parse_destinations};
use egress_router::config::router::RouterConfig;
use egress_router::config::vars::Vars;
use libfuzzer_sys::fuzz_target;

/// A unicast address a router can forward to (what the parser promises).
fn forwardable(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_unicast(v4),
        IpAddr::V6(v6) => {
            !v6.is_unspecified()
                && !v6.is_loopback()
                && !v6.is_multicast()
                && !v6.is_unicast_link_local()
                && v6.to_ipv4_mapped().is_none()
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_destinations(text) {
        Ok(entries) => {
            let mut ports = HashSet::new();
            let mut fallbacks = HashSet::new();
            for entry in &entries {
                assert!(forwardable(entry.address()), "{entry}");
                match entry {
                    Destination::Port {
                        port, target_port, ..
                    } => {
                        assert!(*port > 0 && target_port.is_none_or(|p| p > 0));
                        assert!(ports.insert((entry.family(), *port)), "port twice: {entry}");
                        assert!(fallbacks.is_empty(), "a port entry after a fallback");
                    }
                    Destination::Fallback(_) => {
                        assert!(fallbacks.insert(entry.family()), "two fallbacks: {entry}");
                    }
                }
            }
        }
        Err(e) => assert!(e.to_string().starts_with("EGRESS_DESTINATION: ")),
    }
    // The first line as EGRESS_SOURCE, the second as EGRESS_GATEWAY, the rest as the list.
    let mut lines = text.splitn(3, '\n');
    let (source, gateway, list) = (lines.next(), lines.next(), lines.next());
    let vars = Vars::from_pairs(
        [
            ("EGRESS_SOURCE", source.unwrap_or("")),
            ("EGRESS_GATEWAY", gateway.unwrap_or("")),
            ("EGRESS_DESTINATION", list.unwrap_or("")),
            ("EGRESS_ROUTER_MODE", "unit-test"),
        ]
        .into_iter(),
    );
    match RouterConfig::from_vars(&vars, None) {
        Ok(config) => {
            assert!(!config.egress.is_empty() && config.egress.len() <= 2);
            for pair in &config.egress {
                assert_eq!(pair.gateway.is_ipv4(), pair.source.address.is_ipv4());
                assert_ne!(pair.gateway, pair.source.address);
            }
            for destination in &config.destinations {
                let family = destination.family();
                assert!(
                    config.egress.iter().any(|pair| pair.family() == family),
                    "{destination}"
                );
            }
        }
        Err(e) => assert!(e.to_string().starts_with("EGRESS_")),
    }
});
