//! Reports for CI systems, written when the job has ended: [`junit`] XML
//! (`--junit FILE`) and a [`markdown`] summary (`--summary-md FILE`, or
//! appended to `$GITHUB_STEP_SUMMARY`).
//!
//! Both are built from [`JobRecord`]s: what kick learnt about each node of a
//! job, kept compact (no output, no raw result) so a large job costs little.
//! A rollout gives one record per wave. [`Recorder`] collects them in front
//! of the `--format` reporter.

pub mod junit;
pub mod markdown;
mod recorder;

pub use recorder::Recorder;

use std::path::{Path, PathBuf};
use std::time::Duration;

use orchestrator_types::psick::Change;
use serde_json::Value;

use crate::drift::Drift;
pub use crate::error::ReportError;
use crate::outcome::Outcome;
use crate::summary::Summary;
use crate::watch::JobInfo;

/// Changes kept per node for the reports (the task's default
/// `changes_limit`); the rest are counted, so a large job with large
/// results stays small in memory.
pub const CHANGES_KEPT: usize = 100;

/// What the CI reports say about one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    /// Certname.
    pub name: String,
    /// What the run amounted to.
    pub outcome: Outcome,
    /// Run time, when known and sane.
    pub duration: Option<Duration>,
    /// The error's kind (`psick/run-failed`, `kick/node-skipped`).
    pub error_kind: Option<String>,
    /// The error's message.
    pub error_msg: Option<String>,
    /// The run's changes (or, in noop, what would change).
    pub changes: Vec<Change>,
    /// Changes the result left out.
    pub changes_truncated: u64,
}

impl NodeRecord {
    /// From a node's report parts; `error` is its `_error`-shaped object.
    pub fn new(
        name: &str,
        outcome: Outcome,
        duration: Option<f64>,
        error: Option<&Value>,
        mut changes: Vec<Change>,
        changes_truncated: u64,
    ) -> Self {
        let dropped = changes.len().saturating_sub(CHANGES_KEPT);
        changes.truncate(CHANGES_KEPT);
        let text = |k: &str| {
            error
                .and_then(|e| e.get(k))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            name: name.to_owned(),
            outcome,
            // A duration from the server is any number: negative, NaN or
            // absurd values are dropped rather than trusted.
            duration: duration.and_then(|d| Duration::try_from_secs_f64(d).ok()),
            error_kind: text("kind"),
            error_msg: text("msg"),
            changes,
            changes_truncated: changes_truncated.saturating_add(dropped as u64),
        }
    }
}

/// One job (or one wave of a rollout) as the CI reports see it.
#[derive(Debug, Default)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// What ran: the task, or `puppet` for a deploy.
    pub what: String,
    /// Whether the job ran in noop mode.
    pub noop: bool,
    /// Puppet environment.
    pub environment: Option<String>,
    /// The job's final state.
    pub state: String,
    /// The job's run time.
    pub duration: Option<Duration>,
    /// A label set by the caller (`wave 2 of 3`), shown with the job.
    pub label: Option<String>,
    /// The nodes, in the order they were reported.
    pub nodes: Vec<NodeRecord>,
    /// Counts per outcome.
    pub summary: Summary,
    /// The nodes' changes, grouped.
    pub drift: Drift,
}

impl JobRecord {
    /// An empty record for `job`.
    pub fn new(job: &JobInfo) -> Self {
        let mut r = Self::default();
        r.update(job);
        r
    }

    /// Takes the job's latest state and duration (and the rest, unchanged).
    pub fn update(&mut self, job: &JobInfo) {
        self.id.clone_from(&job.name);
        self.what = job.what().to_owned();
        self.noop = job.noop;
        self.environment.clone_from(&job.environment);
        self.state.clone_from(&job.state);
        self.duration = job
            .duration
            .and_then(|d| Duration::try_from_secs_f64(d).ok());
    }

    /// Adds a node: its line in the reports and its changes to the drift.
    pub fn add(&mut self, node: NodeRecord) {
        self.summary.add(node.outcome);
        self.drift
            .add(&node.name, &node.changes, node.changes_truncated);
        self.nodes.push(node);
    }

    /// The job's name in reports: `job 42: psick::puppet_agent (noop)`.
    pub fn title(&self) -> String {
        let noop = if self.noop { " (noop)" } else { "" };
        let label = self
            .label
            .as_deref()
            .map(|l| format!("{l}, "))
            .unwrap_or_default();
        format!("{label}job {}: {}{noop}", self.id, self.what)
    }
}

/// Where the reports go: `--junit`, `--summary-md`, and the step summary
/// file of GitHub Actions, used when no `--summary-md` is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// `--junit FILE`.
    pub junit: Option<PathBuf>,
    /// `--summary-md FILE`.
    pub summary_md: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY` (appended to, not replaced).
    pub step_summary: Option<PathBuf>,
}

impl Targets {
    /// From the flags and `GITHUB_STEP_SUMMARY` (ignored when empty).
    pub fn from_flags(junit: Option<PathBuf>, summary_md: Option<PathBuf>) -> Self {
        let step_summary = std::env::var_os("GITHUB_STEP_SUMMARY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self {
            junit,
            summary_md,
            step_summary,
        }
    }

    /// Whether any report is to be written (and so nodes recorded).
    pub fn any(&self) -> bool {
        self.junit.is_some() || self.summary_md.is_some() || self.step_summary.is_some()
    }

    /// Writes the reports of `jobs`.
    pub fn write(&self, jobs: &[JobRecord]) -> Result<(), ReportError> {
        if let Some(path) = &self.junit {
            let xml = junit::render(jobs).map_err(|e| ReportError::Junit {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            write_file(path, xml.as_bytes(), false)?;
        }
        let md = || markdown::render(jobs);
        match (&self.summary_md, &self.step_summary) {
            (Some(path), _) => write_file(path, md().as_bytes(), false)?,
            // A blank line first: what an earlier step wrote may not end
            // its last line, and a heading must start one.
            (None, Some(path)) => write_file(path, format!("\n{}", md()).as_bytes(), true)?,
            (None, None) => {}
        }
        Ok(())
    }
}

fn write_file(path: &Path, bytes: &[u8], append: bool) -> Result<(), ReportError> {
    use std::io::Write;
    let result = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .and_then(|mut f| f.write_all(bytes));
    result.map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use orchestrator_types::psick::ChangeStatus;
    use serde_json::json;

    /// A noop change of `resource`'s content to `desired`.
    pub fn change(resource: &str, desired: &str) -> Change {
        Change {
            resource: resource.into(),
            resource_type: "File".into(),
            title: resource.into(),
            property: Some("content".into()),
            previous: Some("{md5}old".into()),
            desired: Some(desired.into()),
            message: format!("current_value '{{md5}}old', should be '{desired}' (noop)"),
            status: ChangeStatus::Noop,
            corrective: true,
        }
    }

    /// A noop job on five nodes: three with the same change, one with
    /// another, one failed, one skipped, one unchanged.
    pub fn sample_job() -> JobRecord {
        let mut job = JobRecord {
            id: "42".into(),
            what: "psick::puppet_agent".into(),
            noop: true,
            environment: Some("production".into()),
            state: "failed".into(),
            duration: Some(Duration::from_millis(12_500)),
            ..JobRecord::default()
        };
        for n in ["web1", "web2", "web3"] {
            job.add(NodeRecord::new(
                n,
                Outcome::Changed,
                Some(3.25),
                None,
                vec![change("File[/etc/motd]", "{md5}new")],
                0,
            ));
        }
        job.add(NodeRecord::new(
            "db1",
            Outcome::Changed,
            Some(4.0),
            None,
            vec![change("File[/etc/motd]", "{md5}db")],
            1,
        ));
        job.add(NodeRecord::new(
            "web4",
            Outcome::Failed,
            Some(1.0),
            Some(&json!({"kind": "psick/run-failed", "msg": "puppet exited 1: <catalog> & \"more\""})),
            vec![],
            0,
        ));
        job.add(NodeRecord::new(
            "web5",
            Outcome::Skipped,
            None,
            Some(&json!({"kind": "kick/node-skipped", "msg": "the node was not connected"})),
            vec![],
            0,
        ));
        job.add(NodeRecord::new(
            "web6",
            Outcome::Unchanged,
            Some(f64::NAN),
            None,
            vec![],
            0,
        ));
        job
    }

    #[test]
    fn records_count_outcomes_and_group_changes() {
        let job = sample_job();
        assert_eq!(job.summary.total, 7);
        assert_eq!(job.summary.counts.changed, 4);
        assert_eq!(job.drift.groups()[0].nodes, ["web1", "web2", "web3"]);
        assert_eq!(job.nodes[6].duration, None);
        assert_eq!(job.nodes[4].error_kind.as_deref(), Some("psick/run-failed"));
        assert_eq!(job.title(), "job 42: psick::puppet_agent (noop)");
        let many = vec![change("File[/a]", "{md5}x"); CHANGES_KEPT + 5];
        let n = NodeRecord::new("big", Outcome::Changed, None, None, many, 2);
        assert_eq!((n.changes.len(), n.changes_truncated), (CHANGES_KEPT, 7));
    }

    #[test]
    fn reports_go_to_their_files_and_the_step_summary_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let step = dir.path().join("step.md");
        std::fs::write(&step, "earlier step\n").unwrap();
        let t = Targets {
            junit: Some(dir.path().join("junit.xml")),
            summary_md: None,
            step_summary: Some(step.clone()),
        };
        assert!(t.any());
        t.write(&[sample_job()]).unwrap();
        let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
        assert!(xml.contains("<testsuites"));
        let md = std::fs::read_to_string(&step).unwrap();
        assert!(md.starts_with("earlier step\n\n## kick job 42"), "{md}");
        assert!(md.contains("job 42"));

        // --summary-md wins over the step summary, which is left alone.
        let t = Targets {
            summary_md: Some(dir.path().join("summary.md")),
            ..t
        };
        t.write(&[sample_job()]).unwrap();
        assert_eq!(std::fs::read_to_string(&step).unwrap(), md);
        assert!(dir.path().join("summary.md").exists());

        let t = Targets {
            junit: Some(dir.path().join("missing/dir/junit.xml")),
            ..Targets::default()
        };
        let e = t.write(&[sample_job()]).unwrap_err().to_string();
        assert!(e.contains("missing/dir/junit.xml"), "{e}");
        assert!(!Targets::default().any());
    }
}
