//! List files for the reload tests: a directory written as an editor, `kubectl cp` or a
//! mounted ConfigMap would, a proxy started on one, and what its endpoint and log say
//! about the reloads.

use super::{ChildGuard, Topology, envs};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the proxies' metrics endpoint listens, in the router namespace.
pub const METRICS: &str = "127.0.0.1:9090";

/// A directory for list files, removed on drop.
pub struct ListDir(PathBuf);

impl ListDir {
    pub fn new(name: &str) -> ListDir {
        let dir = std::env::temp_dir().join(format!("egress-reload-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ListDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Replaces `name` as an editor or `kubectl cp` would: a new file renamed over it.
    pub fn write(&self, name: &str, text: &str) {
        let staged = self.path(&format!(".{name}.new"));
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, self.path(name)).unwrap();
    }

    /// Replaces `name` by a symbolic link to `target`, in one rename.
    pub fn symlink(&self, name: &str, target: &Path) {
        let staged = self.path(&format!(".{name}.link"));
        let _ = std::fs::remove_file(&staged);
        std::os::unix::fs::symlink(target, &staged).unwrap();
        std::fs::rename(&staged, self.path(name)).unwrap();
    }

    /// Replaces `name` by a FIFO (that nobody writes), in one rename.
    pub fn fifo(&self, name: &str) {
        let staged = self.path(&format!(".{name}.fifo"));
        let _ = std::fs::remove_file(&staged);
        let c_path = std::ffi::CString::new(staged.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
        std::fs::rename(&staged, self.path(name)).unwrap();
    }

    /// The layout of a mounted ConfigMap: `name -> ..data/name`, `..data -> ..VERSION`;
    /// each update writes a new version directory and swaps `..data` in one rename.
    pub fn configmap(&self, name: &str, version: &str, text: &str) {
        let versioned = self.path(&format!("..{version}"));
        std::fs::create_dir_all(&versioned).unwrap();
        std::fs::write(versioned.join(name), text).unwrap();
        let staged = self.path("..data_tmp");
        let _ = std::fs::remove_file(&staged);
        std::os::unix::fs::symlink(format!("..{version}"), &staged).unwrap();
        std::fs::rename(&staged, self.path("..data")).unwrap();
        if !self.path(name).exists() {
            std::os::unix::fs::symlink(format!("..data/{name}"), self.path(name)).unwrap();
        }
    }
}

impl Drop for ListDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The router started with its list in `file` (named by `var`) and its endpoint on
/// [`METRICS`], once it logged `ready` `count` times.
pub fn start(t: &Topology, var: &str, file: &Path, ready: &str, count: usize) -> ChildGuard {
    let env = envs(&[
        (var, file.to_str().unwrap()),
        ("EGRESS_METRICS_ADDRESS", METRICS),
    ]);
    let mut p = t.spawn_router(&[], &env);
    p.wait_ready("proxy", ready, count, Duration::from_secs(10));
    p
}

/// `GET path` on the endpoint from inside the router namespace: the whole answer, or
/// what failed (each step waits at most `patience`).
pub fn endpoint_get(t: &Topology, path: &str, patience: Duration) -> Result<String, String> {
    let path = path.to_string();
    t.with_ns("router", move || endpoint_get_here(&path, patience))
}

/// The same from a thread already in the router namespace.
pub fn endpoint_get_here(path: &str, patience: Duration) -> Result<String, String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let address = METRICS.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&address, patience).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(patience))
        .and_then(|()| s.write_all(request.as_bytes()))
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(text)
}

/// `GET /metrics` from inside the router namespace.
pub fn metrics(t: &Topology) -> String {
    endpoint_get(t, "/metrics", Duration::from_secs(5)).unwrap()
}

/// The count of `result` in `list_reloads_total`; 0 is a series at 0, a missing series
/// fails the test.
pub fn reloads(text: &str, result: &str) -> usize {
    let series =
        format!(r#"egress_router_list_reloads_total{{role="http-proxy",result="{result}"}} "#);
    let series_dns = series.replace("http-proxy", "dns-proxy");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(&series)
                .or_else(|| l.strip_prefix(&series_dns))
        })
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no list_reloads_total series for {result}:\n{text}"))
}

/// The first line of `p`'s stderr containing `needle`.
pub fn first_line(p: &ChildGuard, needle: &str) -> String {
    let stderr = p.stderr();
    let line = stderr.lines().find(|l| l.contains(needle));
    line.unwrap_or_else(|| panic!("no {needle:?} line:\n{stderr}"))
        .to_string()
}

/// Every line of `p`'s stderr containing `needle`.
pub fn lines_with(p: &ChildGuard, needle: &str) -> Vec<String> {
    p.stderr()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}
