//! loadgen: the load generator of the proxy benchmarks (`benches/compare.sh`).
//!
//! ```text
//! loadgen server  --listen ADDR [--max-seconds S] [--threads N]
//! loadgen tunnels --proxy ADDR --target HOST:PORT --concurrency N --duration S
//!                 [--threads N] [--max-connections N] [--direct]
//! loadgen bulk    --proxy ADDR --target HOST:PORT --bytes N [--up] [--direct]
//! loadgen idle    --proxy ADDR --target HOST:PORT --count N --hold S [--direct]
//! loadgen first   --proxy ADDR --target HOST:PORT [--direct]
//! ```
//! The server reads one command line per connection: `SEND <bytes>` (send that many
//! bytes, then close), `RECV <bytes>` (read that many bytes, answer `OK <bytes>`, close),
//! `ECHO` (echo until end of stream) or `HOLD` (send nothing, keep the connection until
//! the peer closes). Clients open a CONNECT tunnel through the proxy at ADDR to the
//! server at HOST:PORT; with `--direct` they connect to ADDR as the server itself. ADDR
//! is an IP:PORT.
//!
//! `tunnels` is the connection rate test: N workers, each in a loop: connect, send
//! `SEND 64`, read the 64 bytes and the end of stream, close. `bulk` moves N bytes in
//! one connection, server -> client (download) or, with `--up`, client -> server.
//! `first` measures a proxy's startup: it retries the rate test's exchange every 0.2 ms
//! (for 10 s at most), prints `waiting` after the first failure (the proxy is started
//! then) and, once an exchange succeeded, when (`first_at_us`, microseconds since the
//! epoch).
//!
//! Built to cost as little per connection as the kernel allows, so that the client is
//! not what a benchmark measures: one thread per usable core (the CPU affinity mask, so
//! `taskset` is honoured), each with its own single-threaded runtime; the server has a
//! SO_REUSEPORT listener per thread; no allocation per connection beyond the socket.
//! Results are `key=value` lines on stdout. Every mode is bounded in time (the server by
//! --max-seconds, 900 by default) and in count.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

/// Limit for one connection of the rate test, or one step (connect, a read) of the others.
const STEP: Duration = Duration::from_secs(10);
const CHUNK: usize = 256 * 1024;
/// What SEND sends and `bulk --up` uploads.
static ZEROS: [u8; CHUNK] = [0; CHUNK];
/// Bytes per connection of the rate test.
const RATE_BYTES: usize = 64;
const RATE_COMMAND: &[u8] = b"SEND 64\n";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

/// A single-threaded runtime: one per thread, nothing shared between threads.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

/// Threads to use: --threads, else the CPUs this process may run on.
fn threads(o: &Opts) -> Result<usize, String> {
    let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(o.num("threads", Some(usable as u64))?.clamp(1, 64) as usize)
}

/// `--key value` pairs and `--flag`s after the mode.
struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut map = HashMap::new();
        let mut it = args.iter().peekable();
        while let Some(arg) = it.next() {
            let key = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().unwrap().clone(),
                _ => String::new(),
            };
            map.insert(key.to_string(), value);
        }
        Ok(Opts(map))
    }

    fn str(&self, key: &str) -> Result<String, String> {
        self.0
            .get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("--{key} VALUE is required"))
    }

    fn num(&self, key: &str, default: Option<u64>) -> Result<u64, String> {
        match (self.0.get(key), default) {
            (None, Some(d)) => Ok(d),
            (None, None) => Err(format!("--{key} N is required")),
            (Some(v), _) => v
                .parse()
                .map_err(|_| format!("--{key}: {v:?} is not a number")),
        }
    }

    fn flag(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Where clients go: the proxy (and the target for CONNECT), or the server directly.
    fn dial(&self) -> Result<Dial, String> {
        let addr = self.str("proxy")?;
        let addr = addr
            .parse()
            .map_err(|_| format!("--proxy: {addr:?} is not IP:PORT"))?;
        let connect = if self.flag("direct") {
            Vec::new()
        } else {
            let target = self.str("target")?;
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes()
        };
        Ok(Dial { addr, connect })
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let (mode, rest) = args.split_first().ok_or(
        "usage: loadgen server|tunnels|bulk|idle|first --option value ... (see the source header)",
    )?;
    let o = Opts::parse(rest)?;
    match mode.as_str() {
        "server" => server(
            &o.str("listen")?,
            o.num("max-seconds", Some(900))?,
            threads(&o)?,
        ),
        "tunnels" => {
            let concurrency = o.num("concurrency", None)?.clamp(1, 4096) as usize;
            let duration = Duration::from_secs(o.num("duration", None)?.clamp(1, 600));
            let max = o.num("max-connections", Some(10_000_000))?.max(1);
            let threads = threads(&o)?.min(concurrency);
            tunnels(o.dial()?, concurrency, threads, duration, max)
        }
        "bulk" => {
            let (dial, bytes, up) = (o.dial()?, o.num("bytes", None)?, o.flag("up"));
            runtime()?.block_on(bulk(&dial, bytes, up))
        }
        "idle" => {
            let count = o.num("count", None)?.clamp(1, 20000) as usize;
            let hold = Duration::from_secs(o.num("hold", None)?.clamp(1, 600));
            let dial = o.dial()?;
            runtime()?.block_on(idle(&dial, count, hold))
        }
        "first" => runtime()?.block_on(first(&o.dial()?)),
        other => Err(format!("unknown mode {other:?}")),
    }
}

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

// ------------------------------------------------------------------ server

/// One SO_REUSEPORT listener per thread, each served by its thread's runtime: the kernel
/// spreads the connections, nothing is shared.
fn server(listen: &str, max_seconds: u64, threads: usize) -> Result<(), String> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("--listen: {listen:?} is not IP:PORT"))?;
    let limit = Duration::from_secs(max_seconds);
    let (ready, listening) = std::sync::mpsc::channel();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let ready = ready.clone();
            std::thread::spawn(move || -> Result<(), String> {
                runtime()?.block_on(async move {
                    let l = match reuseport_listener(addr) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready.send(Err(format!("listen {addr}: {e}")));
                            return Ok(());
                        }
                    };
                    let _ = ready.send(Ok(()));
                    let _ = timeout(limit, accept_loop(l)).await;
                    Ok(())
                })
            })
        })
        .collect();
    for _ in 0..threads {
        listening.recv().map_err(|_| "server thread ended")??;
    }
    println!("listening={listen} threads={threads}");
    for h in handles {
        h.join().map_err(|_| "server thread panicked")??;
    }
    Ok(())
}

fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    s.set_reuseport(true)?;
    s.bind(addr)?;
    s.listen(4096)
}

async fn accept_loop(l: TcpListener) {
    loop {
        match l.accept().await {
            Ok((s, _)) => {
                tokio::spawn(async move {
                    let _ = timeout(Duration::from_secs(600), serve_one(s)).await;
                });
            }
            // out of descriptors, for instance: let connections end, then go on
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn serve_one(mut s: TcpStream) -> io::Result<()> {
    let mut head = [0u8; 64];
    let (n, read) = timeout(STEP, read_line(&mut s, &mut head))
        .await
        .map_err(|_| io::ErrorKind::TimedOut)??;
    // bytes after the line: only RECV's client sends them without waiting
    let extra = (read - n - 1) as u64;
    let line = std::str::from_utf8(&head[..n]).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut words = line.split_whitespace();
    let count = |w: Option<&str>| -> io::Result<u64> {
        w.and_then(|n| n.parse().ok())
            .ok_or_else(|| io::ErrorKind::InvalidInput.into())
    };
    match words.next() {
        Some("SEND") => {
            let mut left = count(words.next())?;
            if left > CHUNK as u64 {
                s.set_nodelay(true)?;
            }
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                s.write_all(&ZEROS[..n]).await?;
                left -= n as u64;
            }
            // dropping the stream closes it: the FIN follows the data
            Ok(())
        }
        Some("RECV") => {
            let want = count(words.next())?;
            let mut buf = vec![0u8; CHUNK];
            let mut got = extra;
            while got < want {
                let n = timeout(STEP, s.read(&mut buf))
                    .await
                    .map_err(|_| io::ErrorKind::TimedOut)??;
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            s.write_all(format!("OK {got}\n").as_bytes()).await
        }
        Some("ECHO") => {
            s.set_nodelay(true)?;
            s.write_all(&head[n + 1..read]).await?;
            let (mut r, mut w) = s.split();
            tokio::io::copy(&mut r, &mut w).await.map(drop)
        }
        Some("HOLD") => {
            let mut buf = [0u8; 512];
            while s.read(&mut buf).await? > 0 {}
            Ok(())
        }
        _ => Err(io::ErrorKind::InvalidInput.into()),
    }
}

/// Read one command line into `buf`; returns its length without the newline, and how
/// many bytes were read (what follows the line was read too, if it came with it).
async fn read_line(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<(usize, usize)> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let n = s.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(i) = buf[len..len + n].iter().position(|b| *b == b'\n') {
            return Ok((len + i, len + n));
        }
        len += n;
    }
}

// ------------------------------------------------------------------ clients

struct Dial {
    addr: SocketAddr,
    /// The CONNECT request; empty for --direct.
    connect: Vec<u8>,
}

impl Dial {
    /// A connection to the server (through a tunnel unless direct) that was sent `command`
    /// (a line, with its newline).
    async fn open(&self, command: &[u8]) -> io::Result<TcpStream> {
        let mut s = TcpStream::connect(self.addr).await?;
        if !self.connect.is_empty() {
            s.write_all(&self.connect).await?;
            self.connect_answer(&mut s).await?;
        }
        s.write_all(command).await?;
        Ok(s)
    }

    /// Read the CONNECT answer head (to the blank line, one read at a time: nothing comes
    /// after it before the command is sent) and check it is a 200.
    async fn connect_answer(&self, s: &mut TcpStream) -> io::Result<()> {
        let mut head = [0u8; 1024];
        let mut len = 0;
        while !head[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            if len == head.len() {
                return Err(io::Error::other("CONNECT answer head too long"));
            }
            let n = s.read(&mut head[len..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            len += n;
        }
        if head.split(|b| *b == b' ').nth(1) != Some(b"200") {
            let line = String::from_utf8_lossy(&head[..len]);
            let line = line.lines().next().unwrap_or_default().to_string();
            return Err(io::Error::other(format!("CONNECT answered {line:?}")));
        }
        Ok(())
    }
}

/// One connection of the rate test: connect, SEND 64, read the 64 bytes and the end of
/// stream, close.
async fn one_tunnel(dial: &Dial) -> io::Result<()> {
    let mut s = dial.open(RATE_COMMAND).await?;
    let mut buf = [0u8; 2 * RATE_BYTES];
    let mut got = 0;
    loop {
        let n = s.read(&mut buf[got.min(RATE_BYTES)..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    if got != RATE_BYTES {
        return Err(io::Error::other(format!(
            "got {got} bytes, not {RATE_BYTES}"
        )));
    }
    Ok(())
}

#[derive(Default)]
struct RateStats {
    /// Microseconds per successful connection.
    latencies: Vec<u32>,
    errors: u64,
    last_error: String,
}

/// The rate test: `concurrency` workers spread over `threads` threads, each thread with
/// its own runtime and statistics, until `duration` has passed or `max` connections
/// were made.
fn tunnels(
    dial: Dial,
    concurrency: usize,
    threads: usize,
    duration: Duration,
    max: u64,
) -> Result<(), String> {
    let dial = std::sync::Arc::new(dial);
    let start = Instant::now();
    let end = start + duration;
    let cpu0 = cpu_seconds();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let dial = dial.clone();
            // workers of this thread, and its share of the connection budget
            let workers = concurrency / threads + usize::from(t < concurrency % threads);
            let budget = max / threads as u64 + 1;
            std::thread::spawn(move || -> Result<RateStats, String> {
                let stats = RefCell::new(RateStats::default());
                let left = Cell::new(budget);
                let rt = runtime()?;
                rt.block_on(futures::future::join_all(
                    (0..workers).map(|_| rate_worker(&dial, end, &left, &stats)),
                ));
                Ok(stats.into_inner())
            })
        })
        .collect();
    let mut all = RateStats::default();
    for h in handles {
        let s = h.join().map_err(|_| "client thread panicked")??;
        all.latencies.extend_from_slice(&s.latencies);
        all.errors += s.errors;
        if !s.last_error.is_empty() {
            all.last_error = s.last_error;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let lat = &mut all.latencies;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    println!(
        "mode=tunnels concurrency={concurrency} threads={threads} seconds={secs:.2} tunnels={} \
         errors={} rate_per_s={:.1} p50_ms={:.3} p99_ms={:.3} client_cpu_s={cpu:.2}",
        lat.len(),
        all.errors,
        lat.len() as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
    if all.errors > 0 {
        eprintln!(
            "loadgen: {} failed tunnels, last: {}",
            all.errors, all.last_error
        );
    }
    if lat.is_empty() {
        return Err("no tunnel succeeded".into());
    }
    Ok(())
}

async fn rate_worker(dial: &Dial, end: Instant, left: &Cell<u64>, stats: &RefCell<RateStats>) {
    loop {
        let t0 = Instant::now();
        if t0 >= end || left.get() == 0 {
            return;
        }
        left.set(left.get() - 1);
        let r = match timeout(STEP, one_tunnel(dial)).await {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        };
        match r {
            Ok(()) => {
                let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                stats.borrow_mut().latencies.push(us);
            }
            Err(e) => {
                {
                    let mut s = stats.borrow_mut();
                    s.errors += 1;
                    s.last_error = e.to_string();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Read until the end of stream; returns the byte count.
async fn drain(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = timeout(STEP, s.read(buf))
            .await
            .map_err(|_| io::ErrorKind::TimedOut)??;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// One connection carrying `bytes`: server -> client, or client -> server with `up`
/// (timed until the server has confirmed it read them all).
async fn bulk(dial: &Dial, bytes: u64, up: bool) -> Result<(), String> {
    let start = Instant::now();
    let command = format!("{} {bytes}\n", if up { "RECV" } else { "SEND" });
    let mut s = timeout(STEP, dial.open(command.as_bytes()))
        .await
        .map_err(|_| "open: timed out".to_string())?
        .map_err(|e| format!("open: {e}"))?;
    let mut buf = vec![0u8; CHUNK];
    if up {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            timeout(STEP, s.write_all(&ZEROS[..n]))
                .await
                .map_err(|_| "write: timed out".to_string())?
                .map_err(|e| format!("write: {e}"))?;
            left -= n as u64;
        }
        let mut answer = Vec::new();
        timeout(STEP, s.read_to_end(&mut answer))
            .await
            .map_err(|_| "answer: timed out".to_string())?
            .map_err(|e| format!("answer: {e}"))?;
        if answer != format!("OK {bytes}\n").as_bytes() {
            let answer = String::from_utf8_lossy(&answer);
            return Err(format!("server answered {answer:?}, not OK {bytes}"));
        }
    } else {
        let got = drain(&mut s, &mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if got != bytes {
            return Err(format!("got {got} bytes of {bytes}"));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "mode=bulk direction={} bytes={bytes} seconds={secs:.3} mb_per_s={:.1} gbit_per_s={:.3}",
        if up { "up" } else { "down" },
        bytes as f64 / secs / 1e6,
        bytes as f64 * 8.0 / secs / 1e9
    );
    Ok(())
}

async fn idle(dial: &Dial, count: usize, hold: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut open = Vec::with_capacity(count);
    let mut errors = 0;
    // 64 connects in flight at a time
    while open.len() + errors < count {
        let batch = (count - open.len() - errors).min(64);
        let pending = (0..batch).map(|_| timeout(STEP, dial.open(b"HOLD\n")));
        for r in futures::future::join_all(pending).await {
            match r.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())) {
                Ok(s) => open.push(s),
                Err(e) => {
                    errors += 1;
                    if errors == 1 {
                        eprintln!("loadgen: idle tunnel failed: {e}");
                    }
                }
            }
        }
    }
    println!(
        "mode=idle idle_open={} errors={errors} open_seconds={:.2}",
        open.len(),
        start.elapsed().as_secs_f64()
    );
    tokio::time::sleep(hold).await;
    drop(open);
    println!("idle_closed={count}");
    if errors > 0 {
        return Err(format!("{errors} of {count} tunnels failed"));
    }
    Ok(())
}

// ------------------------------------------------------------------ first

/// Retries one exchange until it succeeds, for [`STEP`] at most. After the first failed
/// try it prints `waiting` (the caller starts the proxy then); on success, the time.
async fn first(dial: &Dial) -> Result<(), String> {
    let end = Instant::now() + STEP;
    let mut tries = 0u64;
    loop {
        tries += 1;
        match one_tunnel(dial).await {
            Ok(()) => break,
            Err(e) if Instant::now() >= end => {
                return Err(format!("no exchange within {STEP:?}: {e}"));
            }
            Err(_) => {
                if tries == 1 {
                    println!("waiting");
                }
                // Nothing else runs on this runtime: a precise blocking pause is fine.
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    println!("first_at_us={} tries={tries}", now.as_micros());
    Ok(())
}
