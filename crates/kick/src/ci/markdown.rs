//! `--summary-md FILE` (and `$GITHUB_STEP_SUMMARY`): per job a heading, the
//! counts per outcome, the nodes that failed (errored, were skipped or
//! stopped) and the drift table, in GitHub-flavoured Markdown.

use std::fmt::Write;

use super::JobRecord;
use crate::drift::{self, DriftGroup};
use crate::outcome::Outcome;

/// Node names listed per drift row before "and N more".
const NAMES_PER_ROW: usize = 10;
/// Bad nodes listed per job before the rest is only counted.
const BAD_NODES_LISTED: usize = 50;
/// Longest value shown in a table cell.
const VALUE_WIDTH: usize = 80;

/// The summary of `jobs`.
pub fn render(jobs: &[JobRecord]) -> String {
    let mut s = String::new();
    for job in jobs {
        job_section(&mut s, job);
    }
    s
}

fn job_section(s: &mut String, job: &JobRecord) {
    let _ = writeln!(s, "## kick {}\n", escape(&job.title()));
    let mut facts = vec![format!("state **{}**", escape(&job.state))];
    if let Some(e) = &job.environment {
        facts.push(format!("environment `{}`", code(e)));
    }
    if let Some(d) = job.duration {
        facts.push(format!("{} s", round(d.as_secs_f64())));
    }
    let _ = writeln!(s, "{}\n", facts.join(", "));

    let _ = writeln!(s, "| outcome | nodes |\n| --- | ---: |");
    for o in Outcome::ALL {
        // Nodes are running only in a job shown before its end.
        if o != Outcome::Running || job.summary.get(o) > 0 {
            let _ = writeln!(s, "| {} | {} |", o.as_str(), job.summary.get(o));
        }
    }
    let _ = writeln!(s, "| **total** | **{}** |\n", job.summary.total);

    let bad: Vec<_> = job.nodes.iter().filter(|n| n.outcome.is_bad()).collect();
    if !bad.is_empty() {
        let _ = writeln!(
            s,
            "### Nodes that did not succeed\n\n| node | outcome | error |\n| --- | --- | --- |"
        );
        for n in bad.iter().take(BAD_NODES_LISTED) {
            let error = match (&n.error_kind, &n.error_msg) {
                (Some(k), Some(m)) => format!("`{}` {}", code(k), escape(first_line(m))),
                (Some(k), None) => format!("`{}`", code(k)),
                (None, Some(m)) => escape(first_line(m)),
                (None, None) => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {error} |",
                escape(&n.name),
                n.outcome.as_str()
            );
        }
        if bad.len() > BAD_NODES_LISTED {
            let _ = writeln!(
                s,
                "\n… and {} more; `kick job show {}` lists them all.",
                bad.len() - BAD_NODES_LISTED,
                job.id
            );
        }
        s.push('\n');
    }

    let groups = job.drift.groups();
    if !groups.is_empty() {
        drift_table(s, job, &groups);
    }
}

fn drift_table(s: &mut String, job: &JobRecord, groups: &[DriftGroup]) {
    let heading = if job.noop { "Drift" } else { "Changes" };
    let _ = writeln!(
        s,
        "### {heading} ({} on {})\n",
        plural(groups.len(), "change"),
        drift::count_nodes(usize::try_from(job.drift.node_count()).unwrap_or(usize::MAX))
    );
    let _ = writeln!(
        s,
        "| resource | change | status | nodes | count |\n| --- | --- | --- | --- | ---: |"
    );
    for g in groups {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} |",
            code(&g.resource),
            escape(&drift::describe(g, VALUE_WIDTH)),
            drift::verb(g.status),
            escape(&drift::node_names(&g.nodes, NAMES_PER_ROW)),
            g.nodes.len()
        );
    }
    if job.drift.ungrouped() > 0 {
        let _ = writeln!(
            s,
            "\n{} past the first {} distinct ones are not in this table.",
            plural(
                usize::try_from(job.drift.ungrouped()).unwrap_or(usize::MAX),
                "more change"
            ),
            drift::MAX_GROUPS
        );
    }
    if job.drift.truncated() > 0 {
        let _ = writeln!(
            s,
            "\n{} left out by the task's `changes_limit`.",
            plural(
                usize::try_from(job.drift.truncated()).unwrap_or(usize::MAX),
                "more change"
            )
        );
    }
    s.push('\n');
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn round(secs: f64) -> String {
    format!("{secs:.1}")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// Text in a table cell: one line, Markdown's punctuation escaped so a
/// value cannot open a link, a tag or a new cell.
fn escape(text: &str) -> String {
    let text = drift::one_line(text, 400);
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' | '!'
        ) {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// Text inside a code span: one line, no backticks (which would end it),
/// pipes escaped for the table.
fn code(text: &str) -> String {
    drift::one_line(text, 400)
        .replace('`', "'")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::tests::sample_job;

    #[test]
    fn a_job_gives_counts_bad_nodes_and_the_drift_table() {
        let md = render(&[sample_job()]);
        assert!(md.contains("| changed | 4 |"));
        assert!(md.contains(
            "| web4 | failed | `psick/run-failed` puppet exited 1: \\<catalog\\> \\& \"more\" |"
        ));
        assert!(md.contains(
            "| `File[/etc/motd]` | content → '{md5}new' | would change | web1, web2, web3 | 3 |"
        ));
        insta::assert_snapshot!(md);
    }

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(escape("a|b\nc"), "a\\|b\\\\nc");
        assert_eq!(escape("[x](y)"), "\\[x\\](y)");
        assert_eq!(code("a`b|c"), "a'b\\|c");
    }
}
