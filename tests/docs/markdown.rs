//! Links in a markdown text: inline links and images `[text](target)`, their text
//! perhaps across lines, outside fenced code blocks and code spans.

/// A link found in a markdown text: its target as written and the line of its `](`.
pub struct Link {
    pub line: usize,
    pub target: String,
}

/// The inline links (and images) of a markdown text, outside fenced code blocks and
/// code spans; the link text may span lines.
pub fn links(text: &str) -> Vec<Link> {
    let prose = without_code_spans(&without_fences(text));
    let bytes = prose.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = prose[at..].find("](").map(|i| at + i) {
        at = i + 2;
        if !has_opening_bracket(&bytes[..i]) {
            continue;
        }
        let Some(target) = link_target(&prose[i + 2..]) else {
            continue;
        };
        let line = 1 + prose[..i].matches('\n').count();
        found.push(Link { line, target });
    }
    found
}

/// Whether the text before a `]` holds its `[`, in the same paragraph.
fn has_opening_bracket(before: &[u8]) -> bool {
    let mut depth = 0;
    for (k, &b) in before.iter().enumerate().rev() {
        match b {
            b']' => depth += 1,
            b'[' if depth == 0 => return k == 0 || before[k - 1] != b'\\',
            b'[' => depth -= 1,
            b'\n' if k > 0 && before[k - 1] == b'\n' => return false,
            _ => {}
        }
    }
    false
}

/// The target of a link whose `(` came just before `rest`: up to the matching `)`,
/// without an optional title; `None` when there is no closing parenthesis on the line.
fn link_target(rest: &str) -> Option<String> {
    let rest = rest.trim_start_matches(' ');
    if let Some(inner) = rest.strip_prefix('<') {
        return inner.find('>').map(|end| inner[..end].to_string());
    }
    let mut depth = 0;
    for (k, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                let target = rest[..k].split_whitespace().next().unwrap_or("");
                return Some(target.to_string());
            }
            ')' => depth -= 1,
            '\n' => return None,
            _ => {}
        }
    }
    None
}

/// The text with every line of a fenced code block (fences included) emptied, so line
/// numbers stay as they were.
pub fn without_fences(text: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<(char, usize)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let run = |c: char| trimmed.chars().take_while(|&x| x == c).count();
        let opening = ['`', '~']
            .into_iter()
            .map(|c| (c, run(c)))
            .find(|(_, n)| *n >= 3);
        match (fence, opening) {
            (None, Some(open)) => fence = Some(open),
            (Some((c, n)), Some((d, m))) if c == d && m >= n && trimmed[m..].trim().is_empty() => {
                fence = None
            }
            (None, None) => out.push_str(line),
            _ => {}
        }
        out.push('\n');
    }
    out
}

/// The text with the content of every code span (`` `...` ``, ``` ``...`` ```) blanked
/// out; newlines are kept. A backtick run without a closing run of the same length in
/// its paragraph is literal text.
fn without_code_spans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut k = 0;
    while k < chars.len() {
        if chars[k] != '`' {
            out.push(chars[k]);
            k += 1;
            continue;
        }
        let run = chars[k..].iter().take_while(|&&c| c == '`').count();
        match closing_run(&chars, k + run, run) {
            Some(end) => {
                for &c in &chars[k..end + run] {
                    out.push(if c == '\n' { '\n' } else { ' ' });
                }
                k = end + run;
            }
            None => {
                out.extend(&chars[k..k + run]);
                k += run;
            }
        }
    }
    out
}

/// Where a run of exactly `len` backticks starts at or after `from`, before the
/// paragraph ends.
fn closing_run(chars: &[char], from: usize, len: usize) -> Option<usize> {
    let mut k = from;
    while k < chars.len() {
        if chars[k] == '\n' && chars.get(k + 1) == Some(&'\n') {
            return None;
        }
        if chars[k] == '`' {
            let run = chars[k..].iter().take_while(|&&c| c == '`').count();
            if run == len {
                return Some(k);
            }
            k += run;
        } else {
            k += 1;
        }
    }
    None
}
