//! Configuration, from an injectable key/value source into validated types (pure):
//! [`vars`] the source, [`names`] and [`address`] one reading of host names, ports and
//! addresses for every parser, [`family`] the two address families, [`lines`] the one
//! reader of the line-list format, [`router`] the router variables, [`redirect`] the
//! `EGRESS_DESTINATION` list, [`env_file`] the `--env-file` format of `validate`,
//! [`list_file`] a list given in its variable or in a file, [`metrics_address`] where
//! the operations endpoint listens, [`ha`] high availability (`EGRESS_HA_*`).

pub mod address;
pub mod env_file;
pub mod family;
pub mod ha;
pub mod lines;
pub mod list_file;
pub mod metrics_address;
pub mod names;
pub mod redirect;
pub mod router;
pub mod vars;
