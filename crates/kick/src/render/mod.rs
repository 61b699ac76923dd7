//! Turning a job's progress and results into output: [`human`] lines and a
//! summary, one [`json`] document, or [`json`] lines.

pub mod drift;
pub mod human;
pub mod json;
pub mod style;

use std::io::Write;

use orchestrator_types::Job;
use serde::Serialize;

use crate::cli::{Format, OutputArgs, ShowOutput};
use crate::outcome::{NodeReport, Outcome};
use crate::summary::Summary;

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
        Self {
            name: job.name.clone(),
            state: job.state.as_str().to_owned(),
            environment: job.environment_name().map(str::to_owned),
            task: job.task().map(str::to_owned),
            noop,
            duration: job.duration.or_else(|| duration_between(job)),
            node_count: job.node_count,
            job_type: if job.job_type.is_empty() {
                job.command.clone()
            } else {
                job.job_type.clone()
            },
        }
    }

    /// What the job runs, for messages: the task or "puppet".
    pub fn what(&self) -> &str {
        self.task.as_deref().unwrap_or("puppet")
    }
}

fn duration_between(job: &Job) -> Option<f64> {
    let start = crate::time::parse(job.started_timestamp.as_deref()?)?;
    let end = crate::time::parse(job.finished_timestamp.as_deref()?)?;
    Some(end.duration_since(start).ok()?.as_secs_f64())
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

/// Receives what the watcher learns, in order.
pub trait Reporter {
    /// The job is known (before any node ended).
    fn started(&mut self, job: &JobInfo) -> std::io::Result<()>;
    /// Counters changed.
    fn progress(&mut self, p: &Progress);
    /// A node ended (from its event).
    fn node_done(&mut self, node: &NodeReport) -> std::io::Result<()>;
    /// Something the user should know (stderr), e.g. what Ctrl-C did.
    fn notice(&mut self, msg: &str) -> std::io::Result<()>;
    /// The job ended; the node pages follow.
    fn begin_results(&mut self, job: &JobInfo) -> std::io::Result<()>;
    /// One node from the pages; `seen_live` when [`Reporter::node_done`]
    /// already reported it.
    fn result(&mut self, node: NodeReport, seen_live: bool) -> std::io::Result<()>;
    /// Whether [`Reporter::result`] only writes the node as JSON, so that it
    /// may be serialized in advance ([`NodeReport::pre_serialize`]).
    fn wants_json(&self) -> bool {
        false
    }
    /// Whether [`Reporter::result`] shows the output of a node with this
    /// outcome (the output of other nodes is not cleaned or kept).
    fn wants_output(&self, _outcome: Outcome) -> bool {
        true
    }
    /// All nodes were reported.
    fn finish(&mut self, job: &JobInfo, summary: &Summary, exit_code: u8) -> std::io::Result<()>;
}

/// Where output goes, decided once at the edge.
pub struct Io {
    /// Results.
    pub out: Box<dyn Write + Send>,
    /// Progress, notices, hints.
    pub err: Box<dyn Write + Send>,
    /// Colour stdout.
    pub color: bool,
    /// stderr is a terminal (progress bar allowed).
    pub err_tty: bool,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("color", &self.color)
            .field("err_tty", &self.err_tty)
            .finish_non_exhaustive()
    }
}

/// Which outcomes' outputs are printed at the end in human format.
pub fn show_output_selects(show: &[ShowOutput], o: Outcome) -> bool {
    let defaulted = [ShowOutput::Failed, ShowOutput::Changed];
    let show = if show.is_empty() {
        &defaulted[..]
    } else {
        show
    };
    show.iter().any(|s| match s {
        ShowOutput::All => true,
        ShowOutput::None => false,
        ShowOutput::Changed => o == Outcome::Changed,
        ShowOutput::Failed => o.is_bad(),
    })
}

/// The reporter for `--format`.
pub fn reporter(output: &OutputArgs, io: Io) -> Box<dyn Reporter + Send> {
    match output.format {
        Format::Human => Box::new(human::Human::new(io, output)),
        Format::Json => Box::new(json::Json::new(io, false, output.quiet)),
        Format::Jsonl => Box::new(json::Json::new(io, true, output.quiet)),
    }
}
