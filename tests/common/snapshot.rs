//! Snapshots of a namespace's network state (addresses, routes, rules, iptables and
//! ip6tables, sysctls), normalised so that two compare equal when nothing changed, and
//! the assertion that shows what did.

use super::Topology;
use std::collections::BTreeMap;

impl Topology {
    /// Network state of a namespace, normalised so two snapshots compare equal when
    /// nothing changed.
    pub fn snapshot(&self, role: &str) -> Snapshot {
        let mut parts = BTreeMap::new();
        let cmds: [(&str, &[&str]); 11] = [
            ("1 ip -d addr", &["ip", "-d", "addr"]),
            (
                "2 ip route show table all",
                &["ip", "route", "show", "table", "all"],
            ),
            ("3 ip rule", &["ip", "rule"]),
            ("4 iptables-nft-save", &["iptables-nft-save"]),
            // never `iptables-legacy -L`: it would instantiate legacy tables
            ("5 iptables-legacy-save", &["iptables-legacy-save"]),
            (
                "6 sysctl",
                &[
                    "sysctl",
                    "net.ipv4.ip_forward",
                    "net.ipv4.conf.all.rp_filter",
                    "net.ipv4.conf.all.src_valid_mark",
                ],
            ),
            ("7 ip -6 rule", &["ip", "-6", "rule"]),
            (
                "8 ip -6 route show table all",
                &["ip", "-6", "route", "show", "table", "all"],
            ),
            ("9 ip6tables-nft-save", &["ip6tables-nft-save"]),
            ("10 ip6tables-legacy-save", &["ip6tables-legacy-save"]),
            (
                "11 sysctl ipv6",
                &[
                    "sysctl",
                    "net.ipv6.conf.all.forwarding",
                    "net.ipv6.conf.macvlan0.accept_ra",
                    "net.ipv6.conf.macvlan0.autoconf",
                    "net.ipv6.conf.macvlan0.accept_dad",
                    "net.ipv6.conf.macvlan0.disable_ipv6",
                ],
            ),
        ];
        for (name, args) in cmds {
            let out = self.run(role, args, &[]);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            parts.insert(name.to_string(), normalise(&text));
        }
        Snapshot { parts }
    }

    /// Snapshots of the router and gateway namespaces, for failure messages.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for role in ["router", "gw"] {
            s.push_str(&format!("===== {role} =====\n{}\n", self.snapshot(role)));
        }
        s
    }
}

fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_end();
        if t.trim_start().starts_with('#') {
            continue; // iptables-save header/footer comments carry timestamps
        }
        if t.starts_with("Error: Peer netns reference is invalid") {
            continue; // `ip` racing another test's namespace teardown: not this namespace's state
        }
        out.push_str(&strip_qdisc(&strip_counters(t)));
        out.push('\n');
    }
    out
}

/// A link's default qdisc turns from `noop` to `noqueue` the first time it is up and
/// never back: not a configuration difference.
fn strip_qdisc(line: &str) -> String {
    let mut words: Vec<&str> = line.split(' ').collect();
    for i in 1..words.len() {
        if words[i - 1] == "qdisc" {
            words[i] = "_";
        }
    }
    words.join(" ")
}

/// `:PREROUTING ACCEPT [12:345]` -> `:PREROUTING ACCEPT [0:0]`
fn strip_counters(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find(']') {
            Some(j)
                if after[..j].contains(':')
                    && after[..j].chars().all(|c| c.is_ascii_digit() || c == ':') =>
            {
                out.push_str("[0:0]");
                rest = &after[j + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub parts: BTreeMap<String, String>,
}

impl Snapshot {
    /// The snapshot without the iptables and ip6tables tables that are empty but for
    /// their built-in chains with policy ACCEPT (the `*table`, `:CHAIN ACCEPT [0:0]`
    /// and `COMMIT` lines): iptables tools create a table on first use and cannot
    /// delete one, so a setup rolled back (or torn down) may leave them. User chains
    /// and rules are compared.
    pub fn without_empty_tables(mut self) -> Snapshot {
        const BUILTIN: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
        for (name, text) in self.parts.iter_mut() {
            if !name.contains("tables") {
                continue;
            }
            let keep = |line: &&str| {
                let builtin = BUILTIN
                    .iter()
                    .any(|c| *line == format!(":{c} ACCEPT [0:0]"));
                !(builtin || *line == "COMMIT" || line.starts_with('*'))
            };
            *text = text
                .lines()
                .filter(keep)
                .map(|l| format!("{l}\n"))
                .collect();
        }
        self
    }

    /// Lines that differ, per part, for a readable assertion message.
    pub fn diff(&self, other: &Snapshot) -> String {
        let mut s = String::new();
        for (name, a) in &self.parts {
            let b = other.parts.get(name).cloned().unwrap_or_default();
            if *a == b {
                continue;
            }
            s.push_str(&format!("--- {name}\n"));
            let al: Vec<&str> = a.lines().collect();
            let bl: Vec<&str> = b.lines().collect();
            for l in &al {
                if !bl.contains(l) {
                    s.push_str(&format!("  - {l}\n"));
                }
            }
            for l in &bl {
                if !al.contains(l) {
                    s.push_str(&format!("  + {l}\n"));
                }
            }
        }
        s
    }
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, text) in &self.parts {
            writeln!(f, "### {name}\n{text}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Assert two snapshots are equal, showing the difference.
pub fn assert_same(before: &Snapshot, after: &Snapshot, what: &str) {
    if before != after {
        panic!(
            "{what}: namespace state changed\n{}\nfull state after:\n{after}",
            before.diff(after)
        );
    }
}
