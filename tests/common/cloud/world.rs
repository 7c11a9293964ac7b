//! The EC2 world of a test, made through the API: the VPC (192.0.2.0/24), its subnet,
//! each node's ENI (tagged with its cloud link, its MAC given to the node's `eth0`) and
//! an Elastic IP.

use super::api::Api;
use super::topology::{Cloud, NODE_A, NODE_B};
use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification};

/// The EC2 world of a test: the ENIs of both nodes and an Elastic IP.
#[derive(Debug, Clone)]
pub struct World {
    /// Node A's ENI.
    pub eni_a: String,
    /// Node B's ENI.
    pub eni_b: String,
    /// The Elastic IP's allocation ID.
    pub allocation: String,
    /// Its address.
    pub public_ip: String,
}

impl Api {
    /// The VPC (192.0.2.0/24), its subnet (192.0.2.0/25), each node's ENI (tagged with
    /// its cloud link, its primary addresses; its MAC given to the node's `eth0`) and
    /// the Elastic IP 198.51.100.10.
    pub fn world(&self, cloud: &Cloud) -> World {
        let (a, b, macs, allocation, public_ip) = self.call(|ec2| async move {
            let vpc = ec2
                .create_vpc()
                .cidr_block("192.0.2.0/24")
                .send()
                .await
                .unwrap();
            let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
            let subnet = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block("192.0.2.0/25")
                .send()
                .await
                .unwrap();
            let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
            let mut ids = Vec::new();
            let mut macs = Vec::new();
            for node in [NODE_A, NODE_B] {
                let tag = TagSpecification::builder()
                    .resource_type(ResourceType::NetworkInterface)
                    .tags(Tag::builder().key("cloud-link").value(node.link).build())
                    .build();
                let eni = ec2
                    .create_network_interface()
                    .subnet_id(&subnet)
                    .private_ip_address(node.ip)
                    .ipv6_addresses(
                        aws_sdk_ec2::types::InstanceIpv6Address::builder()
                            .ipv6_address(node.ip6)
                            .build(),
                    )
                    .tag_specifications(tag)
                    .send()
                    .await
                    .unwrap();
                let eni = eni.network_interface().unwrap();
                ids.push(eni.network_interface_id().unwrap().to_string());
                macs.push(eni.mac_address().unwrap().to_string());
            }
            let eip = ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .address("198.51.100.10")
                .send()
                .await
                .unwrap();
            (
                ids[0].clone(),
                ids[1].clone(),
                macs,
                eip.allocation_id().unwrap().to_string(),
                eip.public_ip().unwrap().to_string(),
            )
        });
        cloud.set_mac(NODE_A, &macs[0]);
        cloud.set_mac(NODE_B, &macs[1]);
        World {
            eni_a: a,
            eni_b: b,
            allocation,
            public_ip,
        }
    }
}
