//! [`Recorder`]: a reporter in front of the one `--format` asked for, which
//! keeps what the CI reports need from each job and writes them once the
//! job has ended.

use super::{JobRecord, NodeRecord, ReportError, Targets};
use crate::watch::Reporter;
use crate::watch::WatchEvent;

/// Passes every event on to `inner`; when reports are wanted, also keeps a
/// [`JobRecord`] per job followed (a rollout follows one per wave, and
/// labels each with [`Recorder::label_next`]).
pub struct Recorder<R> {
    inner: R,
    targets: Targets,
    /// The label of the next job's record.
    label: Option<String>,
    jobs: Vec<JobRecord>,
    /// The last job's results are being listed.
    listing: bool,
    /// Jobs whose results were all listed.
    finished: usize,
}

impl<R: Reporter> Recorder<R> {
    /// In front of `inner`, writing to `targets`.
    pub fn new(inner: R, targets: Targets) -> Self {
        Self {
            inner,
            targets,
            label: None,
            jobs: Vec::new(),
            listing: false,
            finished: 0,
        }
    }

    /// The reporter behind, for what only it knows (a rollout's waves).
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Labels the record of the next job followed (`wave 2/3`).
    pub fn label_next(&mut self, label: impl Into<String>) {
        self.label = Some(label.into());
    }

    /// Writes the reports of the jobs whose results were all listed; a job
    /// kick detached from, or whose listing was cut short, is left out.
    /// Nothing is written when no job got that far.
    pub fn write_reports(&self) -> Result<(), ReportError> {
        if !self.targets.any() || self.finished == 0 {
            return Ok(());
        }
        self.targets.write(&self.jobs[..self.finished])
    }

    fn record(&mut self, event: &WatchEvent<'_>) {
        match event {
            WatchEvent::ResultsBegin(job) => {
                self.jobs.truncate(self.finished);
                let mut rec = JobRecord::new(job);
                rec.label = self.label.take();
                self.jobs.push(rec);
                self.listing = true;
            }
            WatchEvent::Result { node, .. } if self.listing => {
                if let Some(job) = self.jobs.last_mut() {
                    job.add(NodeRecord::new(
                        &node.name,
                        node.outcome,
                        node.duration,
                        node.error.as_ref(),
                        node.changes.clone(),
                        node.changes_truncated,
                    ));
                }
            }
            WatchEvent::Finished { job, .. } if self.listing => {
                if let Some(rec) = self.jobs.last_mut() {
                    rec.update(job);
                }
                self.listing = false;
                self.finished = self.jobs.len();
            }
            _ => {}
        }
    }
}

impl<R: Reporter> Reporter for Recorder<R> {
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()> {
        if self.targets.any() {
            self.record(&event);
        }
        self.inner.report(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::tests::change;
    use crate::outcome::{NodeReport, Outcome, Reading};
    use crate::summary::Summary;
    use crate::watch::JobInfo;
    use orchestrator_types::NodeState;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    /// Counts the events it is handed.
    struct Count(Arc<Mutex<usize>>);

    impl Reporter for Count {
        fn report(&mut self, _: WatchEvent<'_>) -> std::io::Result<()> {
            *self.0.lock().unwrap() += 1;
            Ok(())
        }
    }

    fn job(name: &str) -> JobInfo {
        JobInfo {
            name: name.into(),
            state: "finished".into(),
            environment: Some("production".into()),
            task: Some("psick::puppet_agent".into()),
            noop: true,
            duration: Some(2.0),
            node_count: 1,
            job_type: "task".into(),
        }
    }

    fn node(name: &str, changed: bool) -> NodeReport {
        let result = json!({"status": if changed {"changed"} else {"unchanged"}, "noop": true});
        let mut r = NodeReport::new(Reading {
            name: name.into(),
            state: NodeState::Finished,
            duration: Some(1.5),
            payload: Some(&result),
            message: None,
            job_noop: true,
        });
        if changed {
            r.changes = vec![change("File[/etc/motd]", "{md5}new")];
        }
        r
    }

    fn run_job(rec: &mut Recorder<Count>, name: &str, finish: bool) {
        let info = job(name);
        rec.report(WatchEvent::Started(&info)).unwrap();
        rec.report(WatchEvent::ResultsBegin(&info)).unwrap();
        for (n, changed) in [("a", true), ("b", false)] {
            rec.report(WatchEvent::Result {
                node: node(n, changed),
                seen_live: false,
            })
            .unwrap();
        }
        if finish {
            let summary = Summary::default();
            rec.report(WatchEvent::Finished {
                job: &info,
                summary: &summary,
                exit_code: 2,
            })
            .unwrap();
        }
    }

    #[test]
    fn finished_jobs_are_reported_and_every_event_passed_on() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(0));
        let targets = Targets {
            junit: Some(dir.path().join("j.xml")),
            ..Targets::default()
        };
        let mut rec = Recorder::new(Count(seen.clone()), targets);
        run_job(&mut rec, "7", true);
        rec.label_next("wave 2/2");
        run_job(&mut rec, "8", true);
        // A third job whose listing was cut short is left out.
        run_job(&mut rec, "9", false);
        assert_eq!(*seen.lock().unwrap(), 3 * 4 + 2);
        rec.write_reports().unwrap();
        let xml = std::fs::read_to_string(dir.path().join("j.xml")).unwrap();
        assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
        assert!(!xml.contains("job 9"));
        assert!(
            xml.contains("name=\"wave 2/2, job 8: psick::puppet_agent (noop)\""),
            "{xml}"
        );
        assert_eq!(*rec.inner_mut().0.lock().unwrap(), 3 * 4 + 2);
        assert_eq!(rec.jobs[0].summary.get(Outcome::Changed), 1);
        assert_eq!(rec.jobs[0].drift.groups()[0].nodes, ["a"]);
    }

    #[test]
    fn nothing_is_written_before_a_job_ended_or_without_targets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.xml");
        let targets = Targets {
            junit: Some(path.clone()),
            ..Targets::default()
        };
        let mut rec = Recorder::new(Count(Arc::default()), targets);
        run_job(&mut rec, "7", false);
        rec.write_reports().unwrap();
        assert!(!path.exists());
        let mut rec = Recorder::new(Count(Arc::default()), Targets::default());
        run_job(&mut rec, "7", true);
        assert!(rec.jobs.is_empty());
        rec.write_reports().unwrap();
    }
}
