//! The [`Ec2`] calls through the official AWS SDK for Rust: credentials, region and
//! endpoint from the SDK's standard chain (environment, web identity token file as
//! IRSA provides it, profile files, IMDSv2 instance profile; `AWS_ENDPOINT_URL`),
//! HTTPS by rustls with ring, the SDK's own retries off ([`super::retry`] decides),
//! and every failure turned into an [`ApiError`] carrying the AWS error code and
//! message (the SDK's `Display` of a service error says only "service error").

use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::Filter;

use super::Ec2;
use super::model::{ApiError, ApiStep, EipLookup, ElasticIpState, Eni, EniLookup, FailureKind};

/// The longest the SDK waits for a connection to the endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// EC2 through the SDK.
pub struct SdkEc2 {
    client: Client,
}

impl SdkEc2 {
    /// The client of the SDK's default configuration chain. Loading it may ask the
    /// instance metadata service for the region (when `AWS_REGION` is not set).
    pub async fn load() -> Result<SdkEc2, ApiError> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            )
            .load()
            .await;
        if config.region().is_none() {
            return Err(ApiError {
                action: "configuration",
                kind: FailureKind::Unreachable,
                code: None,
                message: "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), a region in the AWS profile, or run on EC2 where the instance metadata service names it".into(),
            });
        }
        Ok(SdkEc2 {
            client: Client::new(&config),
        })
    }
}

/// An [`ApiError`] of `action` from an SDK error, with the AWS error code and message.
fn failure<E, R>(action: &'static str, error: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(service) => {
            let meta = service.err();
            ApiError {
                action,
                kind: FailureKind::Service,
                code: meta.code().map(str::to_owned),
                message: meta
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| DisplayErrorContext(&error).to_string()),
            }
        }
        SdkError::TimeoutError(_) => ApiError {
            action,
            kind: FailureKind::Timeout,
            code: None,
            message: DisplayErrorContext(&error).to_string(),
        },
        _ => ApiError {
            action,
            kind: FailureKind::Unreachable,
            code: error.code().map(str::to_owned),
            message: DisplayErrorContext(&error).to_string(),
        },
    }
}

fn filter(name: &str, value: String) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn to_eni(eni: &aws_sdk_ec2::types::NetworkInterface) -> Eni {
    let mut primary = None;
    let mut secondary = Vec::new();
    for address in eni.private_ip_addresses() {
        let Some(ip) = address
            .private_ip_address()
            .and_then(|a| a.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        match address.primary() {
            Some(true) => primary = Some(ip),
            _ => secondary.push(ip),
        }
    }
    Eni {
        id: eni.network_interface_id().unwrap_or_default().to_owned(),
        mac: eni.mac_address().unwrap_or_default().to_ascii_lowercase(),
        primary_ipv4: primary.or_else(|| eni.private_ip_address().and_then(|a| a.parse().ok())),
        secondary_ipv4: secondary,
        ipv6: eni
            .ipv6_addresses()
            .iter()
            .filter_map(|a| a.ipv6_address()?.parse().ok())
            .collect(),
    }
}

fn to_eip(address: &aws_sdk_ec2::types::Address) -> Option<ElasticIpState> {
    Some(ElasticIpState {
        allocation_id: address.allocation_id()?.to_owned(),
        public_ip: address.public_ip()?.parse().ok()?,
        association_id: address.association_id().map(str::to_owned),
        network_interface_id: address
            .network_interface_id()
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
        private_ip: address.private_ip_address().and_then(|a| a.parse().ok()),
    })
}

#[async_trait]
impl Ec2 for SdkEc2 {
    async fn interfaces(&self, lookup: &EniLookup) -> Result<Vec<Eni>, ApiError> {
        const ACTION: &str = "DescribeNetworkInterfaces";
        let request = self.client.describe_network_interfaces();
        let request = match lookup {
            EniLookup::Id(id) => request.network_interface_ids(id),
            EniLookup::Mac(mac) => request.filters(filter("mac-address", mac.clone())),
            EniLookup::PrivateIpv4(ip) => {
                request.filters(filter("addresses.private-ip-address", ip.to_string()))
            }
            EniLookup::Ipv6(ip) => {
                request.filters(filter("ipv6-addresses.ipv6-address", ip.to_string()))
            }
        };
        let output = request.send().await.map_err(|e| failure(ACTION, e))?;
        Ok(output.network_interfaces().iter().map(to_eni).collect())
    }

    async fn elastic_ips(&self, lookup: &EipLookup) -> Result<Vec<ElasticIpState>, ApiError> {
        const ACTION: &str = "DescribeAddresses";
        let request = self.client.describe_addresses();
        let request = match lookup {
            EipLookup::Allocation(id) => request.allocation_ids(id),
            EipLookup::PublicIp(ip) => request.public_ips(ip.to_string()),
        };
        let output = request.send().await.map_err(|e| failure(ACTION, e))?;
        Ok(output.addresses().iter().filter_map(to_eip).collect())
    }

    async fn apply(&self, step: &ApiStep) -> Result<(), ApiError> {
        let action = step.action();
        let ec2 = &self.client;
        match step {
            ApiStep::AssignV4 { eni, address, .. } => ec2
                .assign_private_ip_addresses()
                .network_interface_id(eni)
                .private_ip_addresses(address.to_string())
                .allow_reassignment(true)
                .send()
                .await
                .map(drop)
                .map_err(|e| failure(action, e)),
            ApiStep::UnassignV4 { eni, address } => ec2
                .unassign_private_ip_addresses()
                .network_interface_id(eni)
                .private_ip_addresses(address.to_string())
                .send()
                .await
                .map(drop)
                .map_err(|e| failure(action, e)),
            ApiStep::AssignV6 { eni, address } => ec2
                .assign_ipv6_addresses()
                .network_interface_id(eni)
                .ipv6_addresses(address.to_string())
                .send()
                .await
                .map(drop)
                .map_err(|e| failure(action, e)),
            ApiStep::UnassignV6 { eni, address } => ec2
                .unassign_ipv6_addresses()
                .network_interface_id(eni)
                .ipv6_addresses(address.to_string())
                .send()
                .await
                .map(drop)
                .map_err(|e| failure(action, e)),
            ApiStep::Associate {
                allocation,
                eni,
                private,
            } => ec2
                .associate_address()
                .allocation_id(allocation)
                .network_interface_id(eni)
                .private_ip_address(private.to_string())
                .allow_reassociation(true)
                .send()
                .await
                .map(drop)
                .map_err(|e| failure(action, e)),
            ApiStep::Disassociate { association, .. } => ec2
                .disassociate_address()
                .association_id(association)
                .send()
                .await
                .map(drop)
                .map_err(|e| failure(action, e)),
        }
    }
}
