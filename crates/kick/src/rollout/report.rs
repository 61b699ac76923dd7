//! A rollout's output: what the follower reports about each wave's job, put in the terms of
//! the whole rollout. Human output keeps kick's usual reporter for the node lines and each
//! wave's results, adds a header per wave, counts the progress bar over the whole rollout and
//! ends with a summary over all waves; JSON and JSON lines are written here, with the rollout
//! id, each wave's job and per node its wave.
//!
//! The reporter also keeps the failure budget: when the failures over the rollout pass it, it
//! presses the follower's Ctrl-C once, which stops the running wave through `/command/stop`
//! (running nodes finish), and the rollout starts no further wave.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use crate::cli::{Format, OutputArgs};
use crate::outcome::{NodeReport, Outcome};
use crate::render::Streams;
use crate::render::style::{self, paint};
use crate::summary::Summary;
use crate::watch::Reporter;
use crate::watch::{Notice, Progress, WatchEvent};

/// Why a node never started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStarted {
    /// The failure budget was reached (or the canary failed).
    Budget,
    /// The user stopped the rollout.
    Stopped,
}

impl NotStarted {
    /// The words used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStarted::Budget => "not started: budget reached",
            NotStarted::Stopped => "not started: stopped",
        }
    }
}

/// A writer several owners write through (the wrapped reporter and this one).
#[derive(Clone)]
pub struct Shared(Arc<Mutex<Box<dyn Write + Send>>>);

impl Shared {
    fn new(w: Box<dyn Write + Send>) -> Self {
        Self(Arc::new(Mutex::new(w)))
    }
}

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("output lock poisoned"))?
            .write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("output lock poisoned"))?
            .flush()
    }
}

/// What a wave was, for the closing summary and the JSON document.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WaveSummary {
    /// 1-based.
    pub wave: usize,
    /// The wave's job, if it was submitted.
    pub job: Option<String>,
    /// The wave's `--retry` follow-up jobs, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<String>,
    /// Nodes in the wave.
    pub nodes: usize,
    /// The canary wave.
    pub canary: bool,
    /// `done`, `not_started`, or `running` (detached).
    pub state: &'static str,
    /// Counts per outcome of this wave.
    pub summary: Summary,
}

enum Sink {
    Human(Box<dyn Reporter + Send>),
    Json { lines: bool, first_node: bool },
}

/// The reporter of a whole rollout.
pub struct RolloutReporter {
    sink: Sink,
    out: Shared,
    err: Shared,
    color: bool,
    quiet: bool,
    id: String,
    total: u64,
    waves: usize,
    /// The wave being followed (1-based) and whether it is the canary.
    wave: usize,
    canary: bool,
    done_before: u64,
    bad_before: u64,
    /// Failures tolerated; failures of earlier waves; names failed in this wave.
    budget: Option<usize>,
    failures_before: usize,
    failed_now: HashSet<String>,
    /// Pressing this stops the running wave.
    trip: UnboundedSender<()>,
    tripped: bool,
    /// Retries are left for this wave: its transient failures do not count yet.
    pub retries_left: bool,
    /// The attempt being followed (1: the wave's own job).
    attempt: u32,
    /// The current wave's retry jobs so far.
    retry_jobs: Vec<String>,
    /// This attempt's nodes that failed for a transient reason, with their outcome.
    transient: Vec<(String, Outcome)>,
    /// The whole rollout's counts.
    pub summary: Summary,
    /// Each wave followed so far.
    pub wave_summaries: Vec<WaveSummary>,
    buf: Vec<u8>,
}

impl RolloutReporter {
    /// A reporter for `output` over `streams`, for rollout `id` of `total` nodes in `waves`
    /// waves.
    pub fn new(
        output: &OutputArgs,
        streams: Streams,
        id: &str,
        total: u64,
        waves: usize,
        budget: Option<usize>,
        trip: UnboundedSender<()>,
    ) -> Self {
        let color = streams.color(output.color);
        let (out_tty, err_tty) = (streams.out_tty, streams.err_tty);
        let out = Shared::new(streams.out);
        let err = Shared::new(streams.err);
        let sink = match output.format {
            Format::Human => Sink::Human(crate::render::reporter(
                output,
                Streams {
                    out: Box::new(out.clone()),
                    err: Box::new(err.clone()),
                    out_tty,
                    err_tty,
                },
            )),
            Format::Json => Sink::Json {
                lines: false,
                first_node: true,
            },
            Format::Jsonl => Sink::Json {
                lines: true,
                first_node: true,
            },
        };
        Self {
            sink,
            out,
            err,
            color,
            quiet: output.quiet,
            id: id.to_owned(),
            total,
            waves,
            wave: 0,
            canary: false,
            done_before: 0,
            bad_before: 0,
            budget,
            failures_before: 0,
            failed_now: HashSet::new(),
            trip,
            tripped: false,
            retries_left: false,
            attempt: 1,
            retry_jobs: Vec::new(),
            transient: Vec::new(),
            summary: Summary::default(),
            wave_summaries: Vec::new(),
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Failures over the whole rollout so far (failed and errored nodes).
    pub fn failures(&self) -> usize {
        self.failures_before + self.failed_now.len()
    }

    /// Whether this reporter stopped the running wave for the budget.
    pub fn budget_tripped(&self) -> bool {
        self.tripped
    }

    /// A wave that ended before this run (on resume): counted, not shown again.
    pub fn earlier_wave(
        &mut self,
        wave: usize,
        job: Option<&str>,
        nodes: usize,
        canary: bool,
        retries: &[String],
        summary: Summary,
    ) {
        self.done_before += nodes as u64;
        self.bad_before += summary.bad();
        add_summary(&mut self.summary, &summary);
        self.wave_summaries.push(WaveSummary {
            wave,
            job: job.map(str::to_owned),
            retries: retries.to_vec(),
            nodes,
            canary,
            state: "done",
            summary,
        });
    }

    /// The earlier waves' failures (from the state file, on resume).
    pub fn set_failures_before(&mut self, n: usize) {
        self.failures_before = n;
    }

    /// A line on stderr, unless `--quiet`.
    pub fn say(&mut self, text: &str) -> std::io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        writeln!(self.err, "{text}")?;
        self.err.flush()
    }

    /// The rollout was planned: its first lines.
    pub fn planned(&mut self, nodes: u64, waves: usize, resumed: bool) -> std::io::Result<()> {
        if let Sink::Json { lines: true, .. } = self.sink {
            let v = json!({"type": "rollout", "rollout": self.id, "nodes": nodes, "waves": waves, "resumed": resumed});
            return self.line(&v);
        }
        Ok(())
    }

    /// Wave `wave` (1-based) of `nodes` nodes starts as `job`.
    pub fn begin_wave(
        &mut self,
        wave: usize,
        job: &str,
        nodes: usize,
        canary: bool,
    ) -> std::io::Result<()> {
        self.wave = wave;
        self.canary = canary;
        self.attempt = 1;
        self.retry_jobs.clear();
        self.transient.clear();
        self.failed_now.clear();
        match self.sink {
            Sink::Human(_) => {
                let what = if canary { " (canary)" } else { "" };
                let s = if nodes == 1 { "" } else { "s" };
                let head = format!(
                    "== Rollout {} wave {wave}/{}{what}: {nodes} node{s}, job {job} ==",
                    self.id, self.waves
                );
                if !self.quiet {
                    writeln!(self.err, "{}", paint(self.color, style::bold(), &head))?;
                }
                Ok(())
            }
            Sink::Json { lines: true, .. } => {
                let v = json!({"type": "wave", "rollout": self.id, "wave": wave, "waves": self.waves, "job": job, "node_count": nodes, "canary": canary});
                self.line(&v)
            }
            Sink::Json { .. } => Ok(()),
        }
    }

    /// Attempt `attempt` (2 and up) of the current wave: `nodes` nodes as `job`.
    pub fn begin_retry(&mut self, attempt: u32, job: &str, nodes: usize) -> std::io::Result<()> {
        self.attempt = attempt;
        self.retry_jobs.push(job.to_owned());
        self.transient.clear();
        match self.sink {
            Sink::Human(_) => {
                let s = if nodes == 1 { "" } else { "s" };
                self.say(&format!(
                    "== Rollout {} wave {}/{}, attempt {attempt}: {nodes} node{s} that failed for a transient reason, job {job} ==",
                    self.id, self.wave, self.waves
                ))
            }
            Sink::Json { lines: true, .. } => {
                let v = json!({"type": "retry", "rollout": self.id, "wave": self.wave, "attempt": attempt, "job": job, "node_count": nodes});
                self.line(&v)
            }
            Sink::Json { .. } => Ok(()),
        }
    }

    /// The nodes of the attempt just followed that failed for a transient reason.
    pub fn take_transient(&mut self) -> Vec<(String, Outcome)> {
        std::mem::take(&mut self.transient)
    }

    /// The wave's job ended with `summary` (its nodes' outcomes).
    pub fn end_wave(&mut self, job: &str, nodes: usize, summary: Summary, state: &'static str) {
        self.done_before += nodes as u64;
        self.bad_before += summary.bad();
        self.failures_before += self.failed_now.len();
        self.failed_now.clear();
        add_summary(&mut self.summary, &summary);
        self.wave_summaries.push(WaveSummary {
            wave: self.wave,
            job: Some(job.to_owned()),
            retries: std::mem::take(&mut self.retry_jobs),
            nodes,
            canary: self.canary,
            state,
            summary,
        });
    }

    /// The end of the rollout: the nodes never started, then the closing summary.
    pub fn finish_rollout(
        &mut self,
        not_started: &[(usize, Vec<String>, bool)],
        why: Option<NotStarted>,
        status: &str,
        exit_code: u8,
    ) -> std::io::Result<()> {
        let why = why.unwrap_or(NotStarted::Stopped);
        for (wave, nodes, canary) in not_started {
            for _ in nodes {
                self.summary.add(Outcome::Skipped);
            }
            self.wave_summaries.push(WaveSummary {
                wave: *wave,
                job: None,
                retries: Vec::new(),
                nodes: nodes.len(),
                canary: *canary,
                state: "not_started",
                summary: {
                    let mut s = Summary::default();
                    nodes.iter().for_each(|_| s.add(Outcome::Skipped));
                    s
                },
            });
        }
        match self.sink {
            Sink::Human(_) => self.finish_human(not_started, why, status),
            Sink::Json { lines, .. } => {
                for (wave, nodes, _) in not_started {
                    for n in nodes {
                        let v = json!({
                            "name": n, "state": "skipped", "outcome": "skipped", "wave": wave,
                            "duration": null, "exitcode": null, "resources": null, "output": null,
                            "error": {"kind": "kick/not-started", "msg": why.as_str()}, "result": null,
                        });
                        if lines {
                            let mut line = json!({"type": "node"});
                            if let (Some(l), Some(o)) = (line.as_object_mut(), v.as_object()) {
                                l.extend(o.clone());
                            }
                            self.line(&line)?;
                        } else {
                            self.json_node_open()?;
                            serde_json::to_writer(&mut self.out, &v)?;
                        }
                    }
                }
                let rollout = json!({
                    "id": self.id, "status": status, "waves": self.wave_summaries,
                    "failures": self.failures(), "max_failures": self.budget,
                });
                if lines {
                    let v = json!({"type": "summary", "rollout": rollout, "summary": self.summary, "exit_code": exit_code});
                    self.line(&v)
                } else {
                    if let Sink::Json {
                        first_node: true, ..
                    } = self.sink
                    {
                        self.json_node_open()?;
                        self.out.write_all(b"]")?;
                    } else {
                        self.out.write_all(b"]")?;
                    }
                    self.out.write_all(b",\"rollout\":")?;
                    serde_json::to_writer(&mut self.out, &rollout)?;
                    self.out.write_all(b",\"summary\":")?;
                    serde_json::to_writer(&mut self.out, &self.summary)?;
                    writeln!(self.out, ",\"exit_code\":{exit_code}}}")?;
                    self.out.flush()
                }
            }
        }
    }

    fn finish_human(
        &mut self,
        not_started: &[(usize, Vec<String>, bool)],
        why: NotStarted,
        status: &str,
    ) -> std::io::Result<()> {
        let mut text = String::new();
        if !self.quiet && not_started.iter().any(|(_, n, _)| !n.is_empty()) {
            text.push('\n');
            for (_, nodes, _) in not_started {
                for n in nodes {
                    text.push_str(&format!(
                        "{n:<28}  {}  {}\n",
                        paint(self.color, style::outcome(Outcome::Skipped), "skipped  "),
                        paint(self.color, style::dim(), &format!("({})", why.as_str()))
                    ));
                }
            }
        }
        let counts: Vec<String> = Outcome::ALL
            .iter()
            .filter(|o| self.summary.get(**o) > 0)
            .map(|o| {
                paint(
                    self.color,
                    style::outcome(*o),
                    &format!("{} {}", self.summary.get(*o), o.as_str()),
                )
            })
            .collect();
        let ran = self
            .wave_summaries
            .iter()
            .filter(|w| w.job.is_some())
            .count();
        let nodes = if self.summary.total == 1 {
            "node"
        } else {
            "nodes"
        };
        text.push_str(&format!(
            "\nRollout {} {status}: {ran} of {} waves run, {} {nodes}",
            self.id, self.waves, self.summary.total
        ));
        if !counts.is_empty() {
            text.push_str(": ");
            text.push_str(&counts.join(", "));
        }
        if let Some(b) = self.budget {
            text.push_str(&format!(" ({} failures, {b} allowed)", self.failures()));
        }
        text.push('\n');
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn line(&mut self, v: &serde_json::Value) -> std::io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, v)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }

    /// Opens the document on the first node, and separates the next ones.
    fn json_node_open(&mut self) -> std::io::Result<()> {
        if let Sink::Json { first_node, .. } = &mut self.sink {
            if *first_node {
                *first_node = false;
                self.out.write_all(b"{\"rollout_id\":")?;
                serde_json::to_writer(&mut self.out, &self.id)?;
                self.out.write_all(b",\"nodes\":[")?;
            } else {
                self.out.write_all(b",")?;
            }
        }
        Ok(())
    }

    /// The node's JSON object with `wave` (and `type`, for lines) first.
    fn node_json(&mut self, node: &NodeReport, lines: bool) -> std::io::Result<Vec<u8>> {
        let body: Vec<u8> = match &node.json {
            Some(b) => b.clone(),
            None => serde_json::to_vec(node)?,
        };
        let mut v = Vec::with_capacity(body.len() + 32);
        if lines {
            v.extend_from_slice(b"{\"type\":\"node\",");
        } else {
            v.push(b'{');
        }
        v.extend_from_slice(
            format!(
                "\"rollout\":{},\"wave\":{},\"attempt\":{},",
                json!(self.id),
                self.wave,
                self.attempt
            )
            .as_bytes(),
        );
        v.extend_from_slice(body.get(1..).unwrap_or_default());
        Ok(v)
    }

    fn count_failure(&mut self, node: &NodeReport) {
        if transient(node) {
            self.transient.push((node.name.clone(), node.outcome));
            if self.retries_left {
                return;
            }
        }
        if matches!(node.outcome, Outcome::Failed | Outcome::Errored) {
            self.failed_now.insert(node.name.clone());
        }
        let over = match self.budget {
            Some(b) => self.failures() > b,
            None => false,
        };
        // A failing canary node stops the canary wave at once.
        let canary_failed = self.canary && node.outcome.is_bad();
        if (over || canary_failed) && !self.tripped {
            self.tripped = true;
            let _ = self.trip.send(());
        }
    }
}

/// Patterns of a Puppet run that could not reach its server (puppet's own words).
const CONNECTION_FAILURES: [&str; 9] = [
    "connection refused",
    "connect(2)",
    "failed to open tcp connection",
    "could not connect",
    "connection reset",
    "no route to host",
    "network is unreachable",
    "name or service not known",
    "temporary failure in name resolution",
];

/// Whether a node failed for a reason that may pass by itself: its agent was busy
/// (`psick/agent-locked`), its run could not reach the Puppet server (`psick/run-failed`
/// with a connection failure), or it was not connected to the orchestrator. Resource
/// failures and catalog errors are not.
pub fn transient(node: &NodeReport) -> bool {
    if !node.outcome.is_bad() || node.outcome == Outcome::Skipped {
        return false;
    }
    let kind = node
        .error
        .as_ref()
        .and_then(|e| e.get("kind"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let text = node
        .error
        .as_ref()
        .and_then(|e| e.get("msg"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    match kind {
        "psick/agent-locked" => true,
        "psick/run-failed" => CONNECTION_FAILURES.iter().any(|p| text.contains(p)),
        _ => node.outcome == Outcome::Errored && text.contains("not connected"),
    }
}

fn add_summary(total: &mut Summary, s: &Summary) {
    for o in Outcome::ALL {
        for _ in 0..s.get(o) {
            total.add(o);
        }
    }
}

impl Reporter for RolloutReporter {
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()> {
        match event {
            WatchEvent::Progress(p) => {
                let whole = Progress {
                    total: self.total,
                    done: self.done_before + p.done,
                    running: p.running,
                    failed: self.bad_before + p.failed,
                };
                if let Sink::Human(h) = &mut self.sink {
                    h.report(WatchEvent::Progress(&whole))?;
                }
                Ok(())
            }
            WatchEvent::NodeDone(node) => {
                self.count_failure(node);
                match &mut self.sink {
                    Sink::Human(h) => h.report(WatchEvent::NodeDone(node)),
                    Sink::Json { lines: true, .. } => {
                        let v = self.node_json(node, true)?;
                        self.out.write_all(&v)?;
                        self.out.write_all(b"\n")?;
                        self.out.flush()
                    }
                    Sink::Json { .. } => Ok(()),
                }
            }
            WatchEvent::Notice(n) => {
                let text = match n {
                    Notice::StopRequested { job } if self.tripped => {
                        let why = if self.canary && self.budget.is_none_or(|b| self.failures() <= b)
                        {
                            "a canary node failed".to_owned()
                        } else {
                            format!(
                                "the failure budget is reached ({} failures, {} allowed)",
                                self.failures(),
                                self.budget.unwrap_or(0)
                            )
                        };
                        format!(
                            "Rollout {}: {why}: stopped wave {}/{} (job {job}); running nodes finish, no further wave starts. Ctrl-C force-stops.",
                            self.id, self.wave, self.waves
                        )
                    }
                    other => crate::render::notice::text(other),
                };
                if !self.quiet {
                    writeln!(self.err, "{text}")?;
                }
                Ok(())
            }
            WatchEvent::Result { node, seen_live } => {
                if !seen_live {
                    self.count_failure(&node);
                }
                match &mut self.sink {
                    Sink::Human(h) => h.report(WatchEvent::Result { node, seen_live }),
                    Sink::Json { lines: true, .. } => {
                        if !seen_live {
                            let v = self.node_json(&node, true)?;
                            self.out.write_all(&v)?;
                            self.out.write_all(b"\n")?;
                            self.out.flush()?;
                        }
                        Ok(())
                    }
                    Sink::Json { .. } => {
                        let v = self.node_json(&node, false)?;
                        self.json_node_open()?;
                        self.out.write_all(&v)
                    }
                }
            }
            WatchEvent::Finished {
                job,
                summary,
                exit_code,
            } => match &mut self.sink {
                Sink::Human(h) => h.report(WatchEvent::Finished {
                    job,
                    summary,
                    exit_code,
                }),
                Sink::Json { lines: true, .. } => {
                    let v = json!({"type": "wave_summary", "rollout": self.id, "wave": self.wave, "job": job, "summary": summary, "exit_code": exit_code});
                    self.line(&v)
                }
                Sink::Json { .. } => Ok(()),
            },
            other => match &mut self.sink {
                Sink::Human(h) => h.report(other),
                Sink::Json { .. } => Ok(()),
            },
        }
    }
}
