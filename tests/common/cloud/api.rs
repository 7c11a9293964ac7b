//! The cloud's EC2 API: `tests/cloud/ec2.py` started in the cloud namespace on
//! 203.0.113.100:5000 from the virtual environment `target/moto-venv` (moto[server]
//! 5.2.5, made by tests/run.sh), its fault file, and a client the test makes its own
//! calls with (what EC2 shows, an operator's changes; the VPC itself: `world`).

use super::topology::Cloud;
use crate::common::{ChildGuard, PATH};
use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::Filter;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The API's endpoint, as `AWS_ENDPOINT_URL` names it.
pub const API_URL: &str = "http://203.0.113.100:5000";
/// The Python of the virtual environment that holds moto.
pub const MOTO_PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/moto-venv/bin/python");
/// The API's program.
pub const EC2_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cloud/ec2.py");
/// The region of the test's EC2.
pub const REGION: &str = "us-east-1";

/// The API's process (stopped on drop) and the fault file it reads.
pub struct Api {
    _process: ChildGuard,
    ns: String,
    faults: PathBuf,
}

impl Api {
    /// Starts the API in `cloud`'s namespace; fails loudly without the virtual
    /// environment.
    pub fn start(cloud: &Cloud) -> Api {
        assert!(
            std::path::Path::new(MOTO_PYTHON).exists(),
            "{MOTO_PYTHON} is missing: tests/run.sh makes it (python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]==5.2.5')"
        );
        let faults = std::env::temp_dir().join(format!("{}-faults.json", cloud.prefix));
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &cloud.ns("cloud"), MOTO_PYTHON, EC2_PY])
            .args([
                "--host",
                "203.0.113.100",
                "--port",
                "5000",
                "--internet",
                "inet0",
            ])
            .arg("--faults")
            .arg(&faults)
            .env_clear()
            .env("PATH", PATH);
        let process = ChildGuard::spawn(command);
        let api = Api {
            _process: process,
            ns: cloud.ns("cloud"),
            faults,
        };
        let ns = api.ns.clone();
        let started = Instant::now();
        let up = cloud.with_ns("cloud", move || {
            while started.elapsed() < Duration::from_secs(30) {
                if TcpStream::connect_timeout(
                    &"203.0.113.100:5000".parse().unwrap(),
                    Duration::from_millis(200),
                )
                .is_ok()
                {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        });
        assert!(
            up,
            "the EC2 API did not listen in {ns} within 30 s:\n{}",
            api._process.stderr()
        );
        api
    }

    /// Makes the API answer `action` as `fault` says (see tests/cloud/ec2.py), e.g.
    /// `{"code": "RequestLimitExceeded", "status": 503, "times": 2}` or `{"hang": true}`.
    pub fn fault(&self, action: &str, fault: serde_json::Value) {
        let mut all: serde_json::Value = std::fs::read_to_string(&self.faults)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        all[action] = fault;
        std::fs::write(&self.faults, all.to_string()).unwrap();
    }

    /// Answers every call normally again.
    pub fn clear_faults(&self) {
        let _ = std::fs::remove_file(&self.faults);
    }

    /// The API's stderr so far.
    pub fn log(&self) -> String {
        self._process.stderr()
    }

    /// Runs `f` with a client of the API, on a thread inside the cloud namespace.
    pub fn call<T, F, Fut>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
    {
        let ns = self.ns.clone();
        std::thread::spawn(move || {
            crate::common::enter_netns(&ns);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let config = aws_sdk_ec2::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(API_URL)
                .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
                .http_client(aws_smithy_http_client::Builder::new().build_http())
                .build();
            runtime.block_on(f(Client::from_conf(config)))
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// The secondary IPv4 and the IPv6 addresses of `eni`, as EC2 shows them.
    pub fn addresses_of(&self, eni: &str) -> (Vec<String>, Vec<String>) {
        let eni = eni.to_string();
        self.call(|ec2| async move {
            let out = ec2
                .describe_network_interfaces()
                .network_interface_ids(eni)
                .send()
                .await
                .unwrap();
            let eni = &out.network_interfaces()[0];
            (
                eni.private_ip_addresses()
                    .iter()
                    .filter(|a| a.primary() != Some(true))
                    .filter_map(|a| a.private_ip_address().map(str::to_string))
                    .collect(),
                eni.ipv6_addresses()
                    .iter()
                    .filter_map(|a| a.ipv6_address().map(str::to_string))
                    .collect(),
            )
        })
    }

    /// Where the Elastic IP `allocation` is associated: (ENI, private address).
    pub fn association(&self, allocation: &str) -> Option<(String, String)> {
        let allocation = allocation.to_string();
        self.call(|ec2| async move {
            let out = ec2
                .describe_addresses()
                .allocation_ids(allocation)
                .send()
                .await
                .unwrap();
            let address = &out.addresses()[0];
            Some((
                address
                    .network_interface_id()
                    .filter(|i| !i.is_empty())?
                    .to_string(),
                address.private_ip_address()?.to_string(),
            ))
        })
    }

    /// The ENIs holding private address `ip` (EC2's filter, every private address).
    pub fn holders(&self, ip: &str) -> Vec<String> {
        let ip = ip.to_string();
        self.call(|ec2| async move {
            let out = ec2
                .describe_network_interfaces()
                .filters(
                    Filter::builder()
                        .name("addresses.private-ip-address")
                        .values(ip)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            out.network_interfaces()
                .iter()
                .filter_map(|e| e.network_interface_id().map(str::to_string))
                .collect()
        })
    }

    /// Assigns `ip` to `eni` as an operator would (the `routed` tests).
    pub fn assign(&self, eni: &str, ip: &str) {
        let (eni, ip) = (eni.to_string(), ip.to_string());
        self.call(|ec2| async move {
            ec2.assign_private_ip_addresses()
                .network_interface_id(eni)
                .private_ip_addresses(ip)
                .allow_reassignment(true)
                .send()
                .await
                .unwrap();
        })
    }

    /// Assigns the IPv6 address `ip` to `eni` as an operator would.
    pub fn assign6(&self, eni: &str, ip: &str) {
        let (eni, ip) = (eni.to_string(), ip.to_string());
        self.call(|ec2| async move {
            ec2.assign_ipv6_addresses()
                .network_interface_id(eni)
                .ipv6_addresses(ip)
                .send()
                .await
                .unwrap();
        })
    }

    /// Disassociates the Elastic IP `allocation` (a CHECK test).
    pub fn disassociate(&self, allocation: &str) {
        let allocation = allocation.to_string();
        self.call(|ec2| async move {
            let out = ec2
                .describe_addresses()
                .allocation_ids(allocation)
                .send()
                .await
                .unwrap();
            let association = out.addresses()[0].association_id().unwrap().to_string();
            ec2.disassociate_address()
                .association_id(association)
                .send()
                .await
                .unwrap();
        })
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.faults);
    }
}
