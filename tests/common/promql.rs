//! The metric names a PromQL expression selects, found by a small tokenizer: what the
//! monitoring tests compare with the names the router exports. Strings, label matchers
//! (`{...}`), ranges (`[...]`), numbers and durations are skipped; an identifier
//! followed by `(` is a function or an aggregation, the parenthesised list after `by`,
//! `without`, `on`, `ignoring`, `group_left` and `group_right` holds label names, and
//! keywords are keywords. Every other identifier is a metric name.

use std::collections::BTreeSet;

/// Keywords of PromQL that are neither metric names nor followed by label lists.
const KEYWORDS: [&str; 8] = [
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Aggregations, which may come before their `by`/`without` clause and then `(`.
const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names `expr` selects, in order and once each. Panics on an unbalanced
/// string, brace or bracket, and on a `__name__` matcher (which this does not follow).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    assert!(
        !expr.contains("__name__"),
        "{expr}: __name__ matchers are not followed"
    );
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i, expr),
            '{' => i = skip_to(&chars, i, '}', expr),
            '[' => i = skip_to(&chars, i, ']', expr),
            '$' => i = identifier_end(&chars, i + 1),
            c if c.is_ascii_digit() || (c == '.' && next_is_digit(&chars, i)) => {
                i = word_end(&chars, i)
            }
            c if is_identifier_start(c) => {
                let end = identifier_end(&chars, i);
                let word: String = chars[i..end].iter().collect();
                let next = next_non_space(&chars, end);
                i = end;
                if LABEL_LISTS.contains(&word.as_str()) {
                    if next.is_some_and(|n| chars[n] == '(') {
                        i = skip_to(&chars, next.unwrap_or(end), ')', expr);
                    }
                } else if KEYWORDS.contains(&word.as_str())
                    || next.is_some_and(|n| chars[n] == '(')
                    || (AGGREGATIONS.contains(&word.as_str()) && next.is_some())
                {
                    // a function, an aggregation or a keyword
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn identifier_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len()
        && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
    {
        i += 1;
    }
    i
}

/// The end of a number or a duration (`0.99`, `1e3`, `5m`, `1h30m`).
fn word_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
        i += 1;
    }
    i
}

fn next_is_digit(chars: &[char], i: usize) -> bool {
    chars.get(i + 1).is_some_and(char::is_ascii_digit)
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<usize> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    (i < chars.len()).then_some(i)
}

/// Past the string that starts at `start` (escapes followed in `"` and `'` strings).
fn skip_string(chars: &[char], start: usize, expr: &str) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    panic!("{expr}: unterminated string")
}

/// Past the `close` that ends what opens at `start` (strings inside skipped).
fn skip_to(chars: &[char], start: usize, close: char, expr: &str) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i, expr),
            c if c == close => return i + 1,
            _ => i += 1,
        }
    }
    panic!("{expr}: no {close:?} closes what opens at {start}")
}
