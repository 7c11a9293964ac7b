//! Links in the documentation, checked so they cannot rot (no root, no network):
//! every relative markdown link `[text](target)` in README.md, docs/*.md and every
//! other `.md` of the repository (outside `target/` and the fuzz corpus) must name a
//! file or directory that exists, relative to the linking file, and its `#anchor`
//! a heading of the target markdown file, as GitHub computes anchors. Links in fenced
//! code blocks and in code spans are not links and are skipped. A broken link is
//! reported with its file and line, every one of them at once.

mod anchors;
mod markdown;
mod resolve;

use anchors::heading_anchors;
use markdown::links;
use resolve::{Anchors, markdown_files, resolve};
use std::fs;
use std::path::{Path, PathBuf};

/// The repository's root.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn every_relative_link_in_the_markdown_files_resolves() {
    let root = Path::new(ROOT);
    let files = markdown_files(root);
    let readme = root.join("README.md");
    assert!(files.contains(&readme), "README.md not found: {files:?}");
    assert!(
        files.iter().any(|f| f.starts_with(root.join("docs"))),
        "no docs/*.md found: {files:?}"
    );
    let mut anchors = Anchors::default();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for link in links(&text) {
            checked += 1;
            if let Err(why) = resolve(file, &link.target, &mut anchors) {
                let name = file.strip_prefix(root).unwrap_or(file).display();
                broken.push(format!("{name}:{}: ({}): {why}", link.line, link.target));
            }
        }
    }
    assert!(checked > 0, "no links found in {files:?}");
    assert!(
        broken.is_empty(),
        "{} broken link(s) of {checked}:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn anchors_are_computed_as_github_does() {
    let cases = [
        ("Router configuration", "router-configuration"),
        (
            "Example: init container + redirect",
            "example-init-container--redirect",
        ),
        (
            "Benchmark: HTTP proxy vs squid",
            "benchmark-http-proxy-vs-squid",
        ),
        ("`EGRESS_SOURCE` and `--mode`", "egress_source-and---mode"),
        ("What the init step does?", "what-the-init-step-does"),
        (
            "The proxies' destinations (IPv6)",
            "the-proxies-destinations-ipv6",
        ),
        ("A [linked](other.md#x) *word*", "a-linked-word"),
        ("Ünïcode letters stay", "ünïcode-letters-stay"),
        ("Trailing hashes ##", "trailing-hashes"),
    ];
    for (heading, anchor) in cases {
        let text = format!("# {heading}\n");
        let found = heading_anchors(&text);
        assert_eq!(found, vec![anchor.to_string()], "heading {heading:?}");
    }
    let repeated = "# Logs\n\n## Logs\n\nLogs\n----\n\n```\n# Logs\n```\n### Logs-1\n";
    assert_eq!(
        heading_anchors(repeated),
        ["logs", "logs-1", "logs-2", "logs-1-1"],
        "duplicates get -1, -2; a heading in a code block is none"
    );
}

#[test]
fn links_are_found_outside_code_only_and_broken_ones_are_reported() {
    let dir = std::env::temp_dir().join(format!("egress-router-docs-{}", std::process::id()));
    fs::create_dir_all(dir.join("docs")).unwrap();
    let _cleanup = RemoveDir(dir.clone());
    let page = "# Page\n\n## Part two\n";
    fs::write(dir.join("docs/page.md"), page).unwrap();
    let readme = "# Top\n\
                  Good: [a](docs/page.md), [b](docs/page.md#part-two), [c](#top),\n\
                  [d\nacross lines](docs/), [e](https://example.com/x.md), ![f](docs/page.md \"t\").\n\
                  Bad: [g](docs/missing.md), [h](docs/page.md#part-three), [i](#nowhere).\n\
                  ```sh\n[j](not/checked.md)\n```\n\
                  `[k](not/checked.md)` and ``[l](`not/checked.md`)``\n";
    fs::write(dir.join("README.md"), readme).unwrap();

    let found: Vec<(usize, String)> = links(readme)
        .into_iter()
        .map(|l| (l.line, l.target))
        .collect();
    let want = [
        (2, "docs/page.md"),
        (2, "docs/page.md#part-two"),
        (2, "#top"),
        (4, "docs/"),
        (4, "https://example.com/x.md"),
        (4, "docs/page.md"),
        (5, "docs/missing.md"),
        (5, "docs/page.md#part-three"),
        (5, "#nowhere"),
    ];
    let want: Vec<(usize, String)> = want.iter().map(|(n, t)| (*n, t.to_string())).collect();
    assert_eq!(found, want);

    let mut anchors = Anchors::default();
    let file = dir.join("README.md");
    let verdicts: Vec<bool> = found
        .iter()
        .map(|(_, target)| resolve(&file, target, &mut anchors).is_ok())
        .collect();
    assert_eq!(
        verdicts,
        [true, true, true, true, true, true, false, false, false]
    );
    let missing = resolve(&file, "docs/missing.md", &mut anchors).unwrap_err();
    assert!(missing.contains("docs/missing.md"), "{missing}");
    let anchor = resolve(&file, "docs/page.md#part-three", &mut anchors).unwrap_err();
    assert!(anchor.contains("#part-three"), "{anchor}");
}

/// A directory removed on drop.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
