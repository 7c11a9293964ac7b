//! The anchors GitHub gives a markdown file's headings.

use super::markdown::without_fences;
use std::collections::HashSet;

/// The anchors GitHub gives the headings of a markdown text, in order: ATX (`# ...`)
/// and setext (a line underlined with `===` or `---`) headings outside fenced code.
pub fn heading_anchors(text: &str) -> Vec<String> {
    let lines: Vec<String> = without_fences(text).lines().map(str::to_string).collect();
    let mut seen = HashSet::new();
    let mut anchors = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let title = atx_heading(line).or_else(|| {
            let next = lines.get(k + 1)?;
            let underline = next.trim();
            let setext = !underline.is_empty()
                && (underline.chars().all(|c| c == '=') || underline.chars().all(|c| c == '-'))
                && next.len() - next.trim_start().len() < 4;
            (setext && !line.trim().is_empty() && atx_heading(line).is_none())
                .then(|| line.trim().to_string())
        });
        if let Some(title) = title {
            anchors.push(unique(slug(&title), &mut seen));
        }
    }
    anchors
}

/// The text of an ATX heading line (`## Title ##`), or `None`.
fn atx_heading(line: &str) -> Option<String> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = line.trim_start_matches(' ');
    let level = rest.chars().take_while(|&c| c == '#').count();
    if indent > 3 || !(1..=6).contains(&level) {
        return None;
    }
    let title = &rest[level..];
    if !title.is_empty() && !title.starts_with([' ', '\t']) {
        return None;
    }
    let title = title.trim();
    let closed = title.trim_end_matches('#');
    let title = if closed.is_empty() || closed.ends_with([' ', '\t']) {
        closed.trim_end()
    } else {
        title
    };
    Some(title.to_string())
}

/// `slug`, or `slug-1`, `slug-2`, ... when an earlier heading took it.
fn unique(slug: String, seen: &mut HashSet<String>) -> String {
    let mut candidate = slug.clone();
    let mut n = 0;
    while !seen.insert(candidate.clone()) {
        n += 1;
        candidate = format!("{slug}-{n}");
    }
    candidate
}

/// A heading's anchor as GitHub makes it: the rendered text (links become their text,
/// code spans and emphasis lose their markers), lower-case, every character but
/// letters, digits, `-`, `_` and spaces dropped, spaces turned into `-`.
fn slug(heading: &str) -> String {
    rendered(heading)
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// A heading's text without markdown: `[text](target)` becomes `text`, HTML tags go;
/// backticks and `*` are dropped by `slug` with the other punctuation.
fn rendered(heading: &str) -> String {
    let mut out = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find(['[', '<']) {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if rest[open..].starts_with('<') {
            match after.find('>') {
                Some(end) => rest = &after[end + 1..],
                None => {
                    out.push('<');
                    rest = after;
                }
            }
            continue;
        }
        match after
            .find("](")
            .and_then(|t| Some((t, after[t..].find(')')? + t)))
        {
            Some((text_end, target_end)) => {
                out.push_str(&after[..text_end]);
                rest = &after[target_end + 1..];
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
