//! The phases against a fake EC2 that keeps the state of ENIs and Elastic IPs as EC2
//! does (assignment moves an address and its Elastic IP) and fails calls on demand.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::cni::aws::model::{EipLookup, ElasticIpState, Eni};
use crate::cni::config::ElasticIp;

#[derive(Default)]
struct State {
    enis: Vec<Eni>,
    eip: Option<ElasticIpState>,
    fail: HashMap<&'static str, ApiError>,
    hang: Vec<&'static str>,
    calls: Vec<String>,
}

#[derive(Default)]
struct FakeEc2(Mutex<State>);

impl FakeEc2 {
    fn with_nodes() -> FakeEc2 {
        let node = |id: &str, mac: &str, ip: &str| Eni {
            id: id.into(),
            mac: mac.into(),
            primary_ipv4: Some(ip.parse().unwrap()),
            ..Eni::default()
        };
        let fake = FakeEc2::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.enis = vec![
                node("eni-a", "02:00:00:00:00:0a", "192.0.2.10"),
                node("eni-b", "02:00:00:00:00:0b", "192.0.2.20"),
            ];
            s.eip = Some(ElasticIpState {
                allocation_id: "eipalloc-12345678".into(),
                public_ip: "198.51.100.10".parse().unwrap(),
                association_id: None,
                network_interface_id: None,
                private_ip: None,
            });
        }
        fake
    }

    fn fail(&self, action: &'static str, code: &str) {
        self.0.lock().unwrap().fail.insert(
            action,
            ApiError {
                action,
                kind: FailureKind::Service,
                code: Some(code.into()),
                message: "injected".into(),
            },
        );
    }

    fn holders(&self, ip: &str) -> Vec<String> {
        let ip: Ipv4Addr = ip.parse().unwrap();
        let s = self.0.lock().unwrap();
        s.enis
            .iter()
            .filter(|e| e.secondary_ipv4.contains(&ip))
            .map(|e| e.id.clone())
            .collect()
    }

    fn association(&self) -> Option<(String, Ipv4Addr)> {
        let s = self.0.lock().unwrap();
        let eip = s.eip.as_ref()?;
        Some((eip.network_interface_id.clone()?, eip.private_ip?))
    }

    fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }
}

#[async_trait::async_trait]
impl Ec2 for FakeEc2 {
    async fn interfaces(&self, lookup: &EniLookup) -> Result<Vec<Eni>, ApiError> {
        let s = self.0.lock().unwrap();
        Ok(s.enis
            .iter()
            .filter(|e| match lookup {
                EniLookup::Id(id) => e.id == *id,
                EniLookup::Mac(mac) => e.mac == *mac,
                EniLookup::PrivateIpv4(ip) => {
                    e.primary_ipv4 == Some(*ip) || e.secondary_ipv4.contains(ip)
                }
                EniLookup::Ipv6(ip) => e.ipv6.contains(ip),
            })
            .cloned()
            .collect())
    }

    async fn elastic_ips(&self, lookup: &EipLookup) -> Result<Vec<ElasticIpState>, ApiError> {
        let s = self.0.lock().unwrap();
        Ok(s.eip
            .iter()
            .filter(|e| match lookup {
                EipLookup::Allocation(id) => e.allocation_id == *id,
                EipLookup::PublicIp(ip) => e.public_ip == *ip,
            })
            .cloned()
            .collect())
    }

    async fn apply(&self, step: &ApiStep) -> Result<(), ApiError> {
        let hang = self.0.lock().unwrap().hang.contains(&step.action());
        if hang {
            std::future::pending::<()>().await;
        }
        let mut s = self.0.lock().unwrap();
        s.calls.push(step.to_string());
        if let Some(e) = s.fail.get(step.action()) {
            return Err(e.clone());
        }
        match step {
            ApiStep::AssignV4 { eni, address, .. } => {
                for e in s.enis.iter_mut() {
                    e.secondary_ipv4.retain(|a| a != address);
                }
                s.enis
                    .iter_mut()
                    .find(|e| e.id == *eni)
                    .unwrap()
                    .secondary_ipv4
                    .push(*address);
                if let Some(eip) = s.eip.as_mut().filter(|e| e.private_ip == Some(*address)) {
                    eip.network_interface_id = Some(eni.clone());
                }
            }
            ApiStep::UnassignV4 { eni, address } => {
                s.enis
                    .iter_mut()
                    .find(|e| e.id == *eni)
                    .unwrap()
                    .secondary_ipv4
                    .retain(|a| a != address);
            }
            ApiStep::Associate { eni, private, .. } => {
                let eip = s.eip.as_mut().unwrap();
                eip.network_interface_id = Some(eni.clone());
                eip.private_ip = Some(*private);
                eip.association_id = Some("eipassoc-1".into());
            }
            ApiStep::Disassociate { .. } => {
                let eip = s.eip.as_mut().unwrap();
                eip.network_interface_id = None;
                eip.private_ip = None;
                eip.association_id = None;
            }
            ApiStep::AssignV6 { .. } | ApiStep::UnassignV6 { .. } => {}
        }
        Ok(())
    }
}

fn target(node_mac: [u8; 6], eip: bool) -> Target {
    Target {
        network_interface_id: None,
        master: "eth0".into(),
        master_mac: node_mac,
        master_ipv4: None,
        elastic_ip: eip.then(|| ElasticIp::Allocation("eipalloc-12345678".into())),
        wanted: Wanted {
            v4: Some("192.0.2.50".parse().unwrap()),
            v6: None,
        },
    }
}

const A: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const B: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];

fn later(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds)
}

#[tokio::test]
async fn ensure_then_release_and_a_repeated_ensure_makes_no_call() {
    let ec2 = FakeEc2::with_nodes();
    let done = ensure(&ec2, &target(A, true), later(9)).await.unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(ec2.holders("192.0.2.50"), ["eni-a"]);
    assert_eq!(
        ec2.association(),
        Some(("eni-a".into(), "192.0.2.50".parse().unwrap()))
    );
    assert_eq!(
        ensure(&ec2, &target(A, true), later(9)).await.unwrap(),
        Vec::new()
    );
    assert!(
        verify(&ec2, &target(A, true), later(9))
            .await
            .unwrap()
            .is_empty()
    );
    release(&ec2, &target(A, true), later(9)).await.unwrap();
    assert!(ec2.holders("192.0.2.50").is_empty());
    assert_eq!(ec2.association(), None);
}

#[tokio::test]
async fn the_pod_moves_and_the_old_node_releases_nothing() {
    let ec2 = FakeEc2::with_nodes();
    ensure(&ec2, &target(A, true), later(9)).await.unwrap();
    let moved = ensure(&ec2, &target(B, true), later(9)).await.unwrap();
    assert!(moved[0].to_string().contains("(from eni-a)"), "{moved:?}");
    assert_eq!(ec2.holders("192.0.2.50"), ["eni-b"]);
    let released = release(&ec2, &target(A, true), later(9)).await.unwrap();
    assert_eq!(released, Vec::new(), "A's late DEL");
    assert_eq!(
        ec2.association(),
        Some(("eni-b".into(), "192.0.2.50".parse().unwrap()))
    );
}

#[tokio::test]
async fn a_failed_association_is_rolled_back() {
    let ec2 = FakeEc2::with_nodes();
    ec2.fail("AssociateAddress", "InvalidParameterValue");
    let failed = ensure(&ec2, &target(A, true), later(9)).await.unwrap_err();
    assert_eq!(
        crate::cni::code::of(&failed.error),
        crate::cni::code::PLUGIN_FAILURE
    );
    assert!(
        failed
            .error
            .to_string()
            .contains("EC2: AssociateAddress: InvalidParameterValue: injected"),
        "{}",
        failed.error
    );
    assert_eq!(
        failed.attempted.len(),
        1,
        "the refused association changed nothing"
    );
    let errors = undo(&ec2, &target(A, true), "eni-a", &failed.attempted, later(4)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(ec2.holders("192.0.2.50").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_call_that_never_answers_counts_as_attempted() {
    let ec2 = FakeEc2::with_nodes();
    ec2.0.lock().unwrap().hang.push("AssociateAddress");
    let started = Instant::now();
    let failed = ensure(&ec2, &target(A, true), started + Duration::from_secs(9))
        .await
        .unwrap_err();
    assert_eq!(
        crate::cni::code::of(&failed.error),
        crate::cni::code::TRY_AGAIN_LATER
    );
    assert_eq!(started.elapsed(), Duration::from_secs(4));
    assert_eq!(
        failed.attempted.len(),
        2,
        "the association may have been made"
    );
    ec2.0.lock().unwrap().hang.clear();
    assert!(
        undo(&ec2, &target(A, true), "eni-a", &failed.attempted, later(4))
            .await
            .is_empty()
    );
    assert!(ec2.holders("192.0.2.50").is_empty());
    assert!(
        !ec2.calls().iter().any(|c| c.starts_with("Disassociate")),
        "nothing was associated"
    );
}

#[tokio::test]
async fn lookups_name_the_field_at_fault() {
    let ec2 = FakeEc2::with_nodes();
    let mut unknown = target(A, true);
    unknown.elastic_ip = Some(ElasticIp::PublicIp("203.0.113.99".parse().unwrap()));
    let failed = ensure(&ec2, &unknown, later(9)).await.unwrap_err();
    assert!(
        failed
            .error
            .to_string()
            .starts_with("interfaceArgs.publicIp: EC2: 203.0.113.99 is not an Elastic IP"),
        "{}",
        failed.error
    );
    let failed = ensure(&ec2, &target([2, 0, 0, 0, 0, 0x0c], false), later(9))
        .await
        .unwrap_err();
    assert!(
        failed
            .error
            .to_string()
            .contains("no ENI has master eth0's MAC 02:00:00:00:00:0c"),
        "{}",
        failed.error
    );
    let mut other = target(A, false);
    other.network_interface_id = Some("eni-b".into());
    let failed = ensure(&ec2, &other, later(9)).await.unwrap_err();
    assert!(
        failed
            .error
            .to_string()
            .contains("eni-b has MAC 02:00:00:00:00:0b, but master eth0 has 02:00:00:00:00:0a"),
        "{}",
        failed.error
    );
    assert!(ec2.calls().is_empty(), "no change was asked for");
}

#[test]
fn errors_get_the_code_the_runtime_acts_on() {
    let e = |kind, code: Option<&str>| ApiError {
        action: "DescribeAddresses",
        kind,
        code: code.map(str::to_owned),
        message: "m".into(),
    };
    let code_of = |error: &ApiError, field| crate::cni::code::of(&api_error(error, field));
    assert_eq!(code_of(&e(FailureKind::Timeout, None), None), 11);
    assert_eq!(
        code_of(&e(FailureKind::Service, Some("RequestLimitExceeded")), None),
        11
    );
    assert_eq!(
        code_of(
            &e(FailureKind::Service, Some("InvalidAllocationID.NotFound")),
            Some("interfaceArgs.allocationId")
        ),
        7
    );
    assert_eq!(
        code_of(
            &e(FailureKind::Service, Some("UnauthorizedOperation")),
            None
        ),
        100
    );
    assert_eq!(
        api_error(
            &e(FailureKind::Service, Some("InvalidAllocationID.NotFound")),
            Some("interfaceArgs.allocationId")
        )
        .to_string(),
        "interfaceArgs.allocationId: EC2: DescribeAddresses: InvalidAllocationID.NotFound: m"
    );
}
