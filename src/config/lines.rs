//! The one reader of the line-list format every list variable uses
//! (`EGRESS_DESTINATION`, `EGRESS_HTTP_PROXY_DESTINATION`, `EGRESS_DNS_PROXY_DESTINATION`):
//! one entry a line, surrounding white space trimmed, blank lines and `#` comments skipped.

use std::collections::HashSet;
use std::hash::Hash;

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
    let (added, removed) = difference(&old_entries, &new_entries);
    (
        added.into_iter().copied().collect(),
        removed.into_iter().copied().collect(),
    )
}

/// The items of `new` that `old` lacks, and those of `old` that `new` lacks, each in
/// its list's order: one pass over each list with a hash set of the other (linear; a
/// list of 30,000 lines compared line by line with another would take seconds).
fn difference<'a, T: Eq + Hash>(old: &'a [T], new: &'a [T]) -> (Vec<&'a T>, Vec<&'a T>) {
    let (old_set, new_set): (HashSet<&T>, HashSet<&T>) =
        (old.iter().collect(), new.iter().collect());
    let added = new.iter().filter(|e| !old_set.contains(e)).collect();
    let removed = old.iter().filter(|e| !new_set.contains(e)).collect();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn the_bad_line_and_the_difference_of_two_lists() {
        let text = "# rules\n*.example.com\n\n10.0.0.0/33\n";
        let bad = first_bad_line(text, |l| if l.contains("/33") { Err(()) } else { Ok(()) });
        assert_eq!(bad, Some(4));
        assert_eq!(first_bad_line(text, |_| Ok::<(), ()>(())), None);
        let (added, removed) = diff("a\nb\n# c\n", "  b\nd\n");
        assert_eq!((added, removed), (vec!["d"], vec!["a"]));
    }

    /// An entry that counts how often it is compared with another.
    struct Counted<'a>(u32, &'a Cell<usize>);

    impl Hash for Counted<'_> {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }

    impl PartialEq for Counted<'_> {
        fn eq(&self, other: &Self) -> bool {
            self.1.set(self.1.get() + 1);
            self.0 == other.0
        }
    }

    impl Eq for Counted<'_> {}

    #[test]
    fn two_lists_of_30k_entries_are_compared_in_linear_time() {
        let comparisons = Cell::new(0);
        let list = |range: std::ops::Range<u32>| -> Vec<Counted<'_>> {
            range.map(|n| Counted(n, &comparisons)).collect()
        };
        let (old, new) = (list(0..30_000), list(10_000..40_000));
        let (added, removed) = difference(&old, &new);
        let numbers = |items: Vec<&Counted>| items.iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(numbers(added), (30_000..40_000).collect::<Vec<_>>());
        assert_eq!(numbers(removed), (0..10_000).collect::<Vec<_>>());
        // Each lookup compares with the few entries of its hash bucket: a comparison
        // of every entry with every other would be 900 million.
        assert!(
            comparisons.get() <= 2 * (old.len() + new.len()),
            "{} comparisons for two lists of 30,000 entries",
            comparisons.get()
        );
    }

    #[test]
    fn the_difference_of_two_large_lists_of_lines() {
        let old: String = (0..30_000)
            .map(|i| format!("host-{i}.example.com\n"))
            .collect();
        let new = format!("# renamed\n{}", old.replace("example.com", "example.net"));
        let (added, removed) = diff(&old, &new);
        assert_eq!((added.len(), removed.len()), (30_000, 30_000));
        assert_eq!(
            (added[0], removed[29_999]),
            ("host-0.example.net", "host-29999.example.com")
        );
        assert_eq!(diff(&old, &old), (vec![], vec![]));
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
