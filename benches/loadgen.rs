//! loadgen: the load generator of `benches/http-proxy-vs-squid.sh`.
//!
//! ```text
//! loadgen server  --listen ADDR [--max-seconds S]
//! loadgen tunnels --proxy ADDR --target HOST:PORT --concurrency N --duration S [--direct]
//! loadgen bulk    --proxy ADDR --target HOST:PORT --bytes N [--direct]
//! loadgen idle    --proxy ADDR --target HOST:PORT --count N --hold S
//! ```
//! The server reads one command line per connection: `SEND <bytes>` (send that many
//! bytes, then close), `ECHO` (echo until end of stream) or `HOLD` (send nothing, keep
//! the connection until the peer closes). Clients open a CONNECT tunnel through the
//! proxy at ADDR to the server at HOST:PORT; with `--direct` they connect to ADDR as
//! the server itself. Results are `key=value` lines on stdout. Every mode is bounded
//! in time (the server by --max-seconds, 900 by default) and in count.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Limit for one step (connect, CONNECT answer, a read) of a client.
const STEP: Duration = Duration::from_secs(10);
const CHUNK: usize = 256 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("runtime: {e}")),
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("loadgen: {msg}");
    ExitCode::from(2)
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
        let direct = self.flag("direct");
        Ok(Dial {
            addr: self.str("proxy")?,
            target: if direct {
                None
            } else {
                Some(self.str("target")?)
            },
        })
    }
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let (mode, rest) = args.split_first().ok_or(
        "usage: loadgen server|tunnels|bulk|idle --option value ... (see the source header)",
    )?;
    let o = Opts::parse(rest)?;
    match mode.as_str() {
        "server" => server(&o.str("listen")?, o.num("max-seconds", Some(900))?).await,
        "tunnels" => {
            let concurrency = o.num("concurrency", None)?.clamp(1, 1024) as usize;
            let duration = Duration::from_secs(o.num("duration", None)?.clamp(1, 600));
            tunnels(Rc::new(o.dial()?), concurrency, duration).await
        }
        "bulk" => bulk(&o.dial()?, o.num("bytes", None)?).await,
        "idle" => {
            let count = o.num("count", None)?.clamp(1, 20000) as usize;
            let hold = Duration::from_secs(o.num("hold", None)?.clamp(1, 600));
            idle(&o.dial()?, count, hold).await
        }
        other => Err(format!("unknown mode {other:?}")),
    }
}

// ------------------------------------------------------------------ server

async fn server(listen: &str, max_seconds: u64) -> Result<(), String> {
    let l = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("listen {listen}: {e}"))?;
    println!("listening={listen}");
    let serve = async {
        loop {
            if let Ok((s, _)) = l.accept().await {
                tokio::task::spawn_local(async move {
                    let _ = serve_one(s).await;
                });
            }
        }
    };
    let _ = timeout(Duration::from_secs(max_seconds), serve).await;
    Ok(())
}

async fn serve_one(mut s: TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let line = timeout(STEP, read_until(&mut s, b"\n", 64))
        .await
        .map_err(|_| io::ErrorKind::TimedOut)??;
    let line = String::from_utf8_lossy(&line);
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("SEND"), Some(n)) => {
            let mut left: u64 = n.parse().map_err(|_| io::ErrorKind::InvalidInput)?;
            let zeros = vec![0u8; CHUNK];
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                s.write_all(&zeros[..n]).await?;
                left -= n as u64;
            }
            s.shutdown().await
        }
        (Some("ECHO"), _) => {
            let (mut r, mut w) = s.split();
            tokio::io::copy(&mut r, &mut w).await.map(drop)
        }
        (Some("HOLD"), _) => {
            let mut buf = [0u8; 512];
            while s.read(&mut buf).await? > 0 {}
            Ok(())
        }
        _ => Err(io::ErrorKind::InvalidInput.into()),
    }
}

/// Read until `end` is seen (inclusive), at most `max` bytes, one read at a time: the
/// peer sends nothing after the line before it got an answer.
async fn read_until(s: &mut TcpStream, end: &[u8], max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(end.len()).any(|w| w == end) {
        if buf.len() > max {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

// ------------------------------------------------------------------ clients

struct Dial {
    addr: String,
    /// CONNECT target; None for --direct.
    target: Option<String>,
}

impl Dial {
    /// A connection to the server (through a tunnel unless direct) that was sent `command`.
    async fn open(&self, command: &str) -> io::Result<TcpStream> {
        let mut s = timeout(STEP, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| io::ErrorKind::TimedOut)??;
        s.set_nodelay(true)?;
        if let Some(target) = &self.target {
            let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
            s.write_all(req.as_bytes()).await?;
            let head = timeout(STEP, read_until(&mut s, b"\r\n\r\n", 8192))
                .await
                .map_err(|_| io::ErrorKind::TimedOut)??;
            let status = head.split(|b| *b == b' ').nth(1).unwrap_or_default();
            if status != b"200" {
                let line = String::from_utf8_lossy(&head);
                let line = line.lines().next().unwrap_or_default().to_string();
                return Err(io::Error::other(format!("CONNECT answered {line:?}")));
            }
        }
        s.write_all(format!("{command}\n").as_bytes()).await?;
        Ok(s)
    }
}

/// Read exactly until the end of stream; returns the byte count.
async fn drain(s: &mut TcpStream) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = timeout(STEP, s.read(&mut buf))
            .await
            .map_err(|_| io::ErrorKind::TimedOut)??;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

async fn one_tunnel(dial: &Dial) -> io::Result<()> {
    let mut s = dial.open("SEND 64").await?;
    let n = drain(&mut s).await?;
    if n != 64 {
        return Err(io::Error::other(format!("got {n} bytes, not 64")));
    }
    Ok(())
}

async fn tunnels(dial: Rc<Dial>, concurrency: usize, duration: Duration) -> Result<(), String> {
    let start = Instant::now();
    let end = start + duration;
    let latencies = Rc::new(RefCell::new(Vec::<u64>::new()));
    let errors = Rc::new(RefCell::new((0u64, String::new())));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (dial, latencies, errors) = (dial.clone(), latencies.clone(), errors.clone());
        workers.push(tokio::task::spawn_local(async move {
            while Instant::now() < end {
                let t0 = Instant::now();
                match one_tunnel(&dial).await {
                    Ok(()) => latencies.borrow_mut().push(t0.elapsed().as_micros() as u64),
                    Err(e) => {
                        let count = errors.borrow().0 + 1;
                        *errors.borrow_mut() = (count, e.to_string());
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.map_err(|e| e.to_string())?;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut lat = latencies.take();
    lat.sort_unstable();
    let (errors, last_error) = errors.take();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    println!(
        "mode=tunnels concurrency={concurrency} seconds={secs:.2} tunnels={} errors={errors} \
         rate_per_s={:.1} p50_ms={:.3} p99_ms={:.3}",
        lat.len(),
        lat.len() as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
    if errors > 0 {
        eprintln!("loadgen: {errors} failed tunnels, last: {last_error}");
    }
    if lat.is_empty() {
        return Err("no tunnel succeeded".into());
    }
    Ok(())
}

async fn bulk(dial: &Dial, bytes: u64) -> Result<(), String> {
    let start = Instant::now();
    let mut s = dial
        .open(&format!("SEND {bytes}"))
        .await
        .map_err(|e| format!("open: {e}"))?;
    let got = drain(&mut s).await.map_err(|e| format!("read: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    if got != bytes {
        return Err(format!("got {got} bytes of {bytes}"));
    }
    println!(
        "mode=bulk bytes={bytes} seconds={secs:.3} gbit_per_s={:.3}",
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
        let pending = (0..batch).map(|_| dial.open("HOLD"));
        for r in futures::future::join_all(pending).await {
            match r {
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
