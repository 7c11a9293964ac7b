//! The repository's markdown files, and whether a link target of one of them resolves:
//! a file or directory that exists and, for a markdown file, the heading of its anchor.

use super::ROOT;
use super::anchors::heading_anchors;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Directories under the repository root that hold no documentation of ours, besides
/// hidden ones and every build directory named `target`.
const SKIPPED_DIRS: [&str; 2] = ["fuzz/corpus", "fuzz/artifacts"];

/// Every `.md` file under `root`, sorted, outside hidden directories, `target` and
/// `SKIPPED_DIRS`.
pub fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let relative = path.strip_prefix(root).unwrap();
            if path.is_dir() {
                let skipped = SKIPPED_DIRS.iter().any(|s| relative == Path::new(s));
                if !name.starts_with('.') && name != "target" && !skipped {
                    pending.push(path);
                }
            } else if name.ends_with(".md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Whether a link target names a scheme (`https:`, `mailto:`, ...): not ours to check.
fn is_external(target: &str) -> bool {
    let Some((scheme, _)) = target.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
}

/// The anchors of markdown files, read once each.
#[derive(Default)]
pub struct Anchors(HashMap<PathBuf, HashSet<String>>);

impl Anchors {
    fn of(&mut self, file: &Path) -> &HashSet<String> {
        self.0.entry(file.to_path_buf()).or_insert_with(|| {
            let text = fs::read_to_string(file).unwrap_or_default();
            heading_anchors(&text).into_iter().collect()
        })
    }
}

/// Checks one link target of `file`: Ok, or why it is broken.
pub fn resolve(file: &Path, target: &str, anchors: &mut Anchors) -> Result<(), String> {
    if is_external(target) {
        return Ok(());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(percent_decoded(anchor))),
        None => (target, None),
    };
    let path = percent_decoded(path);
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else if let Some(from_root) = path.strip_prefix('/') {
        Path::new(ROOT).join(from_root)
    } else {
        file.parent().unwrap().join(&path)
    };
    if !resolved.exists() {
        return Err(format!("{path} does not exist"));
    }
    let Some(anchor) = anchor.filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    if resolved.extension().is_some_and(|e| e == "md") && !anchors.of(&resolved).contains(&anchor) {
        let name = if path.is_empty() {
            "this file"
        } else {
            path.as_str()
        };
        return Err(format!("{name} has no heading with anchor #{anchor}"));
    }
    Ok(())
}

/// `%XX` escapes decoded (a link to `a%20b.md` names `a b.md`).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        let hex = bytes
            .get(k + 1..k + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[k], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                k += 3;
            }
            (b, _) => {
                out.push(b);
                k += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
