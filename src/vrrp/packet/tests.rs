use super::*;

fn ip(source: &str, destination: &str) -> Addresses {
    Addresses {
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

fn advert(vrid: u8, priority: u8, centis: u16, addresses: &[&str]) -> Advertisement {
    Advertisement {
        vrid,
        priority,
        interval_centis: centis,
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
    }
}

const V4: (&str, &str) = ("198.51.100.11", "224.0.0.18");
const V6: (&str, &str) = ("fe80::1", "ff02::12");

#[test]
fn ipv4_encodes_as_rfc_5798_with_the_pseudo_header_checksum() {
    // Checksum computed independently (a Python one's complement sum over the
    // RFC 768 pseudo-header and the message).
    let bytes = advert(51, 100, 10, &["198.51.100.99"]).encode(ip(V4.0, V4.1));
    assert_eq!(
        bytes,
        [0x31, 51, 100, 1, 0x00, 10, 0x35, 0x5c, 198, 51, 100, 99]
    );
}

#[test]
fn ipv6_encodes_with_the_ipv6_pseudo_header_checksum() {
    let bytes = advert(7, 200, 100, &["2001:db8:1::99"]).encode(ip(V6.0, V6.1));
    assert_eq!(&bytes[..8], &[0x31, 7, 200, 1, 0x00, 100, 0xda, 0x20]);
    assert_eq!(bytes.len(), 8 + 16);
}

#[test]
fn what_is_encoded_decodes_to_itself() {
    for (addresses, family) in [
        (vec!["198.51.100.99", "198.51.100.98"], V4),
        (vec!["2001:db8:1::99"], V6),
    ] {
        let sent = advert(255, 0, 4095, &addresses);
        let packet = ip(family.0, family.1);
        let bytes = sent.encode(packet);
        assert_eq!(checksum(packet, &bytes), 0);
        assert_eq!(Advertisement::decode(&bytes, packet, 255), Ok(sent));
    }
}

#[test]
fn the_checksum_binds_the_packets_addresses() {
    let bytes = advert(51, 100, 10, &["198.51.100.99"]).encode(ip(V4.0, V4.1));
    // What a SNAT of the source without a fix of the checksum does.
    let natted = ip("198.51.100.99", V4.1);
    assert_eq!(
        Advertisement::decode(&bytes, natted, 255),
        Err(Ignored::Checksum)
    );
    let unicast = ip(V4.0, "198.51.100.12");
    assert_eq!(
        Advertisement::decode(&bytes, unicast, 255),
        Err(Ignored::Checksum)
    );
    let mut flipped = bytes.clone();
    flipped[2] ^= 1;
    assert_eq!(
        Advertisement::decode(&flipped, ip(V4.0, V4.1), 255),
        Err(Ignored::Checksum)
    );
}

#[test]
fn bad_packets_are_ignored_with_their_reason() {
    let packet = ip(V4.0, V4.1);
    let good = advert(51, 100, 10, &["198.51.100.99"]).encode(packet);
    assert_eq!(Advertisement::decode(&good, packet, 254), Err(Ignored::Ttl));
    assert_eq!(
        Advertisement::decode(&good[..7], packet, 255),
        Err(Ignored::Malformed)
    );
    assert_eq!(
        Advertisement::decode(&good[..11], packet, 255),
        Err(Ignored::Malformed)
    );
    let mut v2 = good.clone();
    v2[0] = 0x21;
    assert_eq!(
        Advertisement::decode(&v2, packet, 255),
        Err(Ignored::Version)
    );
    let mut other_type = good.clone();
    other_type[0] = 0x32;
    assert_eq!(
        Advertisement::decode(&other_type, packet, 255),
        Err(Ignored::Type)
    );
    let zero = advert(51, 100, 0, &["198.51.100.99"]).encode(packet);
    assert_eq!(
        Advertisement::decode(&zero, packet, 255),
        Err(Ignored::Interval)
    );
    assert_eq!(
        Advertisement::decode(&[], packet, 255),
        Err(Ignored::Malformed)
    );
}

#[test]
fn the_reserved_bits_are_ignored_and_an_odd_length_sums_with_padding() {
    let packet = ip(V4.0, V4.1);
    let mut bytes = advert(9, 100, 10, &[]).encode(packet);
    bytes[4] |= 0xf0;
    bytes[6..8].copy_from_slice(&[0, 0]);
    bytes.push(0xab);
    let sum = checksum(packet, &bytes);
    bytes[6..8].copy_from_slice(&sum.to_be_bytes());
    let decoded = Advertisement::decode(&bytes, packet, 255).unwrap();
    assert_eq!((decoded.interval_centis, decoded.addresses.len()), (10, 0));
}
