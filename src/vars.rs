//! The key/value source configuration is read from.
//!
//! Production reads the process environment once; tests build a [`Vars`] from
//! literal pairs, so parsing never touches the real environment.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};

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

    /// Reads `key` as a duration: `500ms`, `2s`, `1m`, or a bare number of seconds.
    pub fn duration(&self, key: &'static str, default: Duration) -> Result<Duration> {
        let Some(text) = self.get(key).map(str::trim) else {
            return Ok(default);
        };
        let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
            Some(at) => text.split_at(at),
            None => (text, "s"),
        };
        let value: u64 = number.parse().map_err(|_| bad_duration(key, text))?;
        let duration = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            _ => return Err(bad_duration(key, text)),
        };
        if duration.is_zero() {
            return Err(Error::config(
                key,
                format!("{text:?} must be longer than zero"),
            ));
        }
        Ok(duration)
    }

    /// Reads `key` as a whole number from `min` to `max`.
    pub fn number<T>(&self, key: &'static str, default: T, min: T, max: T) -> Result<T>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(text) = self.get(key).map(str::trim) else {
            return Ok(default);
        };
        match text.parse::<T>() {
            Ok(value) if value >= min && value <= max => Ok(value),
            _ => Err(Error::config(
                key,
                format!("{text:?} is not a whole number from {min} to {max}"),
            )),
        }
    }

    /// Iterates over all pairs, as envy expects.
    pub fn iter(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone()))
    }
}

fn bad_duration(key: &'static str, text: &str) -> Error {
    Error::config(
        key,
        format!("{text:?} is not a duration such as 500ms, 10s or 2m"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(value: &str) -> Vars {
        Vars::from_pairs([("V", value)])
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        let d = |v: &str| vars(v).duration("V", Duration::ZERO).unwrap();
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("2s"), Duration::from_secs(2));
        assert_eq!(d("3m"), Duration::from_secs(180));
        assert_eq!(d(" 7 "), Duration::from_secs(7));
        assert_eq!(
            Vars::default()
                .duration("V", Duration::from_secs(9))
                .unwrap(),
            Duration::from_secs(9)
        );
        for bad in ["0", "0s", "1h", "1.5s", "-1", "s", "10 s"] {
            let err = vars(bad)
                .duration("V", Duration::ZERO)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("V: ") && err.contains(&format!("{bad:?}")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn numbers_are_range_checked() {
        assert_eq!(vars("12").number("V", 1u32, 1, 100).unwrap(), 12);
        assert_eq!(Vars::default().number("V", 5u32, 1, 100).unwrap(), 5);
        for bad in ["0", "101", "x", "-3"] {
            let err = vars(bad).number("V", 1u32, 1, 100).unwrap_err().to_string();
            assert!(
                err.contains("from 1 to 100") && err.contains(&format!("{bad:?}")),
                "{err}"
            );
        }
    }
}
