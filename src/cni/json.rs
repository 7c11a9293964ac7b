//! JSON input of the plugin: one parse that rejects a key appearing twice in any
//! object (the last one would silently win), and field readers whose errors name
//! the field by its path (`podIP["db-*"].gateway`) and quote the value.
//!
//! `null` and `""` mean "not given" everywhere, as in the Go plugin this replaces.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::cni::code;
use crate::error::{Error, Result};

/// Parses `bytes` as one JSON object, rejecting duplicate keys at any depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>> {
    let decode = |message: String| {
        Error::cni(
            code::DECODE_FAILURE,
            format!("network configuration: {message}"),
        )
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Unique(String::new())
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| decode(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(decode(format!("{} is not a JSON object", quote(&other)))),
    }
}

/// The path of `key` inside the object at `path`.
fn field_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

/// An error of the network configuration (code 7) at `field`.
pub fn invalid(field: &str, message: impl fmt::Display) -> Error {
    Error::cni(code::INVALID_NETWORK_CONFIG, format!("{field}: {message}"))
}

/// A value as it appears in an error: strings quoted, the rest as JSON text.
pub fn quote(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

/// A JSON object being read, with its path for errors.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Fields<'a> {
    /// Reads `map`, the object at `path` (empty for the top level).
    pub fn new(map: &'a Map<String, Value>, path: &'a str) -> Self {
        Fields { map, path }
    }

    /// The path of `key` in this object.
    pub fn path(&self, key: &str) -> String {
        field_path(self.path, key)
    }

    /// The value of `key`, unless it is absent, `null` or `""`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .get(key)
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
    }

    /// The string at `key`, if given.
    pub fn string(&self, key: &str) -> Result<Option<&'a str>> {
        self.get(key)
            .map(|value| {
                value.as_str().ok_or_else(|| {
                    invalid(&self.path(key), format!("{} is not a string", quote(value)))
                })
            })
            .transpose()
    }

    /// The string at `key`, which must be given.
    pub fn required_string(&self, key: &str) -> Result<&'a str> {
        self.string(key)?
            .ok_or_else(|| invalid(&self.path(key), "is required but not set"))
    }

    /// The object at `key`, if given.
    pub fn object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>> {
        self.get(key)
            .map(|value| {
                value.as_object().ok_or_else(|| {
                    invalid(
                        &self.path(key),
                        format!("{} is not an object", quote(value)),
                    )
                })
            })
            .transpose()
    }

    /// The array of strings at `key`, if given.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let path = self.path(key);
        let items = value.as_array().ok_or_else(|| {
            invalid(
                &path,
                format!("{} is not an array of strings", quote(value)),
            )
        })?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    invalid(
                        &format!("{path}[{i}]"),
                        format!("{} is not a string", quote(item)),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

/// Deserializes any JSON value, failing on a key that appears twice in an object;
/// holds the path of the value for that error.
struct Unique(String);

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) =
            seq.next_element_seed(Unique(format!("{}[{}]", self.0, items.len())))?
        {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = field_path(&self.0, &key);
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{path}: the key appears more than once"
                )));
            }
            let value = map.next_value_seed(Unique(path))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_and_message(err: Error) -> (u32, String) {
        match err {
            Error::Cni { code, message } => (code, message),
            other => panic!("not a CNI error: {other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_are_rejected_at_every_depth_with_their_path() {
        let parsed =
            parse_object(br#"{"a": {"b": [1, -2, 0.5, true, null, "x"]}, "c": {}}"#).unwrap();
        assert_eq!(parsed["a"]["b"][5], "x");
        for (text, path) in [
            (r#"{"ip": {}, "ip": {}}"#, "ip: the key"),
            (
                r#"{"ip": {"gateway": "a", "gateway": "b"}}"#,
                "ip.gateway: the key",
            ),
            (
                r#"{"podIP": {"db-*": {}, "db-*": {}}}"#,
                r#"podIP["db-*"]: the key"#,
            ),
            (r#"{"x": [{"k": 1, "k": 2}]}"#, "x[0].k: the key"),
        ] {
            let (code, message) = code_and_message(parse_object(text.as_bytes()).unwrap_err());
            assert_eq!(code, code::DECODE_FAILURE);
            assert!(message.starts_with("network configuration: "), "{message}");
            assert!(message.contains(path), "{text} -> {message}");
        }
    }

    #[test]
    fn anything_but_one_object_is_a_decode_failure() {
        for (text, needle) in [
            ("", "EOF"),
            ("[]", "[] is not a JSON object"),
            ("\"x\"", "\"x\" is not a JSON object"),
            ("{} {}", "trailing characters"),
            ("{\"a\": 1,}", "trailing comma"),
        ] {
            let (code, message) = code_and_message(parse_object(text.as_bytes()).unwrap_err());
            assert_eq!(code, code::DECODE_FAILURE, "{text}");
            assert!(message.contains(needle), "{text} -> {message}");
        }
    }

    #[test]
    fn readers_name_the_field_and_quote_the_value() {
        let map = parse_object(
            br#"{"s": "v", "e": "", "n": null, "i": 5, "o": {"k": 1}, "a": ["x", 7]}"#,
        )
        .unwrap();
        let fields = Fields::new(&map, r#"podIP["db-*"]"#);
        assert_eq!(fields.string("s").unwrap(), Some("v"));
        assert_eq!(fields.string("e").unwrap(), None);
        assert_eq!(fields.string("n").unwrap(), None);
        assert_eq!(fields.string("missing").unwrap(), None);
        assert!(fields.object("o").unwrap().is_some());
        assert_eq!(
            fields.strings("s").unwrap_err().to_string(),
            r#"podIP["db-*"].s: "v" is not an array of strings"#
        );
        for (err, want) in [
            (
                fields.string("i").unwrap_err(),
                r#"podIP["db-*"].i: 5 is not a string"#,
            ),
            (
                fields.required_string("e").unwrap_err(),
                r#"podIP["db-*"].e: is required but not set"#,
            ),
            (
                fields.object("a").unwrap_err(),
                r#"podIP["db-*"].a: ["x",7] is not an object"#,
            ),
            (
                fields.strings("a").unwrap_err(),
                r#"podIP["db-*"].a[1]: 7 is not a string"#,
            ),
        ] {
            assert_eq!(err.to_string(), want);
            assert_eq!(code_and_message(err).0, code::INVALID_NETWORK_CONFIG);
        }
        assert_eq!(field_path("", "log_file"), "log_file");
        assert_eq!(field_path("", "a b"), "[\"a b\"]");
    }
}
