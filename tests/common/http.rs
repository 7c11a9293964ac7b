//! HTTP/1.1 on plain sockets for the proxy tests: a buffered connection (`Wire`) that
//! reads message heads and bodies, the client side (`client`, `connect_tunnel`, `get`
//! and `sample` for the operations endpoint), and
//! two server handlers for `Server::tcp_with`: an HTTP origin that echoes what it
//! received (`http_origin`) and a byte echo that reports the half-close (`echo_then_report`).

use super::{SERVER_MAX_LIFE, Topology};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a client waits for one read or for its connect.
pub const CLIENT_PATIENCE: Duration = Duration::from_secs(5);
/// Reads block at most this long before the stop flag and patience are checked again.
const POLL: Duration = Duration::from_millis(100);

/// A start line and headers, names as received.
#[derive(Debug, Clone)]
pub struct Head {
    pub start: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// First value of a header, name compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Status code of a response head (0 if the start line is not a status line).
    pub fn status(&self) -> u16 {
        let mut words = self.start.split_whitespace();
        match (words.next(), words.next()) {
            (Some(v), Some(code)) if v.starts_with("HTTP/") => code.parse().unwrap_or(0),
            _ => 0,
        }
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// A TCP stream with a read buffer. Each read waits at most `patience` (reads poll in
/// 100 ms steps) and gives up early once `stop` is set.
pub struct Wire<'a> {
    pub stream: TcpStream,
    buf: Vec<u8>,
    patience: Duration,
    stop: Option<&'a AtomicBool>,
}

impl<'a> Wire<'a> {
    pub fn new(stream: TcpStream, patience: Duration, stop: Option<&'a AtomicBool>) -> Wire<'a> {
        stream.set_read_timeout(Some(POLL)).unwrap();
        stream.set_write_timeout(Some(CLIENT_PATIENCE)).unwrap();
        Wire {
            stream,
            buf: Vec::new(),
            patience,
            stop,
        }
    }

    pub fn set_patience(&mut self, patience: Duration) {
        self.patience = patience;
    }

    /// Read more bytes into the buffer; Ok(0) at end of stream, TimedOut when nothing
    /// came within the patience.
    fn fill(&mut self) -> io::Result<usize> {
        let end = Instant::now() + self.patience;
        let mut chunk = [0u8; 16384];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let stopped = self.stop.is_some_and(|s| s.load(Ordering::SeqCst));
                    if stopped || Instant::now() >= end {
                        return Err(io::Error::new(ErrorKind::TimedOut, "no data in time"));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    pub fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// The next message head; None on a clean end of stream before any byte of it.
    pub fn read_head(&mut self) -> io::Result<Option<Head>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 4);
                return Ok(Some(parse_head(&text)));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(eof("inside a message head"))
                };
            }
        }
    }

    /// Exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(eof(&format!("after {} of {n} bytes", self.buf.len())));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One line without its line end.
    pub fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = find(&self.buf, b"\n") {
                let line: Vec<u8> = self.buf.drain(..i + 1).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            if self.fill()? == 0 {
                return Err(eof("inside a line"));
            }
        }
    }

    /// Everything up to the end of the stream (a reset after data counts as the end).
    pub fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match self.fill() {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => return Err(e),
            }
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// The body that follows `head`: chunked, Content-Length, none (`bodiless`, e.g.
    /// a request without length or a response to CONNECT/HEAD), or up to the end.
    pub fn read_body(&mut self, head: &Head, bodiless: bool) -> io::Result<Vec<u8>> {
        if head.has_token("transfer-encoding", "chunked") {
            let mut body = Vec::new();
            loop {
                let line = self.read_line()?;
                let size = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|_| io::Error::new(ErrorKind::InvalidData, "bad chunk size"))?;
                if size == 0 {
                    while !self.read_line()?.is_empty() {} // trailers
                    return Ok(body);
                }
                body.extend(self.read_exact(size)?);
                self.read_line()?;
            }
        }
        if let Some(len) = head.get("content-length") {
            let len = len
                .trim()
                .parse()
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, "bad content-length"))?;
            return self.read_exact(len);
        }
        if bodiless {
            return Ok(Vec::new());
        }
        self.read_to_end()
    }

    /// A response and its body; `request_method` decides whether a 2xx has a body.
    pub fn read_response(&mut self, request_method: &str) -> io::Result<Response> {
        let head = self.read_head()?.ok_or_else(|| eof("before a response"))?;
        let status = head.status();
        let bodiless = (100..200).contains(&status)
            || status == 204
            || status == 304
            || request_method == "HEAD"
            || (request_method == "CONNECT" && (200..300).contains(&status));
        let body = self.read_body(&head, bodiless)?;
        Ok(Response {
            head,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

#[derive(Debug)]
pub struct Response {
    pub head: Head,
    pub body: String,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn eof(what: &str) -> io::Error {
    io::Error::new(ErrorKind::UnexpectedEof, format!("end of stream {what}"))
}

fn parse_head(text: &str) -> Head {
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Head { start, headers }
}

/// Send `msg` and expect it back (through a tunnel or forwarder to `echo_then_report`).
pub fn echo(w: &mut Wire, msg: &str) -> Result<(), String> {
    w.write_all(msg.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let got = w.read_exact(msg.len()).map_err(|e| format!("read: {e}"))?;
    if got == msg.as_bytes() {
        Ok(())
    } else {
        Err(format!("echo {:?}", String::from_utf8_lossy(&got)))
    }
}

/// Read from `w` until the peer closes (end of stream or reset), at most `limit`;
/// returns when, or None if it stayed open.
pub fn closed_within(w: &mut Wire, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    w.set_patience(limit);
    match w.read_to_end() {
        Ok(_) => Some(start.elapsed()),
        Err(e) if e.kind() == ErrorKind::TimedOut => None,
        Err(_) => Some(start.elapsed()),
    }
}

/// A client connection from the client namespace to `addr` (e.g. the proxy).
pub fn client(topo: &Topology, addr: &str) -> io::Result<Wire<'static>> {
    let addr: SocketAddr = addr.parse().unwrap();
    let stream = topo.with_ns("client", move || {
        TcpStream::connect_timeout(&addr, CLIENT_PATIENCE)
    })?;
    Ok(Wire::new(stream, CLIENT_PATIENCE, None))
}

/// `GET path` on `address` from namespace `role` (one request, `Connection: close`,
/// 10 s at most): the status and the body.
pub fn get(topo: &Topology, role: &str, address: &str, path: &str) -> (u16, String) {
    let (address, path): (SocketAddr, String) = (address.parse().unwrap(), path.to_string());
    topo.with_ns(role, move || {
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connecting to {address}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line from {address}{path}: {answer:?}"));
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, body.to_string())
    })
}

/// The value of the sample `series` (name and labels exactly as exposed) in a scrape.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Send `CONNECT target` on a new client connection and read the answer. On 200 the
/// wire is the open tunnel.
pub fn connect_tunnel(topo: &Topology, proxy: &str, target: &str) -> (Response, Wire<'static>) {
    let mut w = client(topo, proxy).unwrap_or_else(|e| panic!("connect to proxy {proxy}: {e}"));
    w.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .unwrap_or_else(|e| panic!("send CONNECT {target}: {e}"));
    let resp = w
        .read_response("CONNECT")
        .unwrap_or_else(|e| panic!("answer to CONNECT {target}: {e}"));
    (resp, w)
}

/// HTTP origin handler: answers every request on the connection (keep-alive, bodies
/// with Content-Length or chunked) with 200 and a text body:
/// `peer IP`, `local IP:PORT`, `request <request line>`, `header <Name>: <value>` for
/// each header as received, `body <length>` and the body itself.
pub fn http_origin(stream: TcpStream, peer: SocketAddr, stop: &AtomicBool) {
    let local = stream.local_addr().unwrap();
    let mut w = Wire::new(stream, SERVER_MAX_LIFE, Some(stop));
    while let Ok(Some(head)) = w.read_head() {
        let Ok(body) = w.read_body(&head, true) else {
            return;
        };
        let mut text = format!(
            "peer {}\nlocal {local}\nrequest {}\n",
            peer.ip(),
            head.start
        );
        for (k, v) in &head.headers {
            text.push_str(&format!("header {k}: {v}\n"));
        }
        text.push_str(&format!("body {}\n", body.len()));
        text.push_str(&String::from_utf8_lossy(&body));
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if w.write_all(answer.as_bytes()).is_err() || head.has_token("connection", "close") {
            return;
        }
    }
}

/// Echo handler: sends back every byte it reads; at the end of the client's stream it
/// writes `EOF after N bytes` and closes. Only a working half-close gets that line through.
pub fn echo_then_report(stream: TcpStream, _peer: SocketAddr, stop: &AtomicBool) {
    let mut w = Wire::new(stream, SERVER_MAX_LIFE, Some(stop));
    let mut total = 0;
    loop {
        match w.fill() {
            Ok(0) => break,
            Ok(_) => {
                let bytes = std::mem::take(&mut w.buf);
                total += bytes.len();
                if w.write_all(&bytes).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
    let _ = w.write_all(format!("EOF after {total} bytes\n").as_bytes());
}
