//! The `--env-file` format of `egress-router validate`: the variables of a container,
//! one `NAME=VALUE` a line, as dotenv files write them.
//!
//! - blank lines and lines starting with `#` are skipped; `export NAME=VALUE` is
//!   `NAME=VALUE`;
//! - an unquoted value is the rest of the line, trimmed;
//! - `"..."` may span lines and understands JSON's escapes (`\n`, `\t`, `\r`, `\b`,
//!   `\f`, `\/`, `\"`, `\\`, `\uXXXX` in the Basic Multilingual Plane), so a JSON
//!   string, as `jq` prints one, is a valid value; `'...'` may span lines and is taken
//!   as written;
//! - a name is letters, digits and `_`, not starting with a digit; a name given twice,
//!   an unterminated quote or anything after a closing quote is an error naming the line.

use std::collections::BTreeSet;

/// A problem in an env file, at a line (counted from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    /// The line the problem is on (where its value starts, for an unterminated quote).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The variables of `text`, in order.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut pairs = Vec::new();
    let mut seen = BTreeSet::new();
    let mut index = 0;
    while index < lines.len() {
        let number = index + 1;
        let line = lines[index].trim();
        index += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: String| EnvFileError {
            line: number,
            message,
        };
        let assignment = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, rest)) = assignment.split_once('=') else {
            return Err(fail(format!("{line:?} is not NAME=VALUE")));
        };
        let name = name.trim();
        if !is_name(name) {
            return Err(fail(format!("{name:?} is not a variable name")));
        }
        if !seen.insert(name.to_string()) {
            return Err(fail(format!("{name} is set twice")));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let (value, used) = quoted(quote, &rest[1..], &lines[index..])
                    .map_err(|message| fail(format!("{name}: {message}")))?;
                index += used;
                value
            }
            _ => rest.trim_end().to_string(),
        };
        pairs.push((name.to_string(), value));
    }
    Ok(pairs)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The value of a quoted string that starts with `first` (after the opening quote) and
/// may continue on `more` lines; also how many of those it used.
fn quoted(quote: char, first: &str, more: &[&str]) -> Result<(String, usize), String> {
    let mut value = String::new();
    let mut used = 0;
    let mut text = first;
    loop {
        let mut chars = text.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                c if c == quote => {
                    let after = text[at + 1..].trim();
                    if !after.is_empty() && !after.starts_with('#') {
                        return Err(format!("{after:?} after the closing quote"));
                    }
                    return Ok((value, used));
                }
                '\\' if quote == '"' => match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some('b') => value.push('\u{8}'),
                    Some('f') => value.push('\u{c}'),
                    Some(e @ ('"' | '\\' | '/')) => value.push(e),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                        let unicode = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4);
                        match unicode.and_then(char::from_u32) {
                            Some(c) => value.push(c),
                            None => return Err(format!("\\u{hex} is not a character")),
                        }
                    }
                    Some(e) => return Err(format!("unknown escape \\{e}")),
                    None => return Err("a \\ at the end of a line".into()),
                },
                c => value.push(c),
            }
        }
        let Some(next) = more.get(used) else {
            return Err(format!("no closing {quote}"));
        };
        value.push('\n');
        text = next;
        used += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"))
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.into(), value.into())
    }

    #[test]
    fn plain_lines_comments_and_export() {
        let text = "# a pod\n\nEGRESS_SOURCE=198.51.100.99/24\nexport EGRESS_GATEWAY = 198.51.100.1 \nEMPTY=\n";
        assert_eq!(
            ok(text),
            [
                pair("EGRESS_SOURCE", "198.51.100.99/24"),
                pair("EGRESS_GATEWAY", "198.51.100.1"),
                pair("EMPTY", ""),
            ]
        );
    }

    #[test]
    fn quoted_values_span_lines_and_unescape() {
        let text = "A=\"80 tcp 203.0.113.5\\n8080 tcp 203.0.113.6 80\\n\\\"q\\\" \\\\\"\nB='line one\n  # kept\nline three'\nC=\"multi\nline\" # comment\nD=\"\\r\\/\\u00e9\\u001b\"\n";
        assert_eq!(
            ok(text),
            [
                pair("A", "80 tcp 203.0.113.5\n8080 tcp 203.0.113.6 80\n\"q\" \\"),
                pair("B", "line one\n  # kept\nline three"),
                pair("C", "multi\nline"),
                pair("D", "\r/\u{e9}\u{1b}"),
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line, needle) in [
            ("A=1\nnot an assignment\n", 2, "not NAME=VALUE"),
            ("1A=1\n", 1, "not a variable name"),
            ("A=1\n\nA=2\n", 3, "set twice"),
            ("A=1\nB=\"open\nstill open\n", 2, "no closing \""),
            ("A='x' y\n", 1, "after the closing quote"),
            ("A=\"\\q\"\n", 1, "unknown escape"),
            ("A=\"\\ud800\"\n", 1, "not a character"),
            ("A=\"\\u12\"\n", 1, "not a character"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message.contains(needle), "{text:?}: {e:?}");
        }
    }
}
