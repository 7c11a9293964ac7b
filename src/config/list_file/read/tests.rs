use super::*;
use std::path::PathBuf;

/// A directory of its own for each test, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("egress-list-read-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn refusal(path: &Path) -> String {
    read(path).content.unwrap_err()
}

#[test]
fn a_regular_file_behind_a_configmaps_links_is_read_with_a_steady_stamp() {
    let dir = Dir::new("configmap");
    std::fs::create_dir(dir.0.join("..2026_12_06_10_00_00.1")).unwrap();
    dir.file("..2026_12_06_10_00_00.1/rules", b"*.example.com\n");
    std::os::unix::fs::symlink("..2026_12_06_10_00_00.1", dir.0.join("..data")).unwrap();
    let rules = dir.0.join("rules");
    std::os::unix::fs::symlink("..data/rules", &rules).unwrap();
    let seen = stamp(&rules);
    let reading = read(&rules);
    assert_eq!(reading.content.as_deref(), Ok("*.example.com\n"));
    assert!(
        seen.is_some() && reading.unchanged_since(seen),
        "{reading:?}"
    );
}

#[test]
fn anything_but_a_regular_file_is_refused_without_being_read() {
    let dir = Dir::new("kinds");
    let fifo = dir.0.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let zero = dir.0.join("zero");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let socket = dir.0.join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    for (path, what) in [
        (fifo, "a FIFO"),
        (zero, "a character device"),
        (socket, "a socket"),
        (dir.0.clone(), "a directory"),
    ] {
        let reading = read(&path);
        let want = format!("{} is {what}, not a regular file", path.display());
        assert_eq!(reading.content, Err(want));
        assert!(reading.unchanged_since(stamp(&path)), "{reading:?}");
    }
}

#[test]
fn a_file_over_the_cap_is_refused_one_at_the_cap_is_read() {
    let dir = Dir::new("cap");
    let mut list = "203.0.113.5\n".repeat(100).into_bytes();
    list.resize(usize::try_from(MAX_LIST_FILE).unwrap(), b'\n');
    let at_cap = dir.file("at-cap", &list);
    assert_eq!(
        read(&at_cap).content.map(|t| t.len() as u64),
        Ok(MAX_LIST_FILE)
    );
    list.push(b'\n');
    let over = dir.file("over", &list);
    let want = format!("{} is larger than 4 MiB", over.display());
    assert_eq!(refusal(&over), want);
    let grown = read_text(&over, &File::open(&over).unwrap(), 0);
    assert_eq!(grown, Err(want), "a file that grew after it was judged");
}

#[test]
fn an_empty_a_binary_or_a_missing_file_is_refused_naming_it() {
    let dir = Dir::new("bad");
    let empty = dir.file("empty", b"\n  \n");
    assert!(refusal(&empty).ends_with("empty: the file holds no list"));
    let binary = dir.file("binary", b"203.0.113.5\n\xff\xfe\n");
    assert!(refusal(&binary).ends_with("binary: the file is not UTF-8 text"));
    let missing = dir.0.join("missing");
    let reading = read(&missing);
    assert!(
        reading
            .content
            .as_ref()
            .unwrap_err()
            .starts_with(&format!("{}: ", missing.display())),
        "{reading:?}"
    );
    assert!(reading.unchanged_since(None));
}

#[test]
fn a_file_written_or_replaced_since_it_was_seen_has_another_stamp() {
    let dir = Dir::new("stamps");
    let rules = dir.file("rules", b"allowed.example\n*");
    let seen = stamp(&rules);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&rules)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b".example.net\n"))
        .unwrap();
    assert!(!read(&rules).unchanged_since(seen), "written in place");
    let seen = stamp(&rules);
    let staged = dir.file(".rules.new", b"allowed.example\n*.example.net\n");
    std::fs::rename(staged, &rules).unwrap();
    let reading = read(&rules);
    assert_eq!(
        reading.content.as_deref(),
        Ok("allowed.example\n*.example.net\n")
    );
    assert!(
        !reading.unchanged_since(seen),
        "same size, another file renamed over it"
    );
    assert!(reading.unchanged_since(stamp(&rules)));
}
