//! The pod network setup, in three layers that data flows down through:
//! [`observe`] reads the state of every piece from the namespace, [`plan`] decides the
//! [`Step`]s still missing (pure; an empty plan is a healthy setup, and [`problems`]
//! names each missing piece), [`apply`] makes them while journaling how to undo each,
//! and rolls everything back on failure. [`firewall`] plans the iptables rules (pure).

pub mod apply;
pub mod firewall;
pub mod observe;
pub mod plan;

pub use apply::{Journal, apply};
pub use observe::{MACVLAN, Observed, observe};
pub use plan::{Step, plan, problems};
