//! The key/value source configuration is read from.
//!
//! Production reads the process environment once; tests build a [`Vars`] from
//! literal pairs, so parsing never touches the real environment.

use std::collections::BTreeMap;

/// A snapshot of configuration variables (normally the process environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    /// Snapshots the process environment (non-UTF-8 entries are skipped).
    pub fn from_process() -> Self {
        Vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }

    /// Builds a source from literal pairs (used by tests and the CNI plugin).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Vars(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value of `key` when it is set and not blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Whether `key` is set to a non-blank value.
    pub fn is_set(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Iterates over all pairs, as envy expects.
    pub fn iter(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone()))
    }
}
