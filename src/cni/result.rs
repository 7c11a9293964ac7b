//! What the plugin prints on stdout: the ADD result in the requested version's
//! format, the VERSION answer, and the CNI error object with its codes.

use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;

use crate::cni::code;
use crate::cni::ip::IpConfig;
use crate::cni::version::CniVersion;
use crate::error::Error;

/// The result of a successful ADD (and what CHECK compares against).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuccessResult {
    /// The requested version, which decides the format.
    #[serde(rename = "cniVersion")]
    pub cni_version: CniVersion,
    /// The plugin's interface, inside the container.
    pub interfaces: Vec<Interface>,
    /// Its addresses, the source first.
    pub ips: Vec<IpEntry>,
    /// The default route via the gateway.
    pub routes: Vec<Route>,
    /// Always empty: the plugin configures no DNS.
    pub dns: Dns,
}

/// An interface of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Its name in the container (`CNI_IFNAME`).
    pub name: String,
    /// Its MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The container's network namespace (`CNI_NETNS`).
    pub sandbox: String,
}

impl Interface {
    /// The interface `name` with `mac`, in the namespace at `sandbox`.
    pub fn new(name: &str, mac: [u8; 6], sandbox: &Path) -> Self {
        let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
        Interface {
            name: name.to_owned(),
            mac: mac.join(":"),
            sandbox: sandbox.display().to_string(),
        }
    }
}

/// An address of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpEntry {
    /// `"4"` or `"6"` before CNI 1.0.0; absent from 1.0.0 on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    /// Index of the interface in `interfaces`.
    pub interface: usize,
    /// `address/len`.
    pub address: String,
    /// The gateway, on each family's source address's entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// A route of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Destination network.
    pub dst: String,
    /// Next hop.
    pub gw: IpAddr,
}

/// The (empty) DNS settings of a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dns {}

impl SuccessResult {
    /// The ADD result: `interface` holding every address of `ip`, and a default
    /// route a family via its gateway (`gateways`, in the order of the sources: the
    /// configured ones, or the ones the setup found).
    pub fn new(
        version: CniVersion,
        interface: Interface,
        ip: &IpConfig,
        gateways: &[IpAddr],
    ) -> Self {
        let ips = ip
            .addresses()
            .enumerate()
            .map(|(i, address)| IpEntry {
                version: version
                    .ips_carry_version()
                    .then_some(if address.address.is_ipv4() { "4" } else { "6" }),
                interface: 0,
                address: address.to_string(),
                gateway: gateways.get(i).copied(),
            })
            .collect();
        let routes = gateways
            .iter()
            .map(|gateway| Route {
                dst: if gateway.is_ipv4() {
                    "0.0.0.0/0"
                } else {
                    "::/0"
                }
                .into(),
                gw: *gateway,
            })
            .collect();
        SuccessResult {
            cni_version: version,
            interfaces: vec![interface],
            ips,
            routes,
            dns: Dns {},
        }
    }

    /// The result as JSON.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// The answer to VERSION.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionResult {
    /// The requested version when supported, else [`CniVersion::DEFAULT`].
    #[serde(rename = "cniVersion")]
    pub cni_version: CniVersion,
    /// [`CniVersion::SUPPORTED`].
    #[serde(rename = "supportedVersions")]
    pub supported_versions: [CniVersion; 5],
}

impl VersionResult {
    /// The answer to a VERSION request asking for `requested`. An unsupported
    /// version is no error here: the caller asks precisely to learn what we support.
    pub fn new(requested: Option<&str>) -> Self {
        VersionResult {
            cni_version: requested
                .and_then(CniVersion::parse)
                .unwrap_or(CniVersion::DEFAULT),
            supported_versions: CniVersion::SUPPORTED,
        }
    }

    /// The answer as JSON.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// The CNI error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorResult {
    /// The requested version as written (even unsupported), else [`CniVersion::DEFAULT`].
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// The error code (see [`code`]).
    pub code: u32,
    /// The one-line error.
    pub msg: String,
    /// What the code means.
    pub details: String,
}

impl ErrorResult {
    /// The error object for `error`, answering a request for `requested`.
    pub fn from_error(error: &Error, requested: Option<&str>) -> Self {
        let code = code::of(error);
        ErrorResult {
            cni_version: requested.unwrap_or(CniVersion::DEFAULT.as_str()).to_owned(),
            code,
            msg: error.to_string(),
            details: code::meaning(code).to_owned(),
        }
    }

    /// The error object as JSON.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("results are plain data with string keys")
}

#[cfg(test)]
mod tests;
