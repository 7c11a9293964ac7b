//! A name means exactly that name (SPEC section 4), end to end, as root: with the
//! resolv.conf of a Kubernetes pod (a search list and `ndots:5`), a name in a rule or a
//! target is looked up as absolute, never through the search list, in the HTTP proxy
//! and the DNS proxy. The DNS server answers both the name and its search-list
//! expansions (what a namespace owner can create with an ExternalName Service); only
//! the name's own address may be dialed. These tests FAIL (never skip) without root.

mod common;

use common::dns::{DNS_IP, Dns};
use common::http::connect_tunnel;
use common::proxy::spawn_http_proxy;
use common::*;
use std::time::Duration;

/// Names and where they point: `allowed.example` is the real server (203.0.113.5);
/// every search-list expansion points at another (203.0.113.6), and `only.example` and
/// `github.com` exist only as expansions (the Service `github` of a namespace `com`).
const HOSTS: [(&str, &str); 5] = [
    ("allowed.example", "203.0.113.5"),
    ("allowed.example.ns1.svc.cluster.local", "203.0.113.6"),
    ("allowed.example.svc.cluster.local", "203.0.113.6"),
    ("only.example.ns1.svc.cluster.local", "203.0.113.6"),
    ("github.com.svc.cluster.local", "203.0.113.6"),
];

/// The resolv.conf a pod of namespace `ns1` gets.
fn kubernetes_resolv_conf() -> String {
    format!(
        "search ns1.svc.cluster.local svc.cluster.local cluster.local\n\
         nameserver {DNS_IP}\n\
         options ndots:5\n"
    )
}

struct Lab {
    line: Server,
    _dns: Dns,
    t: Topology,
}

impl Lab {
    fn new(mode: &str) -> Lab {
        let t = Topology::new();
        t.router_ok(&[], &proxy_mode_env(mode));
        let dns = Dns::start_with_hosts(&t, &HOSTS);
        dns.set_resolv_conf(&kubernetes_resolv_conf());
        Lab {
            line: t.tcp_server(80),
            _dns: dns,
            t,
        }
    }
}

#[test]
fn the_http_proxy_dials_the_name_itself_never_a_search_list_expansion() {
    let lab = Lab::new("http-proxy");
    let _p = spawn_http_proxy(&lab.t, "allowed.example\nonly.example\ngithub.com", &[]);
    for target in [
        "allowed.example:80",
        "allowed.example.:80",
        "ALLOWED.example:80",
    ] {
        let (resp, mut w) = connect_tunnel(&lab.t, "192.0.2.70:8080", target);
        assert_eq!(resp.status(), 200, "CONNECT {target}: {resp:?}");
        let line = String::from_utf8(w.read_to_end().unwrap()).unwrap();
        assert_eq!(
            line.trim(),
            format!("{SOURCE} 203.0.113.5:80"),
            "CONNECT {target} must reach allowed.example's own address"
        );
    }
    let before = lab.line.accepted();
    for target in ["only.example:80", "github.com:80"] {
        let (resp, _w) = connect_tunnel(&lab.t, "192.0.2.70:8080", target);
        assert_eq!(
            resp.status(),
            502,
            "CONNECT {target}: the name has no address of its own: {resp:?}"
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        lab.line.accepted(),
        before,
        "a search-list expansion was dialed"
    );
}

#[test]
fn the_dns_proxy_follows_the_name_itself_never_a_search_list_expansion() {
    let lab = Lab::new("dns-proxy");
    let env = envs(&[
        (
            "EGRESS_DNS_PROXY_DESTINATION",
            "5300 allowed.example. 80\n5301 allowed.example 80\n5302 only.example 80",
        ),
        ("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "true"),
    ]);
    let mut p = lab.t.spawn_router(&[], &env);
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        3,
        Duration::from_secs(15),
    );
    for port in [5300, 5301] {
        expect_reply(
            &lab.t,
            lab.t.tcp_from_client(&format!("{ROUTER_IP}:{port}")),
            &format!("{SOURCE} 203.0.113.5:80"),
            &format!("port {port} to allowed.example"),
        );
    }
    let before = lab.line.accepted();
    let got = lab.t.tcp_from_client(&format!("{ROUTER_IP}:5302"));
    assert!(
        got.as_deref().is_ok_and(str::is_empty) || got.is_err(),
        "only.example has no address of its own: {got:?}"
    );
    assert_eq!(
        lab.line.accepted(),
        before,
        "a search-list expansion was dialed"
    );
    let mut strict = lab.t.spawn_router(
        &[],
        &envs(&[("EGRESS_DNS_PROXY_DESTINATION", "5302 only.example 80")]),
    );
    let status = strict.wait_timeout(Duration::from_secs(15));
    assert_error_exit(
        status,
        &strict.stderr(),
        1,
        &["only.example"],
        "a target that exists only as a search-list expansion",
    );
}
