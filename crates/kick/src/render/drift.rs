//! The human drift section, printed after the node lines: per status
//! ("Would change" in noop, "Changed", "Failed to change"), each change
//! with the number of nodes it was found on and their names, most nodes
//! first.

use orchestrator_types::psick::ChangeStatus;

use super::style::{self, paint};
use crate::drift::{self, Drift, DriftGroup};

/// Names listed per change before "and N more".
const NAMES_SHOWN: usize = 5;
/// Longest desired value shown: room for a `{sha256}` checksum, which is
/// what file content changes show.
const VALUE_WIDTH: usize = 80;

/// The section, or an empty string when no node had a change.
pub fn section(d: &Drift, color: bool) -> String {
    let groups = d.groups();
    let mut s = String::new();
    for status in [
        ChangeStatus::Noop,
        ChangeStatus::Success,
        ChangeStatus::Failure,
        ChangeStatus::Audit,
    ] {
        let of: Vec<&DriftGroup> = groups.iter().filter(|g| g.status == status).collect();
        if of.is_empty() {
            continue;
        }
        let mut nodes: Vec<&str> = of
            .iter()
            .flat_map(|g| g.nodes.iter().map(String::as_str))
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let title = format!(
            "{} ({} on {}):",
            drift::heading(status),
            if of.len() == 1 {
                "1 change".to_owned()
            } else {
                format!("{} changes", of.len())
            },
            drift::count_nodes(nodes.len())
        );
        s.push('\n');
        s.push_str(&paint(color, style::bold(), &title));
        s.push('\n');
        for g in of {
            s.push_str(&format!(
                "  {} {}\n    {}: {}\n",
                paint(color, style::bold(), &g.resource),
                drift::describe(g, VALUE_WIDTH),
                drift::count_nodes(g.nodes.len()),
                drift::node_names(&g.nodes, NAMES_SHOWN)
            ));
        }
    }
    if d.ungrouped() > 0 {
        s.push_str(&paint(
            color,
            style::dim(),
            &format!(
                "  ({} more changes, past {} distinct ones, are in each node's result)\n",
                d.ungrouped(),
                drift::MAX_GROUPS
            ),
        ));
    }
    if d.truncated() > 0 && !s.is_empty() {
        s.push_str(&paint(
            color,
            style::dim(),
            &format!(
                "  ({} more left out by the task's changes_limit)\n",
                d.truncated()
            ),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::tests::change;

    #[test]
    fn changes_are_grouped_with_counts_and_names() {
        let mut d = Drift::default();
        for n in ["web1", "web2", "web3", "web4", "web5", "web6", "web7"] {
            d.add(n, &[change("File[/etc/resolv.conf]", "{md5}new")], 0);
        }
        d.add("db1", &[change("File[/etc/resolv.conf]", "{md5}db")], 3);
        let mut ok = change("Service[ntp]", "running");
        ok.property = Some("ensure".into());
        ok.status = ChangeStatus::Success;
        d.add("db2", &[ok], 0);
        insta::assert_snapshot!(section(&d, false), @r"

        Would change (2 changes on 8 nodes):
          File[/etc/resolv.conf] content → '{md5}new'
            7 nodes: web1, web2, web3, web4, web5 and 2 more
          File[/etc/resolv.conf] content → '{md5}db'
            1 node: db1

        Changed (1 change on 1 node):
          Service[ntp] ensure → 'running'
            1 node: db2
          (3 more left out by the task's changes_limit)
        ");
        assert_eq!(section(&Drift::default(), false), "");
    }
}
