//! Processes of the binary under test and of other programs: where the binary is, a
//! clean environment, a child (`ChildGuard`) whose output is collected line by line
//! and which is stopped on drop, and the text of a finished command's output.

use super::PATH;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Path of the binary under test. `EGRESS_ROUTER_TEST_BIN` may point at another build
/// (used to check the tests themselves); by default it is the crate's binary.
pub fn bin() -> String {
    std::env::var("EGRESS_ROUTER_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_egress-router").to_string())
}

pub(super) fn clean_command<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    env: &[(String, String)],
) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().env("PATH", PATH);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A finished command's status, stdout and stderr, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ChildGuard {
    child: Option<Child>,
    pub started: Instant,
    lines: Arc<Mutex<Vec<(Instant, bool, String)>>>,
    readers: Vec<JoinHandle<()>>,
}

impl ChildGuard {
    /// Starts `cmd` with stdin closed and its output collected.
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        readers.push(collect_lines(out, false, lines.clone()));
        readers.push(collect_lines(err, true, lines.clone()));
        ChildGuard {
            child: Some(child),
            started,
            lines,
            readers,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends signal `sig` to the child, unless it was stopped already.
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Wait for exit at most `limit`. Once it exited, its output is complete: the
    /// readers have taken every line before this returns.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_wait() {
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// All lines so far: (arrival, from_stderr, text).
    pub fn lines(&self) -> Vec<(Instant, bool, String)> {
        self.lines.lock().unwrap().clone()
    }

    /// Its stdout so far, a line each.
    pub fn stdout(&self) -> String {
        self.text(false)
    }

    /// Its stderr so far, a line each.
    pub fn stderr(&self) -> String {
        self.text(true)
    }

    fn text(&self, err: bool) -> String {
        self.lines()
            .into_iter()
            .filter(|l| l.1 == err)
            .map(|l| l.2 + "\n")
            .collect()
    }

    /// Wait until a line (stdout or stderr) satisfies `pred`; returns it and its arrival.
    pub fn wait_line<P: Fn(&str) -> bool>(
        &self,
        pred: P,
        limit: Duration,
    ) -> Option<(Instant, String)> {
        let end = Instant::now() + limit;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| pred(&l.2)) {
                return Some((l.0, l.2));
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait until `count` lines contain `needle` (a server logging that it listens);
    /// panics with the output when the process exits first or after `limit`.
    pub fn wait_ready(&mut self, what: &str, needle: &str, count: usize, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let seen = self.lines().iter().filter(|l| l.2.contains(needle)).count();
            if seen >= count {
                return;
            }
            if let Some(st) = self.try_wait() {
                panic!(
                    "{what} exited ({st}) before logging {needle:?} {count} times:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < end,
                "{what} logged {needle:?} {seen} of {count} times in {limit:?}:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, up to 1 s to exit, then SIGKILL; waits for it and its output.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                unsafe {
                    libc::kill(c.id() as i32, libc::SIGTERM);
                }
                let end = Instant::now() + Duration::from_secs(1);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn collect_lines<R: Read + Send + 'static>(
    r: R,
    err: bool,
    lines: Arc<Mutex<Vec<(Instant, bool, String)>>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            match line {
                Ok(l) => lines.lock().unwrap().push((Instant::now(), err, l)),
                Err(_) => break,
            }
        }
    })
}
