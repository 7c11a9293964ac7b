//! The plugin on the cloud's nodes: configurations of the routed kinds, attachments of
//! a node's pod with the AWS SDK's variables pointing at the cloud's API, and a
//! connection from a pod to the server.

use super::api::{API_URL, REGION};
use super::topology::{CLOUD_SERVER, Cloud, Node};
use crate::common::cni::{Attachment, container_id};
use crate::common::envs;
use serde_json::{Value, json};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The source of the cloud suites' pods (an address of the VPC's subnet).
pub const CLOUD_SOURCE: &str = "192.0.2.50";
/// The IPv6 source.
pub const CLOUD_SOURCE6: &str = "2001:db8:10::50";

/// A configuration of `kind` for source `CLOUD_SOURCE/25` via the VPC's gateway
/// (inferred), with `args` as `interfaceArgs`.
pub fn cloud_config(kind: &str, args: Value) -> String {
    json!({
        "cniVersion": "1.0.0",
        "name": "egress",
        "type": "egress-router",
        "interfaceType": kind,
        "interfaceArgs": args,
        "ip": {"addresses": [format!("{CLOUD_SOURCE}/25")]},
    })
    .to_string()
}

/// The AWS SDK's variables for the cloud's API: endpoint, dummy credentials, region,
/// and nothing read from this machine (no profile files, no instance metadata).
pub fn aws_env() -> Vec<(String, String)> {
    envs(&[
        ("AWS_ENDPOINT_URL", API_URL),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        ),
    ])
}

/// Container `n`'s attachment of `node`'s pod with `config`, the AWS variables set.
pub fn cloud_pod(cloud: &Cloud, node: Node, n: u32, config: &str) -> Attachment {
    Attachment {
        node: cloud.ns(node.role),
        netns: cloud.netns(node.pod),
        container: container_id(n),
        pod: format!("egress-router-{}", node.pod),
        config: config.to_string(),
        env: aws_env(),
    }
}

/// A TCP connection from `node`'s pod to the server's port 80: the server's line
/// (`PEER LOCAL:PORT`), or why there is none.
pub fn from_pod(cloud: &Cloud, node: Node, server: &str) -> Result<String, String> {
    let to: SocketAddr = match server.contains(':') {
        true => format!("[{server}]:80").parse().unwrap(),
        false => format!("{server}:80").parse().unwrap(),
    };
    cloud.with_ns(node.pod, move || {
        let limit = Duration::from_secs(3);
        let mut s =
            TcpStream::connect_timeout(&to, limit).map_err(|e| format!("connect {to}: {e}"))?;
        s.set_read_timeout(Some(limit)).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text)
            .map_err(|e| format!("read from {to}: {e}"))?;
        Ok(text.trim().to_string())
    })
}

/// A further pod namespace (`lo` alone: a container on the plugin's network only),
/// removed on drop.
pub struct PodNs {
    /// Its name.
    pub name: String,
}

impl PodNs {
    /// The namespace `PREFIX-suffix`.
    pub fn new(cloud: &Cloud, suffix: &str) -> PodNs {
        let pod = PodNs {
            name: format!("{}-{suffix}", cloud.prefix),
        };
        crate::common::cni::cmd(&["ip", "netns", "add", &pod.name]);
        crate::common::cni::cmd(&["ip", "-n", &pod.name, "link", "set", "lo", "up"]);
        pod
    }

    /// Its path, as `CNI_NETNS` names it.
    pub fn netns(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// The address the server saw for a connection from it.
    pub fn seen(&self) -> Result<String, String> {
        let name = self.name.clone();
        std::thread::spawn(move || {
            crate::common::enter_netns(&name);
            connect(CLOUD_SERVER)
        })
        .join()
        .unwrap()
        .map(|line| line.split_whitespace().next().unwrap_or("").to_string())
    }
}

impl Drop for PodNs {
    fn drop(&mut self) {
        crate::common::cni::remove_netns(&self.name);
    }
}

/// A TCP connection to `server`'s port 80 from this thread's namespace.
fn connect(server: &str) -> Result<String, String> {
    let to: SocketAddr = match server.contains(':') {
        true => format!("[{server}]:80").parse().unwrap(),
        false => format!("{server}:80").parse().unwrap(),
    };
    let limit = Duration::from_secs(3);
    let mut s = TcpStream::connect_timeout(&to, limit).map_err(|e| format!("connect {to}: {e}"))?;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("read from {to}: {e}"))?;
    Ok(text.trim().to_string())
}

/// The address the server saw for a connection from `node`'s pod.
pub fn seen_from(cloud: &Cloud, node: Node) -> Result<String, String> {
    from_pod(cloud, node, CLOUD_SERVER)
        .map(|line| line.split_whitespace().next().unwrap_or("").to_string())
}
