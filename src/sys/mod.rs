//! Thin layers over the kernel: each call reads or changes one thing in an explicit
//! network namespace ([`netns`]), and decides nothing. [`netlink`] links, addresses,
//! routes and rules; [`iptables`] the rule tools; [`sysctl`]; [`arp`] announcements on
//! a packet socket, [`ndp`] their IPv6 counterpart, [`fd`] their sockets handed to a
//! child; [`lock`] a lock scoped to the network namespace; [`beneath`] a file opened
//! beneath a directory without following a symbolic link; [`textfile`] a file replaced
//! whole under a lock (node_exporter's textfile collector); [`vrrp`] raw VRRP sockets.

pub mod arp;
pub mod beneath;
pub mod fd;
pub mod iptables;
pub mod lock;
pub mod ndp;
pub mod netlink;
pub mod netns;
pub mod sysctl;
pub mod textfile;
pub mod vrrp;
