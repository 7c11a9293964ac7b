//! The iptables-restore scripts: apply what is wanted, check it (`-C`), undo it, tear
//! a plugin setup down; and reading `iptables-save` dumps (pure).

use super::{
    DNAT_CHAIN, NatChains, OUT_CHAIN, PRE_CHAIN, Rule, SNAT_CHAIN, Wanted, jumps, reply_rules,
};

/// Builds the `iptables-restore --noflush` input that brings the namespace to `wanted`.
///
/// `current` is the `iptables-save` output of the namespace; it decides whether the
/// jumps into our chains exist already, so that each is left in place exactly once:
/// added when absent, surplus copies (left by an earlier run) deleted. Our chains are
/// declared (which flushes them) and refilled; NAT in the built-in chains flushes and
/// refills `PREROUTING` and `POSTROUTING`. The result is applied in one transaction per
/// table: old rules or new, never a mix.
pub fn restore_script(current: &str, wanted: &Wanted) -> String {
    let nat_chains = wanted.nat.as_ref().map(|(chains, _)| *chains);
    let all_jumps = jumps(nat_chains);
    let mut script = format!("*mangle\n:{PRE_CHAIN} - [0:0]\n:{OUT_CHAIN} - [0:0]\n");
    for rule in reply_rules(&wanted.inbound) {
        script.push_str(&format!("{rule}\n"));
    }
    push_jumps(
        &mut script,
        current,
        all_jumps.iter().filter(|j| j.table == "mangle"),
    );
    script.push_str("COMMIT\n");
    if let Some((chains, rules)) = &wanted.nat {
        script.push_str("*nat\n");
        match chains {
            NatChains::Builtin => script.push_str("-F PREROUTING\n-F POSTROUTING\n"),
            NatChains::Own => {
                script.push_str(&format!(":{DNAT_CHAIN} - [0:0]\n:{SNAT_CHAIN} - [0:0]\n"));
                push_jumps(
                    &mut script,
                    current,
                    all_jumps.iter().filter(|j| j.table == "nat"),
                );
            }
        }
        for rule in rules {
            script.push_str(&format!("{rule}\n"));
        }
        script.push_str("COMMIT\n");
    }
    script
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

/// Whether a jump into one of our chains stands more than once in `current` (an
/// `iptables-save` dump), as an earlier, interrupted run can leave it.
pub fn has_surplus_jumps(current: &str) -> bool {
    jumps(Some(NatChains::Own))
        .iter()
        .any(|jump| copies(current, jump) > 1)
}

fn copies(current: &str, rule: &Rule) -> usize {
    table_section(current, rule.table)
        .unwrap_or("")
        .lines()
        .filter(|line| line.trim_end() == rule.to_string())
        .count()
}

/// The `iptables-restore --noflush` input that removes everything a plugin setup
/// added (CNI DEL): every jump into our chains, then the chains. Empty when `current`
/// holds none of it.
pub fn teardown_script(current: &str) -> String {
    let mut script = String::new();
    for (table, chains) in [
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

/// The restore input that puts `tables` back as they were in `saved`
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
        _ => &[],
    }
}

/// The `*table` ... lines of an `iptables-save` dump, without the `COMMIT` line.
fn table_section<'a>(save: &'a str, table: &str) -> Option<&'a str> {
    let header = format!("*{table}\n");
    let start = save.find(&header)?;
    let rest = &save[start..];
    let end = rest.find("\nCOMMIT").map(|i| i + 1).unwrap_or(rest.len());
    Some(&rest[..end])
}
