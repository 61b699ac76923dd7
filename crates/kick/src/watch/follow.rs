//! The poll loop that follows one job until it ends: events as they come,
//! the job's state when events are unavailable, Ctrl-C escalation.

use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime};

use orchestrator_types::{Event, EventType, NodeState};
use serde_json::Value;

use super::interrupts::{Escalation, Interrupts, Press};
use super::retry::gave_up;
use super::{JobInfo, Notice, Progress, WatchConfig, WatchEvent, poll_interval};
use crate::api::{Api, ErrorClass, classify};
use crate::error::Error;
use crate::outcome::NodeReport;

/// How long after its last node ended a job is polled at the shortest
/// interval for its own end, which normally follows at once.
const ENDING_SOON: std::time::Duration = std::time::Duration::from_secs(2);
use super::Reporter;

/// Consecutive failed event polls after which kick follows the job instead.
const EVENT_FAILURES_BEFORE_FALLBACK: u32 = 5;

/// How following a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Followed {
    /// The job ended.
    Ended,
    /// The user detached (third Ctrl-C).
    Detached,
}

/// What is known about one job while it is followed; only bounded state
/// is kept per node.
pub(super) struct LiveJob {
    pub(super) job: String,
    noop: bool,
    is_task: bool,
    pub(super) progress: Progress,
    /// Names of nodes reported live; the only per-node state kept.
    pub(super) printed: HashSet<String>,
    /// Nodes running now, with their start time (bounded by concurrency).
    running: HashMap<String, Option<SystemTime>>,
    /// Nodes whose end event carried no result, with that event's type and
    /// the lookups tried (always fewer than [`super::lookup::LOOKUPS`]):
    /// their records are read to report them live.
    pub(super) awaiting: HashMap<String, (EventType, u8)>,
    cursor: Option<u64>,
    pub(super) escalation: Escalation,
}

impl LiveJob {
    pub(super) fn new(job_id: &str, info: &JobInfo) -> LiveJob {
        LiveJob {
            job: job_id.to_owned(),
            noop: info.noop,
            is_task: info.job_type != "deploy",
            progress: Progress {
                total: info.node_count,
                ..Progress::default()
            },
            printed: HashSet::new(),
            running: HashMap::new(),
            awaiting: HashMap::new(),
            cursor: None,
            escalation: Escalation::default(),
        }
    }

    pub(super) fn noop(&self) -> bool {
        self.noop
    }

    /// Polls until the job ends or the user detaches.
    pub(super) async fn follow<A: Api>(
        &mut self,
        api: &A,
        rep: &mut dyn Reporter,
        interrupts: &mut Interrupts,
        cfg: &WatchConfig,
    ) -> Result<Followed, Error> {
        let mut use_events = true;
        let mut event_failures = 0u32;
        let watching = Instant::now();
        let mut last_activity = Instant::now();
        let mut last_ok = Instant::now();
        let mut last_job_check = Instant::now();
        let mut all_reported_at: Option<Instant> = None;
        loop {
            // The interval runs from the start of one poll to the start of the next, so
            // the time a poll takes (the request, printing its nodes) is not added to it.
            let poll_started = Instant::now();
            let mut active = false;
            let mut ended = false;
            let mut failure = None;
            if use_events {
                match api.events(&self.job, self.cursor).await {
                    Ok(list) => {
                        last_ok = Instant::now();
                        event_failures = 0;
                        active = !list.items.is_empty();
                        for ev in list.items {
                            ended |= self.event(ev, rep)?;
                        }
                        if !ended && !self.awaiting.is_empty() {
                            self.report_awaiting(api, rep, cfg).await?;
                        }
                        rep.report(WatchEvent::Progress(&self.progress))?;
                    }
                    Err(e) => match classify(&e) {
                        ErrorClass::Fatal => return Err(gave_up(&self.job, e)),
                        ErrorClass::Unavailable => {
                            use_events = false;
                            self.notice(
                                rep,
                                Notice::EventsUnavailable {
                                    job: self.job.clone(),
                                    error: e.to_string(),
                                },
                            )?;
                        }
                        ErrorClass::Transient => {
                            event_failures += 1;
                            // The job endpoint may still answer when the
                            // events one keeps timing out.
                            if event_failures >= EVENT_FAILURES_BEFORE_FALLBACK {
                                use_events = false;
                                self.notice(
                                    rep,
                                    Notice::EventsFailing {
                                        job: self.job.clone(),
                                        error: e.to_string(),
                                    },
                                )?;
                            }
                            failure = Some(e);
                        }
                    },
                }
            }
            if self.progress.total > 0
                && self.progress.done >= self.progress.total
                && all_reported_at.is_none()
            {
                all_reported_at = Some(Instant::now());
            }
            // Every node has ended: the job's own end is due at once, and the next wave of
            // a rollout waits for it.
            let ending_soon = all_reported_at.is_some_and(|t| t.elapsed() < ENDING_SOON);
            let check_job = !use_events
                || (!active && last_job_check.elapsed() >= cfg.job_check)
                || ending_soon
                || failure.is_some();
            if !ended && check_job {
                last_job_check = Instant::now();
                match api.job(&self.job).await {
                    Ok(job) => {
                        last_ok = Instant::now();
                        if !use_events {
                            active |= self.progress_from_job(&job);
                            rep.report(WatchEvent::Progress(&self.progress))?;
                        }
                        ended = job.state.is_terminal();
                    }
                    Err(e) => match classify(&e) {
                        ErrorClass::Fatal => return Err(gave_up(&self.job, e)),
                        _ => failure = Some(e),
                    },
                }
            }
            if ended {
                return Ok(Followed::Ended);
            }
            let failed = failure.is_some();
            if let Some(e) = failure {
                // The polls are the retries here: the same budget as for
                // any other call of the watcher.
                if last_ok.elapsed() >= cfg.give_up {
                    return Err(gave_up(&self.job, e));
                }
                tracing::debug!("poll failed, will retry: {e}");
            }
            let interval = if failed {
                cfg.poll_max
            } else if ending_soon {
                cfg.poll_min
            } else {
                if active {
                    last_activity = Instant::now();
                }
                poll_interval(cfg, watching.elapsed(), last_activity.elapsed())
            };
            tokio::select! {
                biased;
                () = interrupts.next() => {
                    if self.interrupted(api, rep).await? {
                        return Ok(Followed::Detached);
                    }
                    // Presses made while the stop request was under way
                    // count at once: a quick triple Ctrl-C detaches.
                    while interrupts.try_next() {
                        if self.interrupted(api, rep).await? {
                            return Ok(Followed::Detached);
                        }
                    }
                    last_activity = Instant::now();
                }
                () = tokio::time::sleep_until((poll_started + interval).into()) => {}
            }
        }
    }

    fn notice(&self, rep: &mut dyn Reporter, notice: Notice) -> std::io::Result<()> {
        rep.report(WatchEvent::Notice(&notice))
    }

    /// Handles one Ctrl-C; true means detach.
    async fn interrupted<A: Api>(
        &mut self,
        api: &A,
        rep: &mut dyn Reporter,
    ) -> Result<bool, Error> {
        match self.escalation.press(api, &self.job).await {
            Press::Stopping(notice) => {
                self.notice(rep, notice)?;
                Ok(false)
            }
            Press::Detach => Ok(true),
        }
    }

    /// Applies one event; true when it ends the job.
    fn event(&mut self, ev: Event, rep: &mut dyn Reporter) -> Result<bool, Error> {
        let n = ev.number();
        if let Some(c) = self.cursor
            && n != 0
            && n < c
        {
            // A server that ignores `start` would replay old events.
            return Ok(false);
        }
        self.cursor = Some(self.cursor.unwrap_or(0).max(n + 1));
        match ev.event_type {
            EventType::NodeRunning => {
                if let Some(node) = ev.details.node {
                    self.running.insert(node, crate::time::parse(&ev.timestamp));
                    self.progress.running = self.running.len() as u64;
                }
            }
            t @ (EventType::NodeFinished
            | EventType::NodeFailed
            | EventType::NodeErrored
            | EventType::NodeSkipped) => {
                let Some(node) = ev.details.node else {
                    return Ok(false);
                };
                let started = self.running.remove(&node).flatten();
                self.progress.running = self.running.len() as u64;
                if self.printed.contains(&node) {
                    return Ok(false);
                }
                let duration = started.and_then(|s| crate::time::seconds(s, &ev.timestamp));
                let empty = !matches!(&ev.details.detail, Value::Object(m) if !m.is_empty());
                self.progress.done += 1;
                if self.is_task
                    && empty
                    && matches!(t, EventType::NodeFinished | EventType::NodeFailed)
                {
                    // No result in the event (PE does not document that
                    // task events carry one): the node is reported from its
                    // record, read after this poll, or when the results are
                    // collected.
                    if t == EventType::NodeFailed {
                        self.progress.failed += 1;
                    }
                    self.awaiting.insert(node, (t, 0));
                    return Ok(false);
                }
                let report = NodeReport::from_event(
                    node,
                    t,
                    &ev.details.detail,
                    &ev.message,
                    duration,
                    self.noop,
                );
                self.report_live(report, false, rep)?;
            }
            EventType::JobStopping => {
                if !self.escalation.pressed() {
                    self.notice(
                        rep,
                        Notice::Stopping {
                            job: self.job.clone(),
                        },
                    )?;
                }
            }
            EventType::JobFinished | EventType::JobAborted => return Ok(true),
            EventType::Unknown => {}
        }
        Ok(false)
    }

    /// Reports a node that ended, counting it as failed unless its
    /// `node_failed` event already did.
    pub(super) fn report_live(
        &mut self,
        report: NodeReport,
        failure_counted: bool,
        rep: &mut dyn Reporter,
    ) -> Result<(), Error> {
        if report.outcome.is_bad() && !failure_counted {
            self.progress.failed += 1;
        }
        rep.report(WatchEvent::NodeDone(&report))?;
        self.printed.insert(report.name);
        Ok(())
    }

    /// Counters from `node_states` when events are unavailable; true if they moved.
    fn progress_from_job(&mut self, job: &orchestrator_types::Job) -> bool {
        let before = self.progress;
        let states = job.node_states.as_ref();
        let count = |s: NodeState| states.and_then(|m| m.get(&s)).copied().unwrap_or(0);
        self.progress.total = job.node_count.max(self.progress.total);
        self.progress.running = count(NodeState::Running) + count(NodeState::Stopping);
        self.progress.failed = [
            NodeState::Failed,
            NodeState::Errored,
            NodeState::Skipped,
            NodeState::Stopped,
        ]
        .into_iter()
        .map(count)
        .sum();
        self.progress.done = states
            .into_iter()
            .flatten()
            .filter(|(s, _)| s.is_terminal())
            .map(|(_, n)| n)
            .sum();
        before != self.progress
    }
}
