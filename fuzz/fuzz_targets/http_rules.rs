//! `EGRESS_HTTP_PROXY_DESTINATION`: never panics; an error names the variable; every
//! address rule is stored in its one (canonical) spelling.
#![no_main]

use egress_router::config::address::canonical_net;
use egress_router::http_proxy::rules::{Matcher, parse_rules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_rules(text) {
        Ok(rules) => {
            assert!(!rules.is_empty());
            for (index, rule) in rules.iter().enumerate() {
                if let Matcher::Network(net) = rule.matcher {
                    assert_eq!(canonical_net(net), net, "{:?}", rule.text);
                }
                if rule.matcher == Matcher::Any {
                    assert_eq!(index, rules.len() - 1, "`*` must be last");
                }
            }
        }
        Err(e) => assert!(e.to_string().starts_with("EGRESS_HTTP_PROXY_DESTINATION: ")),
    }
});
