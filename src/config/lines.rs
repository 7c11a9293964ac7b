//! The one reader of the line-list format every list variable uses
//! (`EGRESS_DESTINATION`, `EGRESS_HTTP_PROXY_DESTINATION`, `EGRESS_DNS_PROXY_DESTINATION`):
//! one entry a line, surrounding white space trimmed, blank lines and `#` comments skipped.

/// The entries of `text`, in order.
pub fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// The first line of `text` (counted from 1) that `parse` refuses on its own: where a
/// list's error lies, when a single line is at fault.
pub fn first_bad_line<E>(text: &str, parse: impl Fn(&str) -> Result<(), E>) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| entries(line).next().is_some())
        .find(|(_, line)| parse(line).is_err())
        .map(|(index, _)| index + 1)
}

/// The entries of `new` that `old` lacks, and those of `old` that `new` lacks.
pub fn diff<'a>(old: &'a str, new: &'a str) -> (Vec<&'a str>, Vec<&'a str>) {
    let (old_entries, new_entries): (Vec<_>, Vec<_>) =
        (entries(old).collect(), entries(new).collect());
    let added = new_entries
        .iter()
        .filter(|e| !old_entries.contains(e))
        .copied()
        .collect();
    let removed = old_entries
        .iter()
        .filter(|e| !new_entries.contains(e))
        .copied()
        .collect();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bad_line_and_the_difference_of_two_lists() {
        let text = "# rules\n*.example.com\n\n10.0.0.0/33\n";
        let bad = first_bad_line(text, |l| if l.contains("/33") { Err(()) } else { Ok(()) });
        assert_eq!(bad, Some(4));
        assert_eq!(first_bad_line(text, |_| Ok::<(), ()>(())), None);
        let (added, removed) = diff("a\nb\n# c\n", "  b\nd\n");
        assert_eq!((added, removed), (vec!["d"], vec!["a"]));
    }

    #[test]
    fn blank_lines_and_comments_are_skipped_and_entries_trimmed() {
        let text = "\n# a comment\n  80 tcp 203.0.113.5  \n\t\n   # indented comment\n*\r\n";
        assert_eq!(
            entries(text).collect::<Vec<_>>(),
            ["80 tcp 203.0.113.5", "*"]
        );
    }
}
