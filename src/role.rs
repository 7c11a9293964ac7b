//! Which role the binary plays when no subcommand is given (SPEC section 1).

use crate::config::vars::Vars;
use crate::error::{Error, Result};
use crate::{dns_proxy, http_proxy};

/// The roles one binary can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// CNI plugin (`CNI_COMMAND` set).
    Cni,
    /// Network/NAT setup (`EGRESS_ROUTER_MODE` or `EGRESS_SOURCE` set).
    Router,
    /// HTTP proxy (`EGRESS_HTTP_PROXY_DESTINATION` set).
    HttpProxy,
    /// DNS (TCP forwarding) proxy (`EGRESS_DNS_PROXY_DESTINATION` set).
    DnsProxy,
}

/// Picks the role from the environment, in the order the contract gives.
pub fn select_role(vars: &Vars) -> Result<Role> {
    if vars.is_set("CNI_COMMAND") {
        Ok(Role::Cni)
    } else if vars.is_set("EGRESS_ROUTER_MODE") || vars.is_set("EGRESS_SOURCE") {
        Ok(Role::Router)
    } else if http_proxy::config::LIST.is_set(vars) {
        Ok(Role::HttpProxy)
    } else if dns_proxy::config::LIST.is_set(vars) {
        Ok(Role::DnsProxy)
    } else {
        Err(Error::Usage(
            "no role selected: set EGRESS_SOURCE (router), EGRESS_HTTP_PROXY_DESTINATION(_FILE), \
             EGRESS_DNS_PROXY_DESTINATION(_FILE) or CNI_COMMAND, or give a subcommand (see --help)"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(pairs: &[(&str, &str)]) -> Result<Role> {
        select_role(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn follows_the_documented_precedence() {
        let all = [
            ("CNI_COMMAND", "ADD"),
            ("EGRESS_ROUTER_MODE", "init"),
            ("EGRESS_SOURCE", "198.51.100.99"),
            ("EGRESS_HTTP_PROXY_DESTINATION", "*"),
            ("EGRESS_DNS_PROXY_DESTINATION", "80 203.0.113.5"),
        ];
        assert_eq!(role(&all).unwrap(), Role::Cni);
        assert_eq!(role(&all[1..]).unwrap(), Role::Router);
        assert_eq!(role(&all[2..]).unwrap(), Role::Router);
        assert_eq!(role(&all[3..]).unwrap(), Role::HttpProxy);
        assert_eq!(role(&all[4..]).unwrap(), Role::DnsProxy);
        let file = |var: &str| role(&[(var, "/etc/egress/list")]).unwrap();
        assert_eq!(file("EGRESS_HTTP_PROXY_DESTINATION_FILE"), Role::HttpProxy);
        assert_eq!(file("EGRESS_DNS_PROXY_DESTINATION_FILE"), Role::DnsProxy);
    }

    #[test]
    fn blank_values_do_not_count_and_nothing_is_a_usage_error() {
        let err = role(&[("EGRESS_SOURCE", ""), ("PATH", "/bin")]).unwrap_err();
        assert!(matches!(err, Error::Usage(_)));
        assert_eq!(err.exit_code(), 2);
    }
}
