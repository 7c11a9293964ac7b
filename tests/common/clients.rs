//! Clients in the topology's client namespace: one TCP or UDP exchange with a server
//! that answers one line, waiting for a refused connection, and the assertion on an
//! answer that shows the namespaces' state when it fails.

use super::Topology;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

impl Topology {
    /// One TCP exchange from the client namespace: returns the line the server sent.
    pub fn tcp_from_client(&self, addr: &str) -> Result<String, String> {
        let addr: SocketAddr = addr.parse().unwrap();
        self.with_ns("client", move || tcp_exchange(addr))
    }

    /// Connect from the client namespace to `addr` until a connection is refused (at
    /// most `limit`): whether one was.
    pub fn refused_within(&self, addr: &str, limit: Duration) -> bool {
        let addr: SocketAddr = addr.parse().unwrap();
        self.with_ns("client", move || {
            let end = Instant::now() + limit;
            while Instant::now() < end {
                match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
                    _ => thread::sleep(Duration::from_millis(50)),
                }
            }
            false
        })
    }

    /// One UDP exchange from the client namespace (up to 3 tries).
    pub fn udp_from_client(&self, addr: &str) -> Result<String, String> {
        let addr: SocketAddr = addr.parse().unwrap();
        self.with_ns("client", move || udp_exchange(addr))
    }
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connect, read one line until EOF, with 5 s connect/read timeouts.
pub fn tcp_exchange(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("read from {addr}: {e} (got {text:?})"))?;
    Ok(text.trim().to_string())
}

/// Send one datagram and wait for the answer; up to 3 tries of 2 s.
pub fn udp_exchange(addr: SocketAddr) -> Result<String, String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    s.connect(addr)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1500];
    let mut last = String::new();
    for _ in 0..3 {
        s.send(b"ping").map_err(|e| format!("send {addr}: {e}"))?;
        match s.recv(&mut buf) {
            Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string()),
            Err(e) => last = format!("no answer from {addr}: {e}"),
        }
    }
    Err(last)
}

/// Run a closure with a panic message that includes the router/gw state, to debug
/// network failures.
pub fn expect_reply(topo: &Topology, got: Result<String, String>, want: &str, what: &str) {
    match got {
        Ok(line) if line == want => {}
        Ok(line) => panic!("{what}: server answered {line:?}, expected {want:?}"),
        Err(e) => panic!("{what}: {e}\nstate:\n{}", topo.dump()),
    }
}
