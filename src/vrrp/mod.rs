//! VRRP version 3 (RFC 5798), pure: [`packet`] the advertisement's wire format and
//! checksum, [`machine`] the state machine of one virtual router. The sockets are in
//! `sys::vrrp`, the role that runs them in `ha`.

pub mod machine;
pub mod packet;
