//! The CNI spec versions this plugin speaks, and the version a request asks for.
//!
//! The requested version (`cniVersion` of the configuration on stdin) decides the
//! format of every answer, errors included.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::cni::code;
use crate::error::{Error, Result};

/// A CNI spec version this plugin supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    /// 0.3.0.
    V0_3_0,
    /// 0.3.1.
    V0_3_1,
    /// 0.4.0 (adds CHECK).
    V0_4_0,
    /// 1.0.0 (drops `version` from IP entries).
    V1_0_0,
    /// 1.1.0 (adds STATUS and GC).
    V1_1_0,
}

impl CniVersion {
    /// Every supported version, oldest first (the VERSION answer).
    pub const SUPPORTED: [CniVersion; 5] = [
        CniVersion::V0_3_0,
        CniVersion::V0_3_1,
        CniVersion::V0_4_0,
        CniVersion::V1_0_0,
        CniVersion::V1_1_0,
    ];

    /// The version of answers to requests that name none.
    pub const DEFAULT: CniVersion = CniVersion::V1_0_0;

    /// The version as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_3_0 => "0.3.0",
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V0_4_0 => "0.4.0",
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// The supported version written `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::SUPPORTED.into_iter().find(|v| v.as_str() == text)
    }

    /// The version a configuration requests; an unsupported one is a code 1 error
    /// naming `cniVersion`.
    pub fn requested(text: &str) -> Result<Self> {
        Self::parse(text).ok_or_else(|| {
            let supported: Vec<&str> = Self::SUPPORTED.iter().map(|v| v.as_str()).collect();
            Error::cni(
                code::INCOMPATIBLE_VERSION,
                format!(
                    "cniVersion: {text:?} is not supported; supported versions: {}",
                    supported.join(", ")
                ),
            )
        })
    }

    /// Whether IP entries of results carry `"version": "4"` (before 1.0.0).
    pub fn ips_carry_version(self) -> bool {
        self < CniVersion::V1_0_0
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CniVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The `cniVersion` string of `stdin`, when it is a JSON object that has one; for
/// answering in the requested version even when the rest of the input is invalid.
pub fn peek_version(stdin: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "cniVersion")]
        cni_version: Option<String>,
    }
    serde_json::from_slice::<Peek>(stdin).ok()?.cni_version
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_print_and_order() {
        for version in CniVersion::SUPPORTED {
            assert_eq!(CniVersion::parse(version.as_str()), Some(version));
            assert_eq!(version.to_string(), version.as_str());
        }
        assert!(CniVersion::V0_3_1.ips_carry_version());
        assert!(CniVersion::V0_4_0.ips_carry_version());
        assert!(!CniVersion::V1_0_0.ips_carry_version());
        assert!(!CniVersion::V1_1_0.ips_carry_version());
        assert_eq!(
            serde_json::to_string(&CniVersion::V0_4_0).unwrap(),
            "\"0.4.0\""
        );
    }

    #[test]
    fn an_unsupported_version_is_code_1_naming_the_field() {
        assert_eq!(CniVersion::requested("1.1.0").unwrap(), CniVersion::V1_1_0);
        for bad in ["0.2.0", "0.1.0", "1.2.0", "1.0", " 1.0.0", "v1.0.0"] {
            let err = CniVersion::requested(bad).unwrap_err();
            assert!(matches!(err, Error::Cni { code: 1, .. }), "{err:?}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("cniVersion: {bad:?} is not supported")),
                "{message}"
            );
            assert!(
                message.ends_with("0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"),
                "{message}"
            );
        }
    }

    #[test]
    fn the_requested_version_is_peeked_from_any_object() {
        assert_eq!(
            peek_version(br#"{"cniVersion": "0.2.0", "ip": 5}"#).as_deref(),
            Some("0.2.0")
        );
        assert_eq!(peek_version(br#"{"name": "x"}"#), None);
        assert_eq!(peek_version(b""), None);
        assert_eq!(peek_version(b"not json"), None);
        assert_eq!(peek_version(br#"{"cniVersion": 1}"#), None);
    }
}
