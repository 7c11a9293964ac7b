//! `egress-router validate`: every problem of a container's environment at once,
//! changing nothing.
//!
//! The role is chosen as at start ([`select_role`]); then the role's parser runs on
//! the variables. A parser stops at its first error, so each error is recorded and its
//! variable replaced by a valid stand-in (or removed, for an optional one) before the
//! parser runs again, until it passes: one problem per variable. The lines of a list
//! variable are first checked one by one, so that every bad line is reported with its
//! number; what only the whole list can show (a rule after `*`, a port given twice)
//! comes from the whole-list run. A list in a file (`..._FILE`) is read and checked the
//! same way, its problems under the `_FILE` variable's name.

use std::fmt;

use crate::config::lines;
use crate::config::redirect::parse_destinations;
use crate::config::router::RouterConfig;
use crate::config::vars::Vars;
use crate::dns_proxy::config::{DnsProxyConfig, LIST as DNS_LIST};
use crate::dns_proxy::destination::parse_forwarders;
use crate::error::Error;
use crate::http_proxy::ProxyConfig;
use crate::http_proxy::config::LIST as HTTP_LIST;
use crate::http_proxy::rules::parse_rules;
use crate::logging::LogSettings;
use crate::role::{Role, select_role};

/// One problem: the variable, the line of its value when it is a list, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The variable at fault.
    pub var: String,
    /// The line of the variable's value (from 1), for list variables.
    pub line: Option<usize>,
    /// What is wrong, quoting the value or line.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.var, self.message),
            None => write!(f, "{}: {}", self.var, self.message),
        }
    }
}

/// What was checked, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The role the environment selects, if it selects one.
    pub role: Option<Role>,
    /// Every problem found, empty when the environment is valid.
    pub problems: Vec<Problem>,
}

/// Checks `vars` as the container would read them at start.
pub fn validate(vars: &Vars) -> Validation {
    let mut problems = Vec::new();
    if let Err(e) = vars.check_utf8() {
        problems.push(problem(e));
    }
    if let Err(e) = LogSettings::from_vars(vars) {
        problems.push(problem(e));
    }
    let role = match select_role(vars) {
        Ok(role) => Some(role),
        Err(e) => {
            problems.push(problem(e));
            None
        }
    };
    match role.map(parsers) {
        Some(Some((list, each_line, whole))) => {
            let first = problems.len();
            let (vars, file) = inline_list_file(vars, list, &mut problems);
            check_lines(&vars, list, each_line, &mut problems);
            check_each_variable(&vars, whole, &mut problems);
            if let Some(file) = file {
                for problem in &mut problems[first..] {
                    if problem.var == list {
                        problem.var = file.into();
                    }
                }
            }
        }
        Some(None) => problems.push(Problem {
            var: "CNI_COMMAND".into(),
            line: None,
            message: "selects the CNI plugin, whose configuration comes on stdin: \
                      validate checks the router and proxy roles"
                .into(),
        }),
        None => {}
    }
    Validation { role, problems }
}

/// A check of one line of a list.
type LineCheck = fn(&str) -> crate::error::Result<()>;
/// A check of all the variables of a role.
type VarsCheck = fn(&Vars) -> crate::error::Result<()>;

/// A role's list variable, its line check, and the check of all its variables; `None`
/// for the CNI plugin, whose configuration is not in the environment.
fn parsers(role: Role) -> Option<(&'static str, LineCheck, VarsCheck)> {
    Some(match role {
        Role::Router => (
            LIST_DESTINATION,
            |line| parse_destinations(line).map(drop),
            |vars| RouterConfig::from_vars(vars, None).map(drop),
        ),
        Role::HttpProxy => (
            LIST_HTTP,
            |line| parse_rules(line).map(drop),
            |vars| ProxyConfig::from_vars(vars).map(drop),
        ),
        Role::DnsProxy => (
            LIST_DNS,
            |line| parse_forwarders(line).map(drop),
            |vars| DnsProxyConfig::from_vars(vars).map(drop),
        ),
        Role::Cni => return None,
    })
}

const LIST_DESTINATION: &str = "EGRESS_DESTINATION";
const LIST_HTTP: &str = "EGRESS_HTTP_PROXY_DESTINATION";
const LIST_DNS: &str = "EGRESS_DNS_PROXY_DESTINATION";

/// Valid values for the required variables, put in place of a bad one so that the
/// parser can go on to the next variable (documentation addresses).
const STAND_INS: [(&str, &str); 6] = [
    ("EGRESS_SOURCE", "198.51.100.99"),
    ("EGRESS_GATEWAY", "198.51.100.1"),
    (LIST_DESTINATION, "203.0.113.7"),
    (LIST_HTTP, "*"),
    (LIST_DNS, "53 203.0.113.53"),
    ("EGRESS_HA_VRID", "1"),
];

/// When the role's list comes from a `_FILE` variable: the variables with the file's
/// text in the list variable (a stand-in when it cannot be read, with the problem), and
/// the `_FILE` variable, under whose name the list's problems are reported.
fn inline_list_file(
    vars: &Vars,
    list: &str,
    problems: &mut Vec<Problem>,
) -> (Vars, Option<&'static str>) {
    let Some(source) = [HTTP_LIST, DNS_LIST]
        .into_iter()
        .find(|l| l.inline == list && vars.is_set(l.file))
    else {
        return (vars.clone(), None);
    };
    let text = match source.read(vars) {
        Ok((text, _)) => text,
        Err(e) => {
            problems.push(problem(e));
            let stand_in = STAND_INS.iter().find(|(name, _)| *name == list);
            stand_in.map_or_else(String::new, |(_, v)| v.to_string())
        }
    };
    let vars = vars.with(source.file, None).with(list, Some(&text));
    (vars, Some(source.file))
}

/// Each entry of the list in `var` alone through `parse`; every error with its line.
fn check_lines(vars: &Vars, var: &str, parse: LineCheck, problems: &mut Vec<Problem>) {
    let Some(text) = vars.get(var) else { return };
    for (index, line) in text.lines().enumerate() {
        if lines::entries(line).next().is_none() {
            continue;
        }
        if let Err(e) = parse(line) {
            problems.push(Problem {
                line: Some(index + 1),
                ..problem(e)
            });
        }
    }
}

/// Runs `parse` until it passes, recording each error (once per variable) and putting
/// a stand-in in place of the variable at fault.
fn check_each_variable(vars: &Vars, parse: VarsCheck, problems: &mut Vec<Problem>) {
    let mut vars = vars.clone();
    let mut replaced: Vec<String> = Vec::new();
    while let Err(e) = parse(&vars) {
        let Error::Config { var, .. } = &e else {
            problems.push(problem(e));
            return;
        };
        let var = var.to_string();
        if replaced.contains(&var) {
            // the stand-in itself fails: a problem of the combination, already reported
            return;
        }
        if !problems.iter().any(|p| p.var == var) {
            problems.push(problem(e));
        }
        let stand_in = STAND_INS
            .iter()
            .find(|(name, _)| *name == var)
            .map(|(_, v)| *v);
        vars = vars.with(&var, stand_in);
        replaced.push(var);
    }
}

fn problem(error: Error) -> Problem {
    match error {
        Error::Config { var, message } => Problem {
            var: var.to_string(),
            line: None,
            message,
        },
        Error::NotUtf8 { var } => Problem {
            var,
            line: None,
            message: "is not valid UTF-8".into(),
        },
        other => Problem {
            var: "environment".into(),
            line: None,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
