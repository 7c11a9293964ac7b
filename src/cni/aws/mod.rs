//! `interfaceType: aws-elastic-ip` (SPEC section 11): the EC2 side of a routed
//! attachment. ADD makes EC2 deliver the source to this node (a secondary private
//! IPv4 address of the node's ENI on the master, taken from another ENI when a pod
//! moved; an IPv6 source as an IPv6 address of it) and associates the Elastic IP, if
//! one is configured, with it; DEL undoes only what is still on this node's ENI;
//! CHECK names what EC2 lacks.
//!
//! - [`model`]: the data; [`decide`]: which calls (pure); [`retry`]: limits and
//!   retries (pure decisions); [`flow`]: the phases over the [`Ec2`] boundary and
//!   [`lookup`] their lookups;
//!   [`sdk`]: [`Ec2`] through the AWS SDK for Rust.

pub mod decide;
pub mod flow;
pub mod lookup;
pub mod model;
pub mod retry;
pub mod sdk;

use async_trait::async_trait;

use model::{ApiError, ApiStep, EipLookup, ElasticIpState, Eni, EniLookup};

/// The EC2 calls the plugin makes; [`sdk::SdkEc2`] makes them through the SDK, the
/// unit tests through a fake.
#[async_trait]
pub trait Ec2: Send + Sync {
    /// DescribeNetworkInterfaces.
    async fn interfaces(&self, lookup: &EniLookup) -> Result<Vec<Eni>, ApiError>;
    /// DescribeAddresses.
    async fn elastic_ips(&self, lookup: &EipLookup) -> Result<Vec<ElasticIpState>, ApiError>;
    /// One change.
    async fn apply(&self, step: &ApiStep) -> Result<(), ApiError>;
}
