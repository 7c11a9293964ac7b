//! The node's `nat` exemption of routed sources (pure): the chain
//! `EGRESS-ROUTER-ROUTED`, jumped to first from `POSTROUTING`, holds one `ACCEPT` a
//! source, so that the masquerade and SNAT rules after the jump (kube-proxy's, the
//! cluster network's, a cloud network plugin's) never see the source's packets. Only
//! this chain and its jump are ever changed: the scripts add or delete single rules
//! (`iptables-restore --noflush`) and never restore a table, since kube-proxy and
//! others change the node's `nat` table at any time.

use std::net::IpAddr;

use super::host_len;

/// The chain of the exemptions, in the node's `nat` table.
pub const NODE_CHAIN: &str = "EGRESS-ROUTER-ROUTED";

/// One rule of our chain as an `iptables-save` dump shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRule {
    /// The rule after `-A CHAIN `, as dumped (what `-D CHAIN` takes).
    pub spec: String,
    /// Its `-s` address, when it is one host.
    pub source: Option<IpAddr>,
    /// Its `-o` interface.
    pub out: Option<String>,
    /// Its `-j` target.
    pub target: Option<String>,
}

/// What the node's `nat` table holds of ours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatState {
    /// Whether the chain exists.
    pub chain: bool,
    /// How many jumps `POSTROUTING` has into it.
    pub jumps: usize,
    /// Whether the first rule of `POSTROUTING` is the jump.
    pub jump_first: bool,
    /// The chain's rules.
    pub rules: Vec<ChainRule>,
}

impl NatState {
    /// Reads an `iptables-save` dump (every table, or `nat` alone).
    pub fn read(dump: &str) -> NatState {
        let section = nat_section(dump);
        let jump = format!("-A POSTROUTING -j {NODE_CHAIN}");
        let prefix = format!("-A {NODE_CHAIN} ");
        NatState {
            chain: section
                .iter()
                .any(|l| l.starts_with(&format!(":{NODE_CHAIN} "))),
            jumps: section.iter().filter(|l| l.trim_end() == jump).count(),
            jump_first: section
                .iter()
                .find(|l| l.starts_with("-A POSTROUTING "))
                .is_some_and(|l| l.trim_end() == jump),
            rules: section
                .iter()
                .filter_map(|l| l.strip_prefix(&prefix))
                .map(parse_rule)
                .collect(),
        }
    }

    /// Whether `source` is exempted on its way out of `master`.
    pub fn exempts(&self, source: IpAddr, master: &str) -> bool {
        self.rules.iter().any(|r| {
            r.source == Some(source)
                && r.out.as_deref() == Some(master)
                && r.target.as_deref() == Some("ACCEPT")
        })
    }
}

fn nat_section(dump: &str) -> Vec<&str> {
    dump.lines()
        .skip_while(|l| l.trim_end() != "*nat")
        .skip(1)
        .take_while(|l| l.trim_end() != "COMMIT")
        .collect()
}

fn parse_rule(spec: &str) -> ChainRule {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let after = |flag: &str| {
        words
            .windows(2)
            .find(|w| w[0] == flag)
            .map(|w| w[1].to_string())
    };
    let source = after("-s").and_then(|s| {
        let (address, len) = s.split_once('/')?;
        let address: IpAddr = address.parse().ok()?;
        (len.parse::<u8>().ok()? == host_len(address)).then_some(address)
    });
    ChainRule {
        spec: spec.trim_end().to_string(),
        source,
        out: after("-o"),
        target: after("-j"),
    }
}

/// The exemption of `source` leaving by `master`, marked with `container`.
pub fn exemption(source: IpAddr, master: &str, container: &str) -> String {
    format!(
        "-s {source}/{} -o {master} -m comment --comment \"egress-router {container}\" -j ACCEPT",
        host_len(source)
    )
}

/// The restore script that puts the exemption of `source` by `master` in place
/// (creating the chain, putting the jump first and alone, replacing older rules of
/// `source`), and the script that undoes it; `None` when all is in place.
pub fn add_script(
    state: &NatState,
    source: IpAddr,
    master: &str,
    container: &str,
) -> Option<(String, String)> {
    let stale: Vec<&ChainRule> = state
        .rules
        .iter()
        .filter(|r| r.source == Some(source))
        .collect();
    let jump_ok = state.jumps == 1 && state.jump_first;
    if jump_ok && stale.len() == 1 && state.exempts(source, master) {
        return None;
    }
    let rule = exemption(source, master, container);
    let mut script = String::from("*nat\n");
    let mut undo = String::from("*nat\n");
    if !state.chain {
        script.push_str(&format!(":{NODE_CHAIN} - [0:0]\n"));
    }
    if !jump_ok {
        for _ in 0..state.jumps {
            script.push_str(&format!("-D POSTROUTING -j {NODE_CHAIN}\n"));
        }
        script.push_str(&format!("-I POSTROUTING 1 -j {NODE_CHAIN}\n"));
    }
    for old in stale {
        script.push_str(&format!("-D {NODE_CHAIN} {}\n", old.spec));
    }
    script.push_str(&format!("-A {NODE_CHAIN} {rule}\n"));
    undo.push_str(&format!("-D {NODE_CHAIN} {rule}\n"));
    if !state.chain {
        undo.push_str(&format!(
            "-D POSTROUTING -j {NODE_CHAIN}\n-X {NODE_CHAIN}\n"
        ));
    }
    script.push_str("COMMIT\n");
    undo.push_str("COMMIT\n");
    Some((script, undo))
}

/// The restore script that removes every exemption of `source`, and the chain and
/// its jumps when nothing else is left in it; `None` when there is none.
pub fn remove_script(state: &NatState, source: IpAddr) -> Option<String> {
    let (gone, kept): (Vec<&ChainRule>, Vec<&ChainRule>) =
        state.rules.iter().partition(|r| r.source == Some(source));
    if gone.is_empty() && (!kept.is_empty() || !state.chain) {
        return None;
    }
    let mut script = String::from("*nat\n");
    for rule in gone {
        script.push_str(&format!("-D {NODE_CHAIN} {}\n", rule.spec));
    }
    if kept.is_empty() {
        for _ in 0..state.jumps {
            script.push_str(&format!("-D POSTROUTING -j {NODE_CHAIN}\n"));
        }
        script.push_str(&format!("-X {NODE_CHAIN}\n"));
    }
    script.push_str("COMMIT\n");
    Some(script)
}

/// What is wrong with the exemption of `source` by `master`, each named.
pub fn problems(state: &NatState, source: IpAddr, master: &str, container: &str) -> Vec<String> {
    let mut problems = Vec::new();
    match (state.jumps, state.jump_first) {
        (0, _) => problems.push(format!(
            "nat rule missing: -A POSTROUTING -j {NODE_CHAIN} (first)"
        )),
        (_, false) => problems.push(format!(
            "the jump `-A POSTROUTING -j {NODE_CHAIN}` is not the first rule of POSTROUTING: an earlier masquerade or SNAT rule could rewrite the source"
        )),
        (1, true) => {}
        (n, true) => problems.push(format!(
            "the jump `-A POSTROUTING -j {NODE_CHAIN}` stands {n} times"
        )),
    }
    if !state.exempts(source, master) {
        problems.push(format!(
            "nat rule missing: -A {NODE_CHAIN} {}",
            exemption(source, master, container)
        ));
    }
    problems
}

#[cfg(test)]
mod tests;
