//! Servers on threads inside a namespace of the topology: TCP with a handler a
//! connection (the default answers with the addresses it sees), UDP on the server's
//! three addresses; each stops on drop, and by itself after `SERVER_MAX_LIFE`.

use super::Topology;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

impl Topology {
    /// TCP server in the server namespace (see `Server`).
    pub fn tcp_server(&self, port: u16) -> Server {
        Server::tcp_in(self, "server", port)
    }

    /// UDP server in the server namespace on 203.0.113.{5,6,7}:PORT.
    pub fn udp_server(&self, port: u16) -> Server {
        Server::udp(self, port)
    }
}

/// A server running on threads inside a namespace: a TCP listener whose connections are
/// each served by a `Handler` on their own thread, or UDP sockets. The default handler
/// (`answer_line`) and the UDP server answer with one line `<peer_ip> <local_ip>:<local_port>`.
/// Stops (and closes its sockets) on drop; it also stops by itself after 120 s.
pub struct Server {
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

/// Serves one accepted TCP connection. It must return soon after `stop` is set (use
/// short read timeouts) and never outlive `SERVER_MAX_LIFE`.
pub type Handler = fn(TcpStream, SocketAddr, &AtomicBool);

/// The longest a server runs: it stops by itself then.
pub const SERVER_MAX_LIFE: Duration = Duration::from_secs(120);

impl Server {
    fn udp(topo: &Topology, port: u16) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for ip in ["203.0.113.5", "203.0.113.6", "203.0.113.7"] {
            let (tx, rx) = std::sync::mpsc::channel();
            let st = stop.clone();
            threads.push(topo.in_ns("server", move || {
                // one socket per address so the local address is known and replies
                // leave from the address the datagram was sent to
                let s = match UdpSocket::bind((ip, port)) {
                    Ok(s) => s,
                    Err(e) => {
                        tx.send(Err(e.to_string())).unwrap();
                        return;
                    }
                };
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                tx.send(Ok(())).unwrap();
                serve_udp(&s, &st);
            }));
            rx.recv_timeout(Duration::from_secs(5))
                .expect("udp server thread")
                .unwrap_or_else(|e| panic!("udp server bind {ip}:{port}: {e}"));
        }
        Server {
            stop,
            accepted: Arc::new(AtomicUsize::new(0)),
            threads,
        }
    }

    /// A TCP server on 0.0.0.0:PORT in any namespace (e.g. a local proxy in the router).
    pub fn tcp_in(topo: &Topology, role: &str, port: u16) -> Server {
        Server::tcp_with(topo, role, port, answer_line)
    }

    /// A TCP server on 0.0.0.0:PORT in the namespace of `role`, one thread a connection.
    pub fn tcp_with(topo: &Topology, role: &str, port: u16, handler: Handler) -> Server {
        Server::tcp_at(topo, role, "0.0.0.0", port, handler)
    }

    /// A TCP server on IP:PORT only (other addresses of the namespace refuse that port).
    pub fn tcp_at(
        topo: &Topology,
        role: &str,
        ip: &'static str,
        port: u16,
        handler: Handler,
    ) -> Server {
        Server::tcp_in_netns(&topo.ns(role), ip, port, handler)
    }

    /// A TCP server on IP:PORT in the network namespace named `ns`.
    pub fn tcp_in_netns(ns: &str, ip: &'static str, port: u16, handler: Handler) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let (st, count) = (stop.clone(), accepted.clone());
        let name = ns.to_string();
        let t = thread::spawn(move || {
            super::enter_netns(&name);
            let l = TcpListener::bind((ip, port));
            let l = match l {
                Ok(l) => l,
                Err(e) => {
                    tx.send(Err(e.to_string())).unwrap();
                    return;
                }
            };
            l.set_nonblocking(true).unwrap();
            tx.send(Ok(())).unwrap();
            serve_tcp(&l, &st, &count, handler);
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("tcp server thread")
            .unwrap_or_else(|e| panic!("tcp server bind {ip}:{port} in {ns}: {e}"));
        Server {
            stop,
            accepted,
            threads: vec![t],
        }
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn serve_tcp(l: &TcpListener, stop: &Arc<AtomicBool>, accepted: &AtomicUsize, handler: Handler) {
    let end = Instant::now() + SERVER_MAX_LIFE;
    let mut conns = Vec::new();
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        match l.accept() {
            Ok((s, peer)) => {
                accepted.fetch_add(1, Ordering::SeqCst);
                let _ = s.set_nonblocking(false);
                let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                let st = stop.clone();
                conns.push(thread::spawn(move || handler(s, peer, &st)));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for c in conns {
        let _ = c.join();
    }
}

/// The default handler: one line `<peer_ip> <local_ip>:<local_port>`, then close.
pub fn answer_line(mut s: TcpStream, peer: SocketAddr, _stop: &AtomicBool) {
    let local = s.local_addr().unwrap();
    let _ = writeln!(s, "{} {}:{}", peer.ip(), local.ip(), local.port());
    let _ = s.flush();
}

fn serve_udp(s: &UdpSocket, stop: &AtomicBool) {
    let end = Instant::now() + SERVER_MAX_LIFE;
    let local = s.local_addr().unwrap();
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        if let Ok((_, peer)) = s.recv_from(&mut buf) {
            let line = format!("{} {}:{}\n", peer.ip(), local.ip(), local.port());
            let _ = s.send_to(line.as_bytes(), peer);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
