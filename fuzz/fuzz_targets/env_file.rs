//! The `--env-file` parser: never panics; what it accepts has valid, distinct names, and
//! a value written back as a double-quoted string with escapes parses to itself.
#![no_main]

use egress_router::config::env_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pairs) = env_file::parse(text) else {
        return;
    };
    let mut names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_str()).collect();
    for name in &names {
        assert!(!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()), "{name:?}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name:?}");
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), pairs.len(), "a name twice: {pairs:?}");
    for (name, value) in &pairs {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .replace('\t', "\\t");
        let again = env_file::parse(&format!("{name}=\"{escaped}\"\n"))
            .unwrap_or_else(|e| panic!("{name}={value:?} written back: {e:?}"));
        assert_eq!(again, [(name.clone(), value.clone())]);
    }
});
