//! The iptables-restore scripts: apply what is wanted, check it (`-C`), undo it, tear
//! a plugin setup down; and reading `iptables-save` dumps (pure).

use super::names::{NAME_CHAIN_PREFIX, refusal_rules};
use super::{
    DNAT_CHAIN, FORWARD_CHAIN, IN_CHAIN, NatChains, OUT_CHAIN, PRE_CHAIN, Rule, SNAT_CHAIN, Wanted,
    jumps, reply_rules,
};

/// Builds the `iptables-restore --noflush` input that brings the namespace to `wanted`.
///
/// `current` is the `iptables-save` output of the namespace; it decides whether the
/// jumps into our chains exist already, so that each is left in place exactly once:
/// added when absent, surplus copies (left by an earlier run) deleted; a guard jump
/// that is not the first rule of its chain is moved there. Our chains are declared
/// (which flushes them) and refilled; NAT in the built-in chains flushes and refills
/// `PREROUTING` and `POSTROUTING`, declares and fills each name entry's chain, and
/// deletes the name chains of an earlier list. The guard comes first (with the
/// rejection of what a name entry refuses, when there are name entries). The result is
/// applied in one transaction per table: old rules or new, never a mix.
pub fn restore_script(current: &str, wanted: &Wanted) -> String {
    let all_jumps = jumps(wanted);
    let of_table = |table: &'static str| all_jumps.iter().filter(move |j| j.table == table);
    let mut script = format!("*filter\n:{IN_CHAIN} - [0:0]\n:{FORWARD_CHAIN} - [0:0]\n");
    for rule in wanted.guard() {
        script.push_str(&format!("{rule}\n"));
    }
    if !wanted.names.is_empty() {
        for rule in refusal_rules(wanted.family) {
            script.push_str(&format!("{rule}\n"));
        }
    }
    for jump in of_table("filter") {
        push_first_jump(&mut script, current, jump);
    }
    script.push_str("COMMIT\n");
    if let Some(inbound) = &wanted.replies {
        script.push_str(&format!(
            "*mangle\n:{PRE_CHAIN} - [0:0]\n:{OUT_CHAIN} - [0:0]\n"
        ));
        for rule in reply_rules(inbound) {
            script.push_str(&format!("{rule}\n"));
        }
        push_jumps(&mut script, current, of_table("mangle"));
        script.push_str("COMMIT\n");
    }
    if let Some((chains, rules)) = &wanted.nat {
        script.push_str("*nat\n");
        match chains {
            NatChains::Builtin => script.push_str("-F PREROUTING\n-F POSTROUTING\n"),
            NatChains::Own => {
                script.push_str(&format!(":{DNAT_CHAIN} - [0:0]\n:{SNAT_CHAIN} - [0:0]\n"));
                push_jumps(&mut script, current, of_table("nat"));
            }
        }
        for name in &wanted.names {
            script.push_str(&format!(":{} - [0:0]\n", name.chain));
        }
        for rule in rules {
            script.push_str(&format!("{rule}\n"));
        }
        for name in &wanted.names {
            for rule in name.rules(name.addresses.as_deref().unwrap_or_default()) {
                script.push_str(&format!("{rule}\n"));
            }
        }
        if *chains == NatChains::Builtin {
            for stale in
                name_chains(current).filter(|c| !wanted.names.iter().any(|n| n.chain == *c))
            {
                script.push_str(&format!("-F {stale}\n-X {stale}\n"));
            }
        }
        script.push_str("COMMIT\n");
    }
    script
}

/// The name entries' chains declared in the `nat` table of `current`.
fn name_chains(current: &str) -> impl Iterator<Item = &str> {
    table_section(current, "nat")
        .unwrap_or("")
        .lines()
        .filter_map(|line| line.strip_prefix(':'))
        .filter_map(|declaration| declaration.split_whitespace().next())
        .filter(|chain| chain.starts_with(NAME_CHAIN_PREFIX))
}

/// Adds each jump that `current` lacks, and deletes the surplus copies of those it has.
fn push_jumps<'a>(script: &mut String, current: &str, jumps: impl Iterator<Item = &'a Rule>) {
    for jump in jumps {
        let copies = copies(current, jump);
        if copies == 0 {
            script.push_str(&format!("{jump}\n"));
        }
        for _ in 1..copies {
            script.push_str(&format!("-D {} {}\n", jump.chain, jump.spec));
        }
    }
}

/// Leaves `jump` as the first rule of its chain, once: unless it stands there alone,
/// every copy is deleted and it is inserted at the top.
fn push_first_jump(script: &mut String, current: &str, jump: &Rule) {
    let copies = copies(current, jump);
    if copies == 1 && stands_first(current, jump) {
        return;
    }
    for _ in 0..copies {
        script.push_str(&format!("-D {} {}\n", jump.chain, jump.spec));
    }
    script.push_str(&format!("-I {} 1 {}\n", jump.chain, jump.spec));
}

/// Whether `jump` is the first rule of its chain in `current` (an `iptables-save` dump).
fn stands_first(current: &str, jump: &Rule) -> bool {
    let prefix = format!("-A {} ", jump.chain);
    table_section(current, jump.table)
        .unwrap_or("")
        .lines()
        .find(|line| line.starts_with(&prefix))
        .is_some_and(|line| line.trim_end() == jump.to_string())
}

/// What is wrong with the jumps into our chains in `current` (an `iptables-save`
/// dump) for `wanted`, beside a missing one: a jump that stands more than once (as an
/// earlier, interrupted run can leave it), and a guard jump that is not the first rule
/// of its chain (an earlier rule could let the egress side in).
pub fn jump_problems(current: &str, wanted: &Wanted) -> Vec<String> {
    let mut problems = Vec::new();
    for jump in jumps(wanted) {
        let copies = copies(current, &jump);
        if copies > 1 {
            problems.push(format!(
                "the jump `{jump}` ({}) stands {copies} times",
                jump.table
            ));
        }
        if jump.table == "filter" && copies > 0 && !stands_first(current, &jump) {
            problems.push(format!(
                "the jump `{jump}` ({}) is not the first rule of {}: an earlier rule could let the egress side in",
                jump.table, jump.chain
            ));
        }
    }
    problems
}

fn copies(current: &str, rule: &Rule) -> usize {
    table_section(current, rule.table)
        .unwrap_or("")
        .lines()
        .filter(|line| line.trim_end() == rule.to_string())
        .count()
}

/// The `iptables-restore --noflush` input that removes everything a plugin setup
/// added (CNI DEL): every jump into our chains, then the chains (the guard's too). Empty when `current`
/// holds none of it.
pub fn teardown_script(current: &str) -> String {
    let mut script = String::new();
    for (table, chains) in [
        ("filter", [IN_CHAIN, FORWARD_CHAIN]),
        ("mangle", [PRE_CHAIN, OUT_CHAIN]),
        ("nat", [DNAT_CHAIN, SNAT_CHAIN]),
    ] {
        let section = table_section(current, table).unwrap_or("");
        let ours: Vec<&str> = chains
            .into_iter()
            .filter(|chain| {
                section
                    .lines()
                    .any(|l| l.starts_with(&format!(":{chain} ")))
            })
            .collect();
        if ours.is_empty() {
            continue;
        }
        script.push_str(&format!("*{table}\n"));
        for line in section.lines() {
            if let Some(rule) = line.strip_prefix("-A ")
                && ours
                    .iter()
                    .any(|chain| rule.ends_with(&format!(" -j {chain}")))
            {
                script.push_str(&format!("-D {rule}\n"));
            }
        }
        for chain in &ours {
            script.push_str(&format!("-F {chain}\n-X {chain}\n"));
        }
        script.push_str("COMMIT\n");
    }
    script
}

/// The first chain of ours that `current` (an `iptables-save` dump) declares, in any
/// table: a sign of an egress-router setup in the namespace.
pub fn our_chain_in(current: &str) -> Option<&str> {
    const OURS: [&str; 6] = [
        IN_CHAIN,
        FORWARD_CHAIN,
        PRE_CHAIN,
        OUT_CHAIN,
        DNAT_CHAIN,
        SNAT_CHAIN,
    ];
    current.lines().find_map(|line| {
        let chain = line.strip_prefix(':')?.split_whitespace().next()?;
        OURS.contains(&chain).then_some(chain)
    })
}

/// The `iptables-restore --noflush` input that only checks (`-C`) that every rule of
/// `rules` is in place: it fails at the first one that is not, and changes nothing.
pub fn check_script(rules: &[Rule]) -> String {
    let mut tables: Vec<&str> = Vec::new();
    for rule in rules {
        if !tables.contains(&rule.table) {
            tables.push(rule.table);
        }
    }
    let mut script = String::new();
    for table in tables {
        script.push_str(&format!("*{table}\n"));
        for rule in rules.iter().filter(|r| r.table == table) {
            script.push_str(&format!("-C {} {}\n", rule.chain, rule.spec));
        }
        script.push_str("COMMIT\n");
    }
    script
}

/// The restore input (applied without `--noflush`) that puts `tables` back as they were in `saved`
/// (an `iptables-save` dump); a table absent from `saved` is restored empty.
pub fn rollback_script(saved: &str, tables: &[&str]) -> String {
    let mut script = String::new();
    for table in tables {
        match table_section(saved, table) {
            Some(section) => script.push_str(section),
            None => {
                script.push_str(&format!("*{table}\n"));
                for chain in builtin_chains(table) {
                    script.push_str(&format!(":{chain} ACCEPT [0:0]\n"));
                }
            }
        }
        script.push_str("COMMIT\n");
    }
    script
}

/// Whether two `iptables-save` dumps hold the same user chains and rules in `tables`
/// (counters and built-in chain policies ignored; an absent table equals an empty one).
pub fn same_rules(a: &str, b: &str, tables: &[&str]) -> bool {
    tables
        .iter()
        .all(|table| rule_lines(a, table) == rule_lines(b, table))
}

fn rule_lines<'a>(save: &'a str, table: &str) -> Vec<&'a str> {
    let builtin = builtin_chains(table);
    table_section(save, table)
        .unwrap_or("")
        .lines()
        .filter_map(|line| match line.strip_prefix(':') {
            Some(declaration) => declaration
                .split_whitespace()
                .next()
                .filter(|chain| !builtin.contains(chain)),
            None => line.starts_with("-A ").then_some(line),
        })
        .collect()
}

fn builtin_chains(table: &str) -> &'static [&'static str] {
    match table {
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        "filter" => &["INPUT", "FORWARD", "OUTPUT"],
        _ => &[],
    }
}

/// A rule spec's words without the protocol match module iptables-save adds
/// (`-p tcp -m tcp --dport 80`): how a planned rule and a dumped one compare.
pub fn spec_tokens(spec: &str) -> Vec<&str> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let mut kept = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let module = words.get(i + 1).copied();
        if words[i] == "-m" && matches!(module, Some("tcp" | "udp" | "sctp")) {
            i += 2;
            continue;
        }
        kept.push(words[i]);
        i += 1;
    }
    kept
}

/// The `*table` ... lines of an `iptables-save` dump, without the `COMMIT` line.
pub(super) fn table_section<'a>(save: &'a str, table: &str) -> Option<&'a str> {
    let header = format!("*{table}\n");
    let start = save.find(&header)?;
    let rest = &save[start..];
    let end = rest.find("\nCOMMIT").map(|i| i + 1).unwrap_or(rest.len());
    Some(&rest[..end])
}
