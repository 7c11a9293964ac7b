//! What the plugin reads from and asks of EC2, as plain data: a network interface
//! (ENI), an Elastic IP, the lookups, the calls, and an API failure.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A network interface as DescribeNetworkInterfaces shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eni {
    /// `eni-...`.
    pub id: String,
    /// Its MAC address, lower case `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Its primary private IPv4 address (the node's own).
    pub primary_ipv4: Option<Ipv4Addr>,
    /// Its secondary private IPv4 addresses.
    pub secondary_ipv4: Vec<Ipv4Addr>,
    /// Its IPv6 addresses.
    pub ipv6: Vec<Ipv6Addr>,
}

/// An Elastic IP as DescribeAddresses shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElasticIpState {
    /// `eipalloc-...`.
    pub allocation_id: String,
    /// The public address.
    pub public_ip: Ipv4Addr,
    /// `eipassoc-...`, when associated.
    pub association_id: Option<String>,
    /// The ENI it is associated with.
    pub network_interface_id: Option<String>,
    /// The private address it is associated with.
    pub private_ip: Option<Ipv4Addr>,
}

impl ElasticIpState {
    /// Whether it is associated with `private` on `eni`.
    pub fn is_on(&self, eni: &str, private: Ipv4Addr) -> bool {
        self.network_interface_id.as_deref() == Some(eni) && self.private_ip == Some(private)
    }
}

/// How a DescribeNetworkInterfaces call looks an ENI up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EniLookup {
    /// By ID (`NetworkInterfaceIds`).
    Id(String),
    /// By MAC address (filter `mac-address`).
    Mac(String),
    /// By a private IPv4 address, primary or secondary (filter
    /// `addresses.private-ip-address`).
    PrivateIpv4(Ipv4Addr),
    /// By an IPv6 address (filter `ipv6-addresses.ipv6-address`).
    Ipv6(Ipv6Addr),
}

/// How a DescribeAddresses call looks an Elastic IP up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EipLookup {
    /// By allocation ID.
    Allocation(String),
    /// By public address.
    PublicIp(Ipv4Addr),
}

/// One change the plugin asks EC2 for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiStep {
    /// AssignPrivateIpAddresses with AllowReassignment; `from` is the ENI that held
    /// the address before (it moves from there), if any.
    AssignV4 {
        /// The ENI.
        eni: String,
        /// The address.
        address: Ipv4Addr,
        /// Its previous holder.
        from: Option<String>,
    },
    /// UnassignPrivateIpAddresses.
    UnassignV4 {
        /// The ENI.
        eni: String,
        /// The address.
        address: Ipv4Addr,
    },
    /// AssignIpv6Addresses.
    AssignV6 {
        /// The ENI.
        eni: String,
        /// The address.
        address: Ipv6Addr,
    },
    /// UnassignIpv6Addresses.
    UnassignV6 {
        /// The ENI.
        eni: String,
        /// The address.
        address: Ipv6Addr,
    },
    /// AssociateAddress with AllowReassociation.
    Associate {
        /// The Elastic IP.
        allocation: String,
        /// The ENI.
        eni: String,
        /// The private address.
        private: Ipv4Addr,
    },
    /// DisassociateAddress.
    Disassociate {
        /// `eipassoc-...`.
        association: String,
        /// The Elastic IP, for messages.
        allocation: String,
    },
}

impl ApiStep {
    /// The EC2 action.
    pub fn action(&self) -> &'static str {
        match self {
            ApiStep::AssignV4 { .. } => "AssignPrivateIpAddresses",
            ApiStep::UnassignV4 { .. } => "UnassignPrivateIpAddresses",
            ApiStep::AssignV6 { .. } => "AssignIpv6Addresses",
            ApiStep::UnassignV6 { .. } => "UnassignIpv6Addresses",
            ApiStep::Associate { .. } => "AssociateAddress",
            ApiStep::Disassociate { .. } => "DisassociateAddress",
        }
    }
}

impl fmt::Display for ApiStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = self.action();
        match self {
            ApiStep::AssignV4 {
                eni,
                address,
                from: Some(from),
            } => write!(f, "{action} {address} to {eni} (from {from})"),
            ApiStep::AssignV4 { eni, address, .. } => write!(f, "{action} {address} to {eni}"),
            ApiStep::UnassignV4 { eni, address } => write!(f, "{action} {address} from {eni}"),
            ApiStep::AssignV6 { eni, address } => write!(f, "{action} {address} to {eni}"),
            ApiStep::UnassignV6 { eni, address } => write!(f, "{action} {address} from {eni}"),
            ApiStep::Associate {
                allocation,
                eni,
                private,
            } => write!(f, "{action} {allocation} with {private} on {eni}"),
            ApiStep::Disassociate {
                association,
                allocation,
            } => write!(f, "{action} {association} ({allocation})"),
        }
    }
}

/// How a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// EC2 answered with an error (its code and message).
    Service,
    /// No answer within the attempt's time: whether the change was made is unknown.
    Timeout,
    /// The request did not reach EC2 (connection, credentials, endpoint).
    Unreachable,
}

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The EC2 action.
    pub action: &'static str,
    /// How it failed.
    pub kind: FailureKind,
    /// The AWS error code (`InvalidAllocationID.NotFound`, `RequestLimitExceeded`, ...).
    pub code: Option<String>,
    /// The message.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{}: {code}: {}", self.action, self.message),
            None => write!(f, "{}: {}", self.action, self.message),
        }
    }
}
