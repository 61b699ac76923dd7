//! Drift across a fleet: the same change (resource, property and desired
//! value) found on many nodes is one entry naming those nodes.
//!
//! A noop run's events say what *would* change; a real run's what changed,
//! or failed to. Entries are kept apart by that status, so "would change on
//! 212 nodes" never mixes with "failed on 3". Nodes are added as their
//! results arrive; [`Drift::groups`] orders the entries by node count, most
//! first, then by resource, property and value, so output is stable.

use std::collections::HashMap;

use orchestrator_types::psick::{Change, ChangeStatus};
use serde::Serialize;

/// The most distinct changes kept: a fleet whose every node wants its own
/// value (a per-node file) would otherwise keep every change of every node,
/// and a list that long reviews nothing. Changes past it are counted.
pub const MAX_GROUPS: usize = 10_000;

/// What the entries of one status are headed with in human output.
pub fn heading(status: ChangeStatus) -> &'static str {
    match status {
        ChangeStatus::Noop => "Would change",
        ChangeStatus::Success => "Changed",
        ChangeStatus::Failure => "Failed to change",
        ChangeStatus::Audit => "Audited",
    }
}

/// The verb of one status, for messages ("would change", "changed").
pub fn verb(status: ChangeStatus) -> &'static str {
    match status {
        ChangeStatus::Noop => "would change",
        ChangeStatus::Success => "changed",
        ChangeStatus::Failure => "failed to change",
        ChangeStatus::Audit => "audited",
    }
}

/// What makes two changes the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    status: ChangeStatus,
    resource: String,
    property: Option<String>,
    desired: Option<String>,
}

/// One change and the nodes it was found on: an item of the JSON `drift`
/// array and a row of the drift table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftGroup {
    /// `Type[title]`.
    pub resource: String,
    /// The property; `null` for events not tied to one (a refresh).
    pub property: Option<String>,
    /// The value the catalog asks for.
    pub desired: Option<String>,
    /// `noop` (would change), `success` (changed) or `failure`.
    pub status: ChangeStatus,
    /// Puppet's message for the change on the first node it was seen on
    /// (the previous value, and so the message, may differ between nodes).
    pub message: String,
    /// The nodes, sorted by name.
    pub nodes: Vec<String>,
}

/// Collects the changes of a job's nodes.
#[derive(Debug, Default)]
pub struct Drift {
    groups: HashMap<Key, DriftGroup>,
    /// Changes a node's result left out (`changes_truncated`), added up.
    truncated: u64,
    /// Nodes with at least one change.
    nodes: u64,
    /// Changes not grouped because [`MAX_GROUPS`] were held.
    ungrouped: u64,
}

impl Drift {
    /// Adds one node's changes (a change listed twice for a node counts once).
    pub fn add(&mut self, node: &str, changes: &[Change], truncated: u64) {
        self.truncated += truncated;
        let mut counted = false;
        for c in changes {
            counted = true;
            let key = Key {
                status: c.status,
                resource: c.resource.clone(),
                property: c.property.clone(),
                desired: c.desired.clone(),
            };
            if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&key) {
                self.ungrouped += 1;
                continue;
            }
            let g = self.groups.entry(key).or_insert_with(|| DriftGroup {
                resource: c.resource.clone(),
                property: c.property.clone(),
                desired: c.desired.clone(),
                status: c.status,
                message: c.message.clone(),
                nodes: Vec::new(),
            });
            if g.nodes.last().is_none_or(|n| n != node) {
                g.nodes.push(node.to_owned());
            }
        }
        self.nodes += u64::from(counted);
    }

    /// Whether no node had a change.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Nodes that had at least one change.
    pub fn node_count(&self) -> u64 {
        self.nodes
    }

    /// Changes the nodes' results left out, added up.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// Changes not grouped because [`MAX_GROUPS`] distinct ones were held.
    pub fn ungrouped(&self) -> u64 {
        self.ungrouped
    }

    /// The entries, most nodes first; ties by resource, property, value.
    pub fn groups(&self) -> Vec<DriftGroup> {
        let mut v: Vec<DriftGroup> = self.groups.values().cloned().collect();
        for g in &mut v {
            g.nodes.sort_unstable();
            g.nodes.dedup();
        }
        v.sort_by(|a, b| {
            b.nodes
                .len()
                .cmp(&a.nodes.len())
                .then_with(|| a.resource.cmp(&b.resource))
                .then_with(|| a.property.cmp(&b.property))
                .then_with(|| a.desired.cmp(&b.desired))
                .then_with(|| status_rank(a.status).cmp(&status_rank(b.status)))
        });
        v
    }
}

fn status_rank(s: ChangeStatus) -> u8 {
    match s {
        ChangeStatus::Noop => 0,
        ChangeStatus::Success => 1,
        ChangeStatus::Failure => 2,
        ChangeStatus::Audit => 3,
    }
}

/// At most `shown` of `nodes`, comma separated, the rest as "and N more".
pub fn node_names(nodes: &[String], shown: usize) -> String {
    let shown = shown.max(1);
    if nodes.len() <= shown {
        return nodes.join(", ");
    }
    format!(
        "{} and {} more",
        nodes[..shown].join(", "),
        nodes.len() - shown
    )
}

/// "1 node", "3 nodes".
pub fn count_nodes(n: usize) -> String {
    if n == 1 {
        "1 node".to_owned()
    } else {
        format!("{n} nodes")
    }
}

/// A value on one line and at most `max` characters: line breaks and other
/// control characters escaped, the rest cut with "…".
pub fn one_line(value: &str, max: usize) -> String {
    let mut s = String::with_capacity(value.len().min(max + 8));
    let mut chars = 0;
    for c in value.chars() {
        let piece: String = match c {
            '\n' => "\\n".into(),
            '\r' => "\\r".into(),
            '\t' => "\\t".into(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        };
        let len = piece.chars().count();
        if chars + len > max {
            s.push('…');
            return s;
        }
        chars += len;
        s.push_str(&piece);
    }
    s
}

/// What a group's change is, in words: `content → '{sha256}…'`, or for an
/// event without a property the message.
pub fn describe(g: &DriftGroup, max_value: usize) -> String {
    match (&g.property, &g.desired) {
        (Some(p), Some(d)) => format!("{p} → '{}'", one_line(d, max_value)),
        (Some(p), None) => p.clone(),
        (None, _) => one_line(&g.message, max_value.max(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(resource: &str, property: &str, desired: &str, status: ChangeStatus) -> Change {
        Change {
            resource: resource.into(),
            resource_type: resource.split('[').next().unwrap_or("").into(),
            title: String::new(),
            property: Some(property.into()),
            previous: Some("old".into()),
            desired: Some(desired.into()),
            message: format!("{property} would change"),
            status,
            corrective: false,
        }
    }

    #[test]
    fn identical_changes_group_across_nodes_most_nodes_first() {
        let motd = change("File[/etc/motd]", "content", "{md5}a", ChangeStatus::Noop);
        let other = change("File[/etc/motd]", "content", "{md5}b", ChangeStatus::Noop);
        let ntp = change("Service[ntp]", "ensure", "running", ChangeStatus::Noop);
        let mut d = Drift::default();
        d.add("web3", std::slice::from_ref(&motd), 0);
        d.add("web1", &[motd.clone(), ntp.clone()], 0);
        d.add("web2", std::slice::from_ref(&motd), 2);
        d.add("db1", std::slice::from_ref(&other), 0);
        d.add("quiet", &[], 0);
        let g = d.groups();
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].resource, "File[/etc/motd]");
        assert_eq!(g[0].desired.as_deref(), Some("{md5}a"));
        assert_eq!(g[0].nodes, ["web1", "web2", "web3"]);
        // Ties: by resource, then value.
        assert_eq!(g[1].desired.as_deref(), Some("{md5}b"));
        assert_eq!(g[1].nodes, ["db1"]);
        assert_eq!(g[2].resource, "Service[ntp]");
        assert_eq!(d.node_count(), 4);
        assert_eq!(d.truncated(), 2);
        assert!(!d.is_empty());
    }

    #[test]
    fn statuses_are_kept_apart_and_a_node_counts_once_per_change() {
        let ok = change("File[/a]", "mode", "0644", ChangeStatus::Success);
        let bad = change("File[/a]", "mode", "0644", ChangeStatus::Failure);
        let mut d = Drift::default();
        d.add("n1", &[ok.clone(), ok.clone()], 0);
        d.add("n2", &[bad], 0);
        let g = d.groups();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].status, ChangeStatus::Success);
        assert_eq!(g[0].nodes, ["n1"]);
        assert_eq!(g[1].status, ChangeStatus::Failure);
        assert_eq!(heading(ChangeStatus::Noop), "Would change");
        assert_eq!(verb(ChangeStatus::Success), "changed");
    }

    #[test]
    fn past_the_group_limit_changes_are_counted_not_kept() {
        let mut d = Drift::default();
        for i in 0..MAX_GROUPS + 3 {
            let c = change(
                "File[/etc/motd]",
                "content",
                &format!("{{md5}}{i}"),
                ChangeStatus::Noop,
            );
            d.add(&format!("n{i}"), &[c], 0);
        }
        // A change already held still gains nodes.
        let first = change("File[/etc/motd]", "content", "{md5}0", ChangeStatus::Noop);
        d.add("late", &[first], 0);
        assert_eq!(d.groups().len(), MAX_GROUPS);
        assert_eq!(d.ungrouped(), 3);
        assert_eq!(d.node_count(), MAX_GROUPS as u64 + 4);
        assert_eq!(d.groups()[0].nodes, ["late", "n0"]);
    }

    #[test]
    fn names_are_cut_with_and_n_more() {
        let n: Vec<String> = (1..=7).map(|i| format!("n{i}")).collect();
        assert_eq!(node_names(&n[..2], 5), "n1, n2");
        assert_eq!(node_names(&n, 5), "n1, n2, n3, n4, n5 and 2 more");
        assert_eq!(node_names(&n, 0), "n1 and 6 more");
        assert_eq!(count_nodes(1), "1 node");
        assert_eq!(count_nodes(212), "212 nodes");
    }

    #[test]
    fn values_are_put_on_one_line_and_cut() {
        assert_eq!(one_line("a\nb\tc", 80), "a\\nb\\tc");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("ab\ncd", 3), "ab…");
        assert_eq!(one_line("\u{1b}[0m", 80), "\\u{1b}[0m");
        assert_eq!(one_line("ééé", 2), "éé…");
        let mut g = Drift::default();
        g.add(
            "n",
            &[Change {
                property: None,
                desired: None,
                message: "Would have triggered 'refresh' from 1 event".into(),
                ..change("Exec[x]", "", "", ChangeStatus::Noop)
            }],
            0,
        );
        assert_eq!(
            describe(&g.groups()[0], 40),
            "Would have triggered 'refresh' from 1 event"
        );
        let c = change("File[/a]", "content", "{md5}abc", ChangeStatus::Noop);
        g.add("n", &[c], 0);
        let d = g
            .groups()
            .into_iter()
            .find(|x| x.property.is_some())
            .unwrap();
        assert_eq!(describe(&d, 40), "content → '{md5}abc'");
    }
}
