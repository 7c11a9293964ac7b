//! `EGRESS_METRICS_ADDRESS`: never panics; what it accepts listens on a real port (not
//! 0) and on no address that is unspecified or multicast, and an accepted `IP:PORT`
//! written back in its usual spelling reads the same.
#![no_main]

use egress_router::config::metrics_address::{MetricsAddress, VAR};
use egress_router::config::vars::Vars;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(address) = MetricsAddress::from_vars(&Vars::from_pairs([(VAR, text)])) else {
        return;
    };
    let MetricsAddress::Set { ip, port } = address else {
        assert!(text.trim().is_empty(), "{text:?} read as {address:?}");
        return;
    };
    assert_ne!(port, 0, "{text:?}");
    if let Some(ip) = ip {
        assert!(!ip.is_unspecified() && !ip.is_multicast(), "{text:?}");
        let again = MetricsAddress::from_vars(&Vars::from_pairs([(VAR, MetricsAddress::socket(Some(ip), port).to_string())]));
        assert_eq!(again.ok(), Some(address), "{text:?}");
    }
});
