//! DNS answers cannot point a proxy at the pod itself or at link-local (SPEC section
//! 4), end to end, as root: a name answering `169.254.169.254` is no DNS proxy backend
//! (and no `backend_up` series says 1 for it); a name answering an address of the pod
//! reaches no listener of another container of the pod, on any port, in the DNS proxy
//! and the HTTP proxy; and an address the pod gains while a proxy runs is screened as
//! soon as it is there. These tests FAIL (never skip) without root.

mod common;

use common::dns::Dns;
use common::http::connect_tunnel;
use common::proxy::spawn_http_proxy;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A listener of another container of the router pod.
const SIDECAR_PORT: u16 = 9000;

const HOSTS: [(&str, &str); 3] = [
    ("metadata.example", "169.254.169.254"),
    ("pod.example", "192.0.2.70"),
    ("later.example", "192.0.2.71"),
];

struct Lab {
    sidecar: Server,
    _dns: Dns,
    t: Topology,
}

impl Lab {
    fn new(mode: &str) -> Lab {
        let t = Topology::new();
        t.router_ok(&[], &proxy_mode_env(mode));
        Lab {
            sidecar: Server::tcp_in(&t, "router", SIDECAR_PORT),
            _dns: Dns::start_with_hosts(&t, &HOSTS),
            t,
        }
    }
}

/// `GET /metrics` from the client namespace.
fn metrics(t: &Topology) -> String {
    t.with_ns("client", || {
        let address: SocketAddr = "192.0.2.70:9090".parse().unwrap();
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    })
}

#[test]
fn the_dns_proxy_takes_no_link_local_or_pod_address_from_an_answer() {
    let lab = Lab::new("dns-proxy");
    let list = format!("5300 metadata.example 80\n5301 pod.example {SIDECAR_PORT}");
    let env = envs(&[
        ("EGRESS_DNS_PROXY_DESTINATION", &list),
        ("EGRESS_DNS_PROXY_ALLOW_UNRESOLVED", "true"),
    ]);
    let mut p = lab.t.spawn_router(&[], &env);
    p.wait_ready(
        "dns proxy",
        "dns proxy listening",
        2,
        Duration::from_secs(15),
    );
    for port in [5300, 5301] {
        let got = lab.t.tcp_from_client(&format!("{ROUTER_IP}:{port}"));
        assert!(
            got.as_deref().is_ok_and(str::is_empty),
            "port {port} must be closed without a backend: {got:?}"
        );
    }
    assert_eq!(
        lab.sidecar.accepted(),
        0,
        "another container of the pod was reached"
    );
    let text = metrics(&lab.t);
    for address in ["169.254.169.254", "192.0.2.70"] {
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("egress_router_backend_up")
                    && l.contains(&format!("address=\"{address}\""))
                    && l.ends_with(" 1")),
            "{address} is up as a backend:\n{text}"
        );
    }
    for (target, reason) in [
        ("metadata.example", "169.254.169.254: a link-local address"),
        ("pod.example", "192.0.2.70: an address of this pod"),
    ] {
        let line = format!("5302 {target} {SIDECAR_PORT}");
        let mut strict = lab
            .t
            .spawn_router(&[], &envs(&[("EGRESS_DNS_PROXY_DESTINATION", &line)]));
        let status = strict.wait_timeout(Duration::from_secs(15));
        assert_error_exit(status, &strict.stderr(), 1, &[target, reason], target);
    }
}

#[test]
fn the_http_proxy_dials_no_address_of_the_pod_on_any_port_even_one_gained_later() {
    let lab = Lab::new("http-proxy");
    let _p = spawn_http_proxy(&lab.t, "*", &[]);
    for (target, reason) in [
        (
            format!("pod.example:{SIDECAR_PORT}"),
            "an address of this pod",
        ),
        (
            format!("192.0.2.70:{SIDECAR_PORT}"),
            "an address of this pod",
        ),
        (
            format!("198.51.100.99:{SIDECAR_PORT}"),
            "an address of this pod",
        ),
        ("metadata.example:80".to_string(), "link-local"),
    ] {
        let (resp, _w) = connect_tunnel(&lab.t, "192.0.2.70:8080", &target);
        assert_eq!(resp.status(), 403, "CONNECT {target}: {resp:?}");
        assert!(
            resp.body.contains(reason),
            "CONNECT {target}: {:?}",
            resp.body
        );
    }
    // an address added to the pod while the proxy runs
    lab.t.sh(
        "router",
        &["ip", "addr", "add", "192.0.2.71/26", "dev", "eth0"],
    );
    let target = format!("later.example:{SIDECAR_PORT}");
    eventually(Duration::from_secs(2), "the new address screened", || {
        let (resp, _w) = connect_tunnel(&lab.t, "192.0.2.70:8080", &target);
        match resp.status() {
            403 if resp.body.contains("an address of this pod") => Ok(()),
            other => Err(format!("{other}: {:?}", resp.body)),
        }
    });
    assert_eq!(
        lab.sidecar.accepted(),
        0,
        "another container of the pod was reached"
    );
}
