//! What following a job produces, in order: the values a [`Reporter`] (the
//! human and JSON renderers, each in its own words) receives. The watcher
//! writes no text itself.

use orchestrator_types::Job;
use serde::Serialize;

use crate::outcome::NodeReport;
use crate::summary::Summary;

/// Receives what the watcher learns, in order, and renders it.
pub trait Reporter {
    /// Renders one event. [`WatchEvent::Progress`] should not fail.
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()>;
}

impl<R: Reporter + ?Sized> Reporter for Box<R> {
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()> {
        (**self).report(event)
    }
}

/// One thing the watcher learned, in the order it learned it.
#[derive(Debug)]
// `Result` moves one report per node straight to the reporter; boxing it
// would only add an allocation per node.
#[allow(clippy::large_enum_variant)]
pub enum WatchEvent<'a> {
    /// The job is known (before any node ended).
    Started(&'a JobInfo),
    /// Counters changed.
    Progress(&'a Progress),
    /// A node ended, reported live (from its event or its record).
    NodeDone(&'a NodeReport),
    /// Something the user should know besides the results.
    Notice(&'a Notice),
    /// The job ended (or, for `kick job show`, is as it is); the node pages
    /// follow.
    ResultsBegin(&'a JobInfo),
    /// One node from the pages; `seen_live` when [`WatchEvent::NodeDone`]
    /// already reported it.
    Result {
        /// The node.
        node: NodeReport,
        /// Reported live before.
        seen_live: bool,
    },
    /// All nodes were reported.
    Finished {
        /// The job as read before its results.
        job: &'a JobInfo,
        /// The counts.
        summary: &'a Summary,
        /// The exit code they give.
        exit_code: u8,
    },
}

/// What the watcher tells the user besides the results; reporters word it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// First Ctrl-C: the orchestrator was asked to stop the job.
    StopRequested {
        /// Job id.
        job: String,
    },
    /// First Ctrl-C: asking the orchestrator to stop failed.
    StopFailed {
        /// Job id.
        job: String,
        /// Why.
        error: String,
    },
    /// Second Ctrl-C: the job is being force-stopped.
    ForceStopRequested {
        /// Job id.
        job: String,
    },
    /// Second Ctrl-C: the force stop failed.
    ForceStopFailed {
        /// Job id.
        job: String,
        /// Why.
        error: String,
    },
    /// Third Ctrl-C: kick stopped following; the job goes on.
    Detached {
        /// Job id.
        job: String,
    },
    /// Someone else (not kick's Ctrl-C) asked the job to stop.
    Stopping {
        /// Job id.
        job: String,
    },
    /// The events endpoint cannot serve this job: kick follows the job's
    /// state and reports the nodes at the end.
    EventsUnavailable {
        /// Job id.
        job: String,
        /// The answer that said so.
        error: String,
    },
    /// The events endpoint kept failing: as for
    /// [`Notice::EventsUnavailable`].
    EventsFailing {
        /// Job id.
        job: String,
        /// The last failure.
        error: String,
    },
    /// Ctrl-C while the results of an ended job were listed.
    ListingInterrupted {
        /// Job id.
        job: String,
    },
    /// `kick job show` of a job that has not ended.
    NotEnded {
        /// Job id.
        job: String,
        /// Its state.
        state: String,
    },
}

/// The `job` object of the JSON output.
#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    /// Job id (a string of digits).
    pub name: String,
    /// Job state.
    pub state: String,
    /// Puppet environment.
    pub environment: Option<String>,
    /// Task name; `null` for deploy jobs.
    pub task: Option<String>,
    /// Whether the job ran in noop mode.
    pub noop: bool,
    /// Seconds, when the job has ended.
    pub duration: Option<f64>,
    /// Nodes in the job.
    #[serde(skip)]
    pub node_count: u64,
    /// `task` or `deploy`.
    #[serde(skip)]
    pub job_type: String,
}

impl JobInfo {
    /// From `GET /jobs/:id`.
    pub fn from_job(job: &Job) -> Self {
        let noop = job.noop()
            || job
                .options
                .get("params")
                .and_then(|p| p.get("noop"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
        let between = |s: &Option<String>, e: &Option<String>| {
            crate::time::between(s.as_deref()?, e.as_deref()?)
        };
        Self {
            name: job.name.clone(),
            state: job.state.as_str().to_owned(),
            environment: job.environment_name().map(str::to_owned),
            task: job.task().map(str::to_owned),
            noop,
            duration: job
                .duration
                .or_else(|| between(&job.started_timestamp, &job.finished_timestamp)),
            node_count: job.node_count,
            job_type: if job.job_type.is_empty() {
                job.command.clone()
            } else {
                job.job_type.clone()
            },
        }
    }

    /// True for a task other than psick::puppet_agent: its results are
    /// shown by default, not only its outcome.
    pub fn is_generic_task(&self) -> bool {
        self.job_type != "deploy"
            && self
                .task
                .as_deref()
                .is_some_and(|t| t != orchestrator_types::psick::PUPPET_AGENT_TASK)
    }

    /// What the job runs, for messages: the task or "puppet".
    pub fn what(&self) -> &str {
        self.task.as_deref().unwrap_or("puppet")
    }
}

/// Live counters for the progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Nodes in the job.
    pub total: u64,
    /// Nodes that ended.
    pub done: u64,
    /// Nodes running now.
    pub running: u64,
    /// Ended nodes that failed, errored, were skipped or stopped.
    pub failed: u64,
}
