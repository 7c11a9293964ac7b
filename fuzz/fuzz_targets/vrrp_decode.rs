//! VRRP advertisements: decoding never panics, whatever arrives; an accepted packet's
//! checksum is right, its addresses are of the packet's family, and it encodes back
//! to the same message (reserved bits and trailing bytes aside) that decodes alike.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use egress_router::vrrp::packet::{Addresses, Advertisement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let ip = match selector & 1 {
        0 => Addresses {
            source: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 11)),
            destination: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        },
        _ => Addresses {
            source: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            destination: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        },
    };
    let ttl = if selector & 2 == 0 { 255 } else { selector };
    let Ok(advert) = Advertisement::decode(message, ip, ttl) else {
        return;
    };
    assert_eq!(ttl, 255);
    assert!(advert.interval_centis > 0 && advert.interval_centis < 4096);
    assert!(advert.addresses.iter().all(|a| a.is_ipv4() == ip.source.is_ipv4()));
    let again = advert.encode(ip);
    assert_eq!(Advertisement::decode(&again, ip, 255).as_ref(), Ok(&advert));
});
