//! The key/value source configuration is read from.
//!
//! Production reads the process environment once; tests build a [`Vars`] from
//! literal pairs, so parsing never touches the real environment.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::time::Duration;

use crate::error::{Error, Result};

/// Prefixes of the variables this program reads; a non-UTF-8 value of one of them is
/// an error, never "not set".
const OURS: [&str; 3] = ["EGRESS_", "CNI_", "RUST_LOG"];

/// A snapshot of configuration variables (normally the process environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    values: BTreeMap<String, String>,
    not_utf8: BTreeSet<String>,
}

impl Vars {
    /// Snapshots the process environment.
    pub fn from_process() -> Self {
        Vars::from_os_pairs(std::env::vars_os())
    }

    /// Builds a source from raw pairs; values that are not UTF-8 are remembered by
    /// name so that [`Vars::check_utf8`] can report them.
    pub fn from_os_pairs(pairs: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let mut vars = Vars::default();
        for (key, value) in pairs {
            let Ok(key) = key.into_string() else { continue };
            match value.into_string() {
                Ok(value) => {
                    vars.values.insert(key, value);
                }
                Err(_) => {
                    vars.not_utf8.insert(key);
                }
            }
        }
        vars
    }

    /// Builds a source from literal pairs (used by tests and the CNI plugin).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Vars {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            not_utf8: BTreeSet::new(),
        }
    }

    /// Fails, naming the variable, when one of this program's variables is not UTF-8.
    pub fn check_utf8(&self) -> Result<()> {
        match self
            .not_utf8
            .iter()
            .find(|key| OURS.iter().any(|prefix| key.starts_with(prefix)))
        {
            Some(key) => Err(Error::NotUtf8 { var: key.clone() }),
            None => Ok(()),
        }
    }

    /// The value of `key` when it is set and not blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The value of `key` as set, blank or not: `Some("")` is set and empty.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Whether `key` is set to a non-blank value.
    pub fn is_set(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Reads `key` as one of the names of `choices`, in any case (`default` when it is
    /// not set); another value is an error listing them.
    pub fn choice<T: Copy>(
        &self,
        key: &'static str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T> {
        let Some(text) = self.get(key).map(str::trim) else {
            return Ok(default);
        };
        choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
                Error::config(key, format!("{text:?} is not one of {}", names.join(", ")))
            })
    }

    /// Reads `key` as a duration from `range`: `500ms`, `2s`, `1m`, `1h`, or a bare
    /// number of seconds.
    pub fn duration(&self, key: &'static str, range: DurationRange) -> Result<Duration> {
        let Some(text) = self.get(key).map(str::trim) else {
            return Ok(range.default);
        };
        let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
            Some(at) => text.split_at(at),
            None => (text, "s"),
        };
        let scale = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => 0,
        };
        let millis = (scale > 0 && !number.is_empty())
            .then(|| number.parse::<u64>().ok()?.checked_mul(scale))
            .flatten()
            .ok_or_else(|| {
                Error::config(
                    key,
                    format!("{text:?} is not a duration such as 500ms, 10s, 2m or 1h"),
                )
            })?;
        let duration = Duration::from_millis(millis);
        if duration < range.min || duration > range.max {
            return Err(Error::config(
                key,
                format!(
                    "{text:?} is out of range: from {} to {}",
                    show(range.min),
                    show(range.max)
                ),
            ));
        }
        Ok(duration)
    }

    /// Reads `key` as a whole number from `min` to `max`, in plain decimal digits.
    pub fn number<T>(&self, key: &'static str, default: T, min: T, max: T) -> Result<T>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(text) = self.get(key).map(str::trim) else {
            return Ok(default);
        };
        let plain = text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0');
        match text.parse::<T>() {
            Ok(value) if plain && value >= min && value <= max => Ok(value),
            _ => Err(Error::config(
                key,
                format!("{text:?} is not a whole number from {min} to {max}"),
            )),
        }
    }

    /// The same source with `key` set to `value`, or removed when `value` is `None`.
    pub fn with(&self, key: &str, value: Option<&str>) -> Vars {
        let mut changed = self.clone();
        match value {
            Some(value) => changed.values.insert(key.to_string(), value.to_string()),
            None => changed.values.remove(key),
        };
        changed
    }

    /// Iterates over all pairs, as envy expects.
    pub fn iter(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.values.iter().map(|(k, v)| (k.clone(), v.clone()))
    }
}

/// The default and the accepted range of a duration variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    /// Used when the variable is unset.
    pub default: Duration,
    /// Shortest accepted value.
    pub min: Duration,
    /// Longest accepted value.
    pub max: Duration,
}

impl DurationRange {
    /// `default_s` seconds, accepted from `min_ms` milliseconds to `max_s` seconds.
    pub const fn seconds(default_s: u64, min_ms: u64, max_s: u64) -> Self {
        DurationRange {
            default: Duration::from_secs(default_s),
            min: Duration::from_millis(min_ms),
            max: Duration::from_secs(max_s),
        }
    }
}

/// A duration the way the variables are written (`500ms`, `10s`, `5m`, `1h`).
fn show(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(value: &str) -> Vars {
        Vars::from_pairs([("V", value)])
    }

    #[test]
    fn a_choice_is_one_of_its_names_in_any_case() {
        let choices = [("on", true), ("off", false)];
        assert!(Vars::default().choice("V", true, &choices).unwrap());
        assert!(!vars(" OFF ").choice("V", true, &choices).unwrap());
        assert_eq!(
            vars("maybe")
                .choice("V", true, &choices)
                .unwrap_err()
                .to_string(),
            "V: \"maybe\" is not one of on, off"
        );
    }

    const RANGE: DurationRange = DurationRange::seconds(9, 100, 7200);

    #[test]
    fn durations_accept_units_and_bare_seconds_within_the_range() {
        let d = |v: &str| vars(v).duration("V", RANGE).unwrap();
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("2s"), Duration::from_secs(2));
        assert_eq!(d("3m"), Duration::from_secs(180));
        assert_eq!(d("2h"), Duration::from_secs(7200));
        assert_eq!(d(" 7 "), Duration::from_secs(7));
        assert_eq!(Vars::default().duration("V", RANGE).unwrap(), RANGE.default);
        for bad in [
            "0",
            "0s",
            "99ms",
            "3h",
            "10000000000000000000",
            "18446744073709551616",
            "1.5s",
            "-1",
            "+5",
            "s",
            "10 s",
            "1d",
        ] {
            let err = vars(bad).duration("V", RANGE).unwrap_err().to_string();
            assert!(
                err.starts_with("V: ") && err.contains(&format!("{bad:?}")),
                "{bad}: {err}"
            );
        }
        let err = vars("3h").duration("V", RANGE).unwrap_err().to_string();
        assert!(err.contains("from 100ms to 2h"), "{err}");
    }

    #[test]
    fn non_utf8_values_of_our_variables_are_errors_naming_them() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![0x80, b'x']);
        let ours = Vars::from_os_pairs([
            (OsString::from("EGRESS_SOURCE"), bad.clone()),
            (OsString::from("PATH"), OsString::from("/bin")),
        ]);
        let err = ours.check_utf8().unwrap_err().to_string();
        assert!(err.starts_with("EGRESS_SOURCE: "), "{err}");
        assert!(ours.is_set("PATH") && !ours.is_set("EGRESS_SOURCE"));
        let foreign = Vars::from_os_pairs([(OsString::from("LANGUAGE"), bad)]);
        assert!(foreign.check_utf8().is_ok());
    }

    #[test]
    fn numbers_are_range_checked() {
        assert_eq!(vars("12").number("V", 1u32, 1, 100).unwrap(), 12);
        assert_eq!(Vars::default().number("V", 5u32, 1, 100).unwrap(), 5);
        for bad in ["0", "101", "x", "-3", "+12", "012"] {
            let err = vars(bad).number("V", 1u32, 1, 100).unwrap_err().to_string();
            assert!(
                err.contains("from 1 to 100") && err.contains(&format!("{bad:?}")),
                "{err}"
            );
        }
    }
}
