//! Live list reload end to end, as root (SPEC section 9): the proxies read their list
//! from `EGRESS_*_DESTINATION_FILE` and follow the file while traffic runs: a change,
//! a bad change (the last list stays, logged with the line, counted), SIGHUP, a
//! ConfigMap-style symlink swap, and swaps under load with no connection lost. Each
//! test has its own topology and list directory. These tests FAIL (never skip)
//! without root.

mod common;

use common::http::{connect_tunnel, echo, echo_then_report};
use common::lists::{ListDir, first_line, metrics, reloads, start};
use common::*;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ECHO_PORT: u16 = 7000;
const LINE_PORT: u16 = 80;
const WAIT: Duration = Duration::from_secs(5);

fn status(t: &Topology, target: &str) -> u16 {
    connect_tunnel(t, &format!("{ROUTER_IP}:8080"), target)
        .0
        .status()
}

#[test]
fn http_proxy_follows_its_list_file_keeps_the_last_good_one_and_reloads_on_sighup() {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("http-proxy"));
    let _echo = Server::tcp_with(&t, "server", ECHO_PORT, echo_then_report);
    let dir = ListDir::new("http");
    dir.write("rules", "203.0.113.5\n");
    let var = "EGRESS_HTTP_PROXY_DESTINATION_FILE";
    let mut p = start(&t, var, &dir.path("rules"), "http proxy listening", 1);
    let (five, six) = (
        format!("203.0.113.5:{ECHO_PORT}"),
        format!("203.0.113.6:{ECHO_PORT}"),
    );
    assert_eq!((status(&t, &five), status(&t, &six)), (200, 403));
    let (resp, mut open) = connect_tunnel(&t, &format!("{ROUTER_IP}:8080"), &five);
    assert_eq!(resp.status(), 200);

    dir.write("rules", "# now only .6\n203.0.113.6\n");
    p.wait_ready("proxy", "list reloaded", 1, WAIT);
    assert_eq!(
        (status(&t, &five), status(&t, &six)),
        (403, 200),
        "the new list decides"
    );
    echo(&mut open, "still open").expect("a tunnel opened under the old list keeps going");
    let line = first_line(&p, "list reloaded");
    assert!(
        line.contains("203.0.113.6") && line.contains("203.0.113.5"),
        "the diff: {line}"
    );

    dir.write("rules", "203.0.113.6\n10.0.0.0/33\n");
    p.wait_ready("proxy", "list file refused", 1, WAIT);
    let refused = first_line(&p, "list file refused");
    assert!(
        refused.contains("line=Some(2)") && refused.contains("10.0.0.0/33"),
        "{refused}"
    );
    assert_eq!(status(&t, &six), 200, "the last good list stays");
    let text = metrics(&t);
    assert_eq!(
        (reloads(&text, "applied"), reloads(&text, "invalid")),
        (1, 1),
        "{text}"
    );
    assert!(
        text.contains("egress_router_list_file_in_sync{role=\"http-proxy\"} 0"),
        "{text}"
    );

    dir.write("rules", "203.0.113.6\n");
    p.wait_ready("proxy", "list reloaded", 2, WAIT);
    p.signal(libc::SIGHUP);
    p.wait_ready("proxy", "list reloaded", 3, WAIT);
    assert!(
        p.try_wait().is_none(),
        "SIGHUP reloads, it does not end the proxy"
    );
    assert!(p.stderr().contains("trigger=Hangup"), "{}", p.stderr());
    let text = metrics(&t);
    assert_eq!(reloads(&text, "applied"), 3);
    assert!(
        text.contains("egress_router_list_file_in_sync{role=\"http-proxy\"} 1"),
        "{text}"
    );
}

/// A topology whose router is set up in dns-proxy mode, its servers answering on
/// [`LINE_PORT`], and a list directory `name`; they are removed in reverse order.
fn dns_lab(name: &str) -> (Topology, Server, ListDir) {
    let t = Topology::new();
    t.router_ok(&[], &proxy_mode_env("dns-proxy"));
    let line = t.tcp_server(LINE_PORT);
    (t, line, ListDir::new(name))
}

#[test]
fn dns_proxy_follows_a_configmap_swap_adding_changing_and_removing_listeners() {
    let (t, _line, dir) = dns_lab("dns");
    dir.configmap("forwarders", "v1", "8000 203.0.113.5 80\n");
    let var = "EGRESS_DNS_PROXY_DESTINATION_FILE";
    let mut p = start(&t, var, &dir.path("forwarders"), "dns proxy listening", 1);
    let seen = |port: u16| t.tcp_from_client(&format!("{ROUTER_IP}:{port}"));
    assert_eq!(
        seen(8000).unwrap().trim(),
        format!("{SOURCE} 203.0.113.5:80")
    );
    let mut open = common::http::client(&t, &format!("{ROUTER_IP}:8000")).unwrap();

    dir.configmap(
        "forwarders",
        "v2",
        "8000 203.0.113.6 80\n8001 203.0.113.7 80\n",
    );
    p.wait_ready("proxy", "list reloaded", 1, WAIT);
    assert_eq!(
        seen(8000).unwrap().trim(),
        format!("{SOURCE} 203.0.113.6:80"),
        "new target"
    );
    assert_eq!(
        seen(8001).unwrap().trim(),
        format!("{SOURCE} 203.0.113.7:80"),
        "new port"
    );

    dir.configmap("forwarders", "v3", "8001 203.0.113.7 80\n");
    p.wait_ready("proxy", "list reloaded", 2, WAIT);
    assert!(
        t.refused_within(&format!("{ROUTER_IP}:8000"), WAIT),
        "a removed port stops listening"
    );
    let answer = open
        .read_line()
        .expect("an open connection on a removed port goes on");
    assert_eq!(answer.trim(), format!("{SOURCE} 203.0.113.5:80"));

    let before_refusal = metrics(&t);
    dir.configmap(
        "forwarders",
        "v4",
        "8001 203.0.113.7 80\n8001 203.0.113.5 80\n",
    );
    assert_eq!(
        reloads(&before_refusal, "invalid"),
        0,
        "the series exists from the start"
    );
    p.wait_ready("proxy", "list file refused", 1, WAIT);
    assert_eq!(
        seen(8001).unwrap().trim(),
        format!("{SOURCE} 203.0.113.7:80"),
        "last good list"
    );
    let text = metrics(&t);
    assert_eq!(
        (reloads(&text, "applied"), reloads(&text, "invalid")),
        (2, 1),
        "{text}"
    );
    assert!(text.contains(
        r#"egress_router_backend_up{listener="8001",target="203.0.113.7",address="203.0.113.7"} 1"#
    ));
    assert!(
        !text.contains(r#"target="203.0.113.6""#),
        "a replaced target leaves no series:\n{text}"
    );

    // Port 9090 is the endpoint's: a list that names it is refused as it stands.
    dir.configmap(
        "forwarders",
        "v5",
        "8001 203.0.113.7 80\n9090 203.0.113.5 80\n",
    );
    p.wait_ready("proxy", "list file refused", 2, WAIT);
    assert_eq!(reloads(&metrics(&t), "invalid"), 2);

    // Port 8005 taken by another program: a cause that may pass, so the list is tried
    // again (here at once, with `egress-router reload`), and applied once it is free.
    let squatter = Server::tcp_in(&t, "router", 8005);
    dir.configmap(
        "forwarders",
        "v6",
        "8001 203.0.113.7 80\n8005 203.0.113.5 80\n",
    );
    p.wait_ready("proxy", "list file not applied", 1, WAIT);
    assert_eq!(reloads(&metrics(&t), "failed"), 1);
    let pid = p.pid().to_string();
    t.router_ok(&["reload", "--pid", &pid], &[]);
    p.wait_ready("proxy", "list file not applied", 2, WAIT);
    drop(squatter);
    t.router_ok(&["reload", "--pid", &pid], &[]);
    p.wait_ready("proxy", "list reloaded", 3, WAIT);
    assert_eq!(
        seen(8005).unwrap().trim(),
        format!("{SOURCE} 203.0.113.5:80")
    );
}

#[test]
fn no_connection_is_lost_while_the_list_changes_under_load() {
    let (t, _line, dir) = dns_lab("load");
    let lists = [
        "8000 203.0.113.5 80\n",
        "8000 203.0.113.5 80\n8001 203.0.113.6 80\n",
        "8000 203.0.113.6 80\n8002 203.0.113.7 80\n",
    ];
    dir.configmap("forwarders", "v0", lists[0]);
    let var = "EGRESS_DNS_PROXY_DESTINATION_FILE";
    let mut p = start(&t, var, &dir.path("forwarders"), "dns proxy listening", 1);
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let address: SocketAddr = format!("{ROUTER_IP}:8000").parse().unwrap();
        t.in_ns("client", move || {
            let (mut done, mut failures) = (0, Vec::new());
            let end = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::SeqCst) && Instant::now() < end && done < 50_000 {
                let exchange = TcpStream::connect_timeout(&address, Duration::from_secs(2))
                    .and_then(|s| {
                        s.set_read_timeout(Some(Duration::from_secs(2)))?;
                        let mut line = String::new();
                        BufReader::new(s).read_line(&mut line)?;
                        Ok(line)
                    });
                match exchange {
                    Ok(line) if line.starts_with(SOURCE) => done += 1,
                    other => failures.push(format!("{other:?}")),
                }
            }
            (done, failures)
        })
    };
    for (round, list) in lists.iter().cycle().skip(1).take(6).enumerate() {
        dir.configmap("forwarders", &format!("v{}", round + 1), list);
        p.wait_ready("proxy", "list reloaded", round + 1, WAIT);
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::SeqCst);
    let (done, failures) = load.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} connections failed: {:?}",
        failures.len(),
        done + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(done >= 100, "the load ran: {done} connections");
}
