//! The closing summary: the counts, then the nodes that failed, errored,
//! were skipped or stopped, by name, Bolt-style; nodes with the same error
//! are listed once under it.

use std::collections::HashMap;

use super::super::style::{self, paint};
use super::line::{error_text, fit};
use crate::outcome::{NodeReport, Outcome};
use crate::summary::Summary;
use crate::time;
use crate::watch::JobInfo;

/// Names listed per error before "and N more".
const NAMES_SHOWN: usize = 8;

/// Distinct errors listed per outcome; the nodes of the others are counted.
const GROUPS_SHOWN: usize = 8;

/// Distinct errors remembered per outcome (memory stays bounded on jobs
/// where every node fails differently).
const GROUPS_KEPT: usize = 64;

/// The nodes of one error.
#[derive(Debug, Default)]
struct Group {
    count: u64,
    names: Vec<String>,
    /// Order of first appearance.
    first: usize,
}

/// The names of the nodes that did not succeed, by outcome and error.
#[derive(Debug, Default)]
pub struct BadNodes {
    by_outcome: HashMap<Outcome, HashMap<String, Group>>,
    /// Nodes whose error was one too many to remember, per outcome.
    others: HashMap<Outcome, u64>,
    seen: usize,
}

impl BadNodes {
    /// Remembers `node` if it did not succeed.
    pub fn add(&mut self, node: &NodeReport) {
        if !node.outcome.is_bad() {
            return;
        }
        let error = error_text(node).unwrap_or_default();
        let groups = self.by_outcome.entry(node.outcome).or_default();
        let kept = groups.len();
        self.seen += 1;
        match groups.get_mut(&error) {
            Some(g) => g.add(&node.name),
            None if kept < GROUPS_KEPT => {
                let mut g = Group {
                    first: self.seen,
                    ..Group::default()
                };
                g.add(&node.name);
                groups.insert(error, g);
            }
            None => *self.others.entry(node.outcome).or_default() += 1,
        }
    }

    /// The lines naming the nodes, after the summary line.
    fn lines(&self, summary: &Summary, color: bool, width: Option<usize>) -> String {
        let mut s = String::new();
        for o in Outcome::ALL.into_iter().filter(|o| o.is_bad()) {
            let Some(groups) = self.by_outcome.get(&o) else {
                continue;
            };
            let total = summary.get(o);
            let heading = paint(color, style::outcome(o), &heading(o));
            let mut groups: Vec<(&String, &Group)> = groups.iter().collect();
            groups.sort_by_key(|(_, g)| g.first);
            let nodes = plural(total, "node");
            if let [(error, g)] = groups.as_slice()
                && self.others.get(&o).copied().unwrap_or(0) == 0
            {
                let mut l = format!("{heading} on {nodes}: {}", g.names_text());
                if !error.is_empty() {
                    l.push_str(&format!(" ({error})"));
                }
                s.push_str(&fit(&l, width, 2));
                continue;
            }
            s.push_str(&format!("{heading} on {nodes}:\n"));
            let mut listed = 0;
            for (error, g) in groups.iter().take(GROUPS_SHOWN) {
                let error = if error.is_empty() {
                    "no error given"
                } else {
                    error
                };
                let l = format!(
                    "  {error} ({}): {}",
                    plural(g.count, "node"),
                    g.names_text()
                );
                s.push_str(&fit(&l, width, 4));
                listed += g.count;
            }
            let rest = total.saturating_sub(listed);
            if rest > 0 {
                s.push_str(&format!(
                    "  and {} with other errors\n",
                    plural(rest, "more node")
                ));
            }
        }
        s
    }
}

impl Group {
    fn add(&mut self, name: &str) {
        self.count += 1;
        if self.names.len() < NAMES_SHOWN {
            self.names.push(name.to_owned());
        }
    }

    fn names_text(&self) -> String {
        let mut s = self.names.join(", ");
        let more = self.count.saturating_sub(self.names.len() as u64);
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
        s
    }
}

fn heading(o: Outcome) -> String {
    let word = match o {
        Outcome::Failed => "Failed",
        Outcome::Errored => "Errored",
        Outcome::Skipped => "Skipped",
        Outcome::Stopped => "Stopped",
        _ => o.as_str(),
    };
    word.to_owned()
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The closing summary: the counts line (a change in noop counted as
/// "would change (noop)"), then the nodes that did not succeed.
pub fn summary_text(
    job: &JobInfo,
    summary: &Summary,
    bad: &BadNodes,
    color: bool,
    width: Option<usize>,
) -> String {
    let counts: Vec<String> = Outcome::ALL
        .iter()
        .filter(|o| summary.get(**o) > 0)
        .map(|o| {
            let word = if *o == Outcome::Changed && job.noop {
                "would change (noop)"
            } else {
                o.as_str()
            };
            paint(
                color,
                style::outcome(*o),
                &format!("{} {word}", summary.get(*o)),
            )
        })
        .collect();
    let nodes = if summary.total == 1 { "node" } else { "nodes" };
    let mut s = format!("Job {} {}: {} {nodes}", job.name, job.state, summary.total);
    if !counts.is_empty() {
        s.push_str(": ");
        s.push_str(&counts.join(", "));
    }
    if let Some(d) = job.duration {
        s.push_str(&format!(" in {}", time::human(d)));
    }
    let mut s = fit(&s, width, 2);
    s.push_str(&bad.lines(summary, color, width));
    s
}
