//! `decide`: a target whose address a deny rule ahead of the deciding rule covers is
//! never allowed, whatever its spelling; nothing never-dialed is ever allowed; a
//! literal decides like its canonical form. `decide_in` report mode: what it lets
//! through was checked, and is neither never-dialed, the proxy, nor local-only.
//!
//! Input: line 1 the host, line 2 the port, then resolved addresses up to a blank
//! line, then the rule list.
#![no_main]

use std::net::IpAddr;

use egress_router::config::address::{self, Class, OwnSockets};
use egress_router::http_proxy::policy::{Decision, Host, ListMode, decide, decide_in};
use egress_router::http_proxy::rules::{Matcher, parse_rules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let (Some(host), Some(port), Some(rest)) = (lines.next(), lines.next(), lines.next()) else {
        return;
    };
    let (Some(host), Ok(port)) = (Host::parse(host), port.parse::<u16>()) else {
        return;
    };
    let (answers, rules) = rest.split_once("\n\n").unwrap_or(("", rest));
    let resolved: Vec<IpAddr> = answers.lines().filter_map(|l| l.parse().ok()).collect();
    let Ok(rules) = parse_rules(rules) else {
        return;
    };
    let own = OwnSockets {
        ports: vec![8080],
        addresses: vec!["192.0.2.70".parse().unwrap()],
    };
    let (decision, candidates) = match &host {
        Host::Ip(ip) => {
            let canonical = decide(&rules, &Host::Ip(address::canonical(*ip)), port, None, &own);
            let decision = decide(&rules, &host, port, None, &own);
            assert_eq!(decision, canonical);
            (decision, vec![*ip])
        }
        Host::Name(_) => {
            let decision = decide(&rules, &host, port, Some(&resolved), &own);
            let candidates = resolved.iter().map(|a| address::canonical(*a)).collect();
            (decision, candidates)
        }
    };
    let given = matches!(host, Host::Name(_)).then_some(&resolved[..]);
    if let Decision::Report { addresses, .. } =
        decide_in(ListMode::Report, &rules, &host, port, given, &own)
    {
        for through in &addresses {
            assert!(candidates.contains(through), "{through} was never checked");
            assert!(matches!(address::class(*through), Class::Dialable), "{through}");
            assert!(!own.contains(*through, port), "{through}:{port} is the proxy");
            assert!(!own.is_pod_address(*through), "{through} is the pod");
        }
    }
    let Decision::Allow { rule, addresses } = decision else {
        return;
    };
    for allowed in &addresses {
        assert!(candidates.contains(allowed), "{allowed} was never checked");
        assert!(!matches!(address::class(*allowed), Class::Never(_)), "{allowed}");
        assert!(!own.contains(*allowed, port), "{allowed}:{port} is the proxy");
        assert!(!own.is_pod_address(*allowed), "{allowed} is the pod");
    }
    let dialable: Vec<IpAddr> = candidates
        .iter()
        .copied()
        .filter(|a| {
            !matches!(address::class(*a), Class::Never(_))
                && !own.contains(*a, port)
                && !own.is_pod_address(*a)
        })
        .collect();
    for earlier in rules[..rule].iter().filter(|r| r.deny) {
        if let Matcher::Network(net) = earlier.matcher {
            assert!(
                !dialable.iter().any(|a| net.contains(a)),
                "{:?} covers an address of an allowed target",
                earlier.text
            );
        }
    }
});
