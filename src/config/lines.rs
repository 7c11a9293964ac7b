//! The one reader of the line-list format every list variable uses
//! (`EGRESS_DESTINATION`, `EGRESS_HTTP_PROXY_DESTINATION`, `EGRESS_DNS_PROXY_DESTINATION`):
//! one entry a line, surrounding white space trimmed, blank lines and `#` comments skipped.

/// The entries of `text`, in order.
pub fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_and_comments_are_skipped_and_entries_trimmed() {
        let text = "\n# a comment\n  80 tcp 203.0.113.5  \n\t\n   # indented comment\n*\r\n";
        assert_eq!(
            entries(text).collect::<Vec<_>>(),
            ["80 tcp 203.0.113.5", "*"]
        );
    }
}
