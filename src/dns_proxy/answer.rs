//! Optional DNS answers (`EGRESS_DNS_PROXY_ANSWER_ADDRESS`): the router answers A
//! queries for every host name in its list with the router Service's address, so
//! clients keep using the real name (TLS server name, Host header) and still go
//! through the router. Other names are refused.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tracing::{debug, info, warn};

use super::destination::{Forwarder, Target};
use crate::config::address::interface_addresses;
use crate::error::{Error, Result};
use crate::serve::shutdown::{self, Shutdown};
use crate::setup::MACVLAN;

/// TTL of the answers: short, so a changed Service address is picked up soon.
pub const ANSWER_TTL: u32 = 30;

/// What to answer for one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The name is listed and the question is for A: this address.
    Address(Ipv4Addr),
    /// The name is listed, the type is not A: an empty NOERROR answer.
    NoData,
    /// The name is not listed.
    Refused,
}

/// Decides the answer to a question for `name` (lower-case, without trailing dot).
pub fn answer_for(
    names: &HashSet<String>,
    address: Ipv4Addr,
    name: &str,
    record_type: RecordType,
) -> Answer {
    match (names.contains(name), record_type) {
        (false, _) => Answer::Refused,
        (true, RecordType::A) => Answer::Address(address),
        (true, _) => Answer::NoData,
    }
}

/// The names answered for: those of the list in service (a reload changes them).
pub type Names = Arc<RwLock<HashSet<String>>>;

/// The host names among the targets of `forwarders`.
pub fn names_of(forwarders: &[Forwarder]) -> HashSet<String> {
    forwarders
        .iter()
        .filter_map(|f| match &f.target {
            Target::Name(name) => Some(name.clone()),
            Target::Address(_) => None,
        })
        .collect()
}

/// The request handler answering for the listed names.
struct NameAnswers {
    names: Names,
    address: Ipv4Addr,
}

#[async_trait::async_trait]
impl RequestHandler for NameAnswers {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let question = match request.request_info() {
            Ok(info) => info.query.clone(),
            Err(_) => {
                metadata.response_code = ResponseCode::FormErr;
                return send(&mut response, builder.build_no_records(metadata), metadata).await;
            }
        };
        let name = question
            .name()
            .to_string()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let answer = {
            let names = self.names.read().unwrap_or_else(|p| p.into_inner());
            answer_for(&names, self.address, &name, question.query_type())
        };
        debug!(client = %request.src(), %name, record_type = %question.query_type(), ?answer, "dns question");
        metadata.authoritative = answer != Answer::Refused;
        match answer {
            Answer::Address(ip) => {
                let record =
                    Record::from_rdata(question.name().clone().into(), ANSWER_TTL, RData::A(A(ip)));
                let records = [record];
                send(
                    &mut response,
                    builder.build(metadata, records.iter(), [], [], []),
                    metadata,
                )
                .await
            }
            Answer::NoData => {
                send(&mut response, builder.build_no_records(metadata), metadata).await
            }
            Answer::Refused => {
                metadata.response_code = ResponseCode::Refused;
                send(&mut response, builder.build_no_records(metadata), metadata).await
            }
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    message: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    metadata: Metadata,
) -> ResponseInfo {
    match response.send_response(message).await {
        Ok(info) => info,
        Err(e) => {
            warn!(error = %e, "sending a DNS answer failed");
            let mut failed = metadata;
            failed.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata: failed,
                counts: HeaderCounts::default(),
            })
        }
    }
}

/// The IPv4 addresses of this network namespace's interfaces.
fn cluster_side_ipv4_addresses() -> Result<Vec<Ipv4Addr>> {
    let interfaces =
        interface_addresses().map_err(|e| Error::io("listing interface addresses", e))?;
    let mut addresses: Vec<Ipv4Addr> = interfaces
        .into_iter()
        .filter(|(name, _)| name != MACVLAN)
        .filter_map(|(_, address)| match address {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    Ok(addresses)
}

/// Starts answering on UDP and TCP `port` on every IPv4 address of the cluster side
/// (none of the egress interface's: the outside network gets no answer, even without
/// the guard); stops on `shutdown`.
///
/// UDP gets one socket per local address: a reply then leaves from the address the
/// query was sent to, so it belongs to the query's connection and the reply routing
/// sends it back through eth0. From a wildcard socket the kernel would pick the source
/// by the main table's default route (EGRESS_SOURCE on macvlan0), and clients in other
/// subnets would never see the answer. TCP gets one listener per address too, for the
/// same reach.
pub async fn serve(
    names: Names,
    address: Ipv4Addr,
    port: u16,
    mut shutdown: Shutdown,
) -> Result<()> {
    let bind_error =
        |what: String, e| Error::io(format!("EGRESS_DNS_PROXY_ANSWER_PORT: binding {what}"), e);
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for local in cluster_side_ipv4_addresses()? {
        udp.push(
            UdpSocket::bind((local, port))
                .await
                .map_err(|e| bind_error(format!("UDP {local}:{port}"), e))?,
        );
        tcp.push(
            TcpListener::bind((local, port))
                .await
                .map_err(|e| bind_error(format!("TCP {local}:{port}"), e))?,
        );
    }
    info!(port, %address, names = ?names, "answering DNS queries for the listed names");
    let mut server = Server::new(NameAnswers { names, address });
    for socket in udp {
        server.register_socket(socket);
    }
    for listener in tcp {
        server.register_listener(listener, Duration::from_secs(5), 4096);
    }
    tokio::spawn(async move {
        shutdown::requested(&mut shutdown).await;
        if let Err(e) = server.shutdown_gracefully().await {
            warn!(error = %e, "stopping the DNS answers");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_for_listed_names_only() {
        let names: HashSet<String> = ["db.example.com".to_string()].into();
        let router = Ipv4Addr::new(192, 0, 2, 70);
        assert_eq!(
            answer_for(&names, router, "db.example.com", RecordType::A),
            Answer::Address(router)
        );
        assert_eq!(
            answer_for(&names, router, "db.example.com", RecordType::AAAA),
            Answer::NoData
        );
        assert_eq!(
            answer_for(&names, router, "db.example.com", RecordType::MX),
            Answer::NoData
        );
        assert_eq!(
            answer_for(&names, router, "other.example.com", RecordType::A),
            Answer::Refused
        );
    }
}
