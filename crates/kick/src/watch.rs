//! Following a job until it ends, then collecting its nodes' results.
//!
//! Progress comes from `GET /jobs/:id/events` with the cursor `start` = last
//! event id + 1, polled quickly at first and backing off to at most
//! [`WatchConfig::poll_max`] while nothing happens. Each node's line is
//! reported as soon as its `node_*` event arrives. When the events endpoint is
//! unavailable (404, 5xx, garbage), kick follows `GET /jobs/:id` instead and
//! reports the nodes at the end. Once the job has ended, the nodes are read
//! page by page; only names of nodes already reported are kept between
//! pages, never their outputs.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use orchestrator_types::{Event, EventType, NodeState};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::{Api, Failure, classify};
use crate::error::Error;
use crate::outcome::NodeReport;
use crate::render::{JobInfo, Progress, Reporter};
use crate::summary::{EXIT_DETACHED, Summary};

/// Polling and paging knobs.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// First poll interval, used again whenever something happens.
    pub poll_min: Duration,
    /// Longest interval while nothing happens.
    pub poll_max: Duration,
    /// Nodes per page when collecting results.
    pub page_size: u64,
    /// Give up after this long without any successful answer.
    pub give_up: Duration,
    /// While events are quiet, also check the job's state this often (in
    /// case the server never sends `job_finished`).
    pub job_check: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            poll_min: Duration::from_millis(50),
            poll_max: Duration::from_secs(1),
            page_size: 200,
            give_up: Duration::from_secs(60),
            job_check: Duration::from_secs(5),
        }
    }
}

/// Ctrl-C presses, delivered by the binary's signal handler or by a test.
#[derive(Debug, Default)]
pub struct Interrupts(Option<mpsc::UnboundedReceiver<()>>);

impl Interrupts {
    /// No interrupts will ever come.
    pub fn none() -> Self {
        Self(None)
    }

    /// A sender to press Ctrl-C with, and the receiving end.
    pub fn channel() -> (mpsc::UnboundedSender<()>, Self) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, Self(Some(rx)))
    }

    /// Waits for the next press; never returns once the sender is gone.
    async fn next(&mut self) {
        if let Some(rx) = &mut self.0 {
            if rx.recv().await.is_some() {
                return;
            }
            self.0 = None;
        }
        std::future::pending::<()>().await;
    }
}

/// Follows job `job_id` to its end and reports it; returns the exit code
/// (0, 2, 4, 6, or 130 when detached by a third Ctrl-C).
pub async fn watch<A: Api>(
    api: &A,
    job_id: &str,
    rep: &mut dyn Reporter,
    interrupts: &mut Interrupts,
    cfg: &WatchConfig,
) -> Result<u8, Error> {
    let job = persist(cfg, job_id, || api.job(job_id)).await?;
    let info = JobInfo::from_job(&job);
    rep.started(&info)?;
    let mut w = Watcher {
        job: job_id.to_owned(),
        noop: info.noop,
        is_task: info.job_type != "deploy",
        progress: Progress {
            total: info.node_count,
            ..Progress::default()
        },
        printed: HashSet::new(),
        running: HashMap::new(),
        cursor: None,
        stop_presses: 0,
    };
    if !job.state.is_terminal() && w.follow(api, rep, interrupts, cfg).await? {
        rep.notice(&format!(
            "Detached from job {job_id}; it goes on without kick. Reattach with `kick job watch {job_id}`."
        ))?;
        return Ok(EXIT_DETACHED);
    }
    w.collect(api, rep, cfg).await
}

struct Watcher {
    job: String,
    noop: bool,
    is_task: bool,
    progress: Progress,
    /// Names of nodes reported live; the only per-node state kept.
    printed: HashSet<String>,
    /// Nodes running now, with their start time (bounded by concurrency).
    running: HashMap<String, Option<SystemTime>>,
    cursor: Option<u64>,
    stop_presses: u32,
}

impl Watcher {
    /// Polls until the job ends; true when the user detached.
    async fn follow<A: Api>(
        &mut self,
        api: &A,
        rep: &mut dyn Reporter,
        interrupts: &mut Interrupts,
        cfg: &WatchConfig,
    ) -> Result<bool, Error> {
        let mut use_events = true;
        let mut interval = cfg.poll_min;
        let mut last_ok = Instant::now();
        let mut last_job_check = Instant::now();
        loop {
            let mut active = false;
            let mut ended = false;
            let mut failure = None;
            if use_events {
                match api.events(&self.job, self.cursor).await {
                    Ok(list) => {
                        last_ok = Instant::now();
                        active = !list.items.is_empty();
                        for ev in list.items {
                            ended |= self.event(ev, rep)?;
                        }
                        rep.progress(&self.progress);
                    }
                    Err(e) => match classify(&e) {
                        Failure::Fatal => return Err(self.fatal(e)),
                        Failure::Unavailable => {
                            use_events = false;
                            rep.notice(&format!(
                                "Events of job {} are unavailable ({e}); following the job's state instead, node results come at the end.",
                                self.job
                            ))?;
                        }
                        Failure::Transient => failure = Some(e),
                    },
                }
            }
            let check_job = !use_events
                || (!active && last_job_check.elapsed() >= cfg.job_check)
                || failure.is_some();
            if !ended && check_job {
                last_job_check = Instant::now();
                match api.job(&self.job).await {
                    Ok(job) => {
                        last_ok = Instant::now();
                        if !use_events {
                            active |= self.progress_from_job(&job);
                            rep.progress(&self.progress);
                        }
                        ended = job.state.is_terminal();
                    }
                    Err(e) => match classify(&e) {
                        Failure::Fatal => return Err(self.fatal(e)),
                        _ => failure = Some(e),
                    },
                }
            }
            if ended {
                return Ok(false);
            }
            if let Some(e) = failure {
                if last_ok.elapsed() >= cfg.give_up {
                    return Err(Error::LostContact {
                        job: self.job.clone(),
                        cause: e.to_string(),
                    });
                }
                tracing::debug!("poll failed, will retry: {e}");
                interval = cfg.poll_max;
            } else if active {
                interval = cfg.poll_min;
            } else {
                interval = (interval * 3 / 2).min(cfg.poll_max);
            }
            tokio::select! {
                biased;
                () = interrupts.next() => {
                    if self.interrupted(api, rep).await? {
                        return Ok(true);
                    }
                    interval = cfg.poll_min;
                }
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    fn fatal(&self, source: orchestrator_client::Error) -> Error {
        Error::Watch {
            job: self.job.clone(),
            source: Box::new(source),
        }
    }

    /// Handles one Ctrl-C; true means detach.
    async fn interrupted<A: Api>(
        &mut self,
        api: &A,
        rep: &mut dyn Reporter,
    ) -> Result<bool, Error> {
        self.stop_presses += 1;
        let job = self.job.clone();
        match self.stop_presses {
            1 => match api.stop(&job, false).await {
                Ok(_) => rep.notice(&format!(
                    "Ctrl-C: asked the orchestrator to stop job {job}: no new nodes start, running ones finish. Press Ctrl-C again to force-stop, a third time to detach (reattach with `kick job watch {job}`)."
                ))?,
                Err(e) => rep.notice(&format!(
                    "Ctrl-C: could not stop job {job}: {e}. Press Ctrl-C again to force-stop, a third time to detach, or run `kick job stop {job}`."
                ))?,
            },
            2 => match api.stop(&job, true).await {
                Ok(_) => rep.notice(&format!(
                    "Ctrl-C: force-stopping job {job}: runs in progress are ended. Press Ctrl-C again to detach (reattach with `kick job watch {job}`)."
                ))?,
                Err(e) => rep.notice(&format!(
                    "Ctrl-C: could not force-stop job {job}: {e}. Press Ctrl-C again to detach, then run `kick job stop --force {job}`."
                ))?,
            },
            _ => return Ok(true),
        }
        Ok(false)
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
                let duration = started.and_then(|s| {
                    let end = crate::time::parse(&ev.timestamp)?;
                    Some(end.duration_since(s).ok()?.as_secs_f64())
                });
                let empty = !matches!(&ev.details.detail, Value::Object(m) if !m.is_empty());
                self.progress.done += 1;
                if self.is_task
                    && empty
                    && matches!(t, EventType::NodeFinished | EventType::NodeFailed)
                {
                    // No result in the event: the node is reported from its
                    // record when the results are collected.
                    if t == EventType::NodeFailed {
                        self.progress.failed += 1;
                    }
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
                if report.outcome.is_bad() {
                    self.progress.failed += 1;
                }
                rep.node_done(&report)?;
                self.printed.insert(report.name);
            }
            EventType::JobStopping => {
                if self.stop_presses == 0 {
                    rep.notice(&format!(
                        "Job {} is stopping: no new nodes start, running ones finish.",
                        self.job
                    ))?;
                }
            }
            EventType::JobFinished | EventType::JobAborted => return Ok(true),
            EventType::Unknown => {}
        }
        Ok(false)
    }

    /// Counters from `node_states` when events are unavailable; true if they moved.
    fn progress_from_job(&mut self, job: &orchestrator_types::Job) -> bool {
        let before = self.progress;
        let states = job.node_states.clone().unwrap_or_default();
        let count = |s: NodeState| states.get(&s).copied().unwrap_or(0);
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
            .iter()
            .filter(|(s, _)| s.is_terminal())
            .map(|(_, n)| n)
            .sum();
        before != self.progress
    }

    /// Reads every node page by page and reports the results and the summary.
    async fn collect<A: Api>(
        mut self,
        api: &A,
        rep: &mut dyn Reporter,
        cfg: &WatchConfig,
    ) -> Result<u8, Error> {
        let job = persist(cfg, &self.job, || api.job(&self.job)).await?;
        let info = JobInfo::from_job(&job);
        rep.begin_results(&info)?;
        let mut summary = Summary::default();
        let mut offset = 0u64;
        loop {
            let page = persist(cfg, &self.job, || {
                api.nodes_page(&self.job, offset, cfg.page_size)
            })
            .await?;
            let n = page.items.len() as u64;
            for node in page.items {
                let seen = self.printed.remove(&node.name);
                let report = NodeReport::from_node(node, self.noop);
                summary.add(report.outcome);
                rep.result(report, seen)?;
            }
            offset += n;
            let total = page.pagination.and_then(|p| p.total);
            let more = match total {
                Some(t) => offset < t,
                None => n >= cfg.page_size,
            };
            if n == 0 || !more {
                break;
            }
        }
        let code = summary.exit_code();
        rep.finish(&info, &summary, code)?;
        Ok(code)
    }
}

/// Calls `f` until it succeeds, a fatal error comes, or nothing succeeded
/// for [`WatchConfig::give_up`].
async fn persist<T, F, Fut>(cfg: &WatchConfig, job: &str, mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, orchestrator_client::Error>>,
{
    let start = Instant::now();
    let mut delay = cfg.poll_min.max(Duration::from_millis(100));
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if classify(&e) == Failure::Fatal => {
                return Err(Error::Watch {
                    job: job.to_owned(),
                    source: Box::new(e),
                });
            }
            Err(e) if start.elapsed() >= cfg.give_up => {
                return Err(Error::LostContact {
                    job: job.to_owned(),
                    cause: e.to_string(),
                });
            }
            Err(e) => {
                tracing::debug!("request failed, retrying in {delay:?}: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(cfg.poll_max * 2);
            }
        }
    }
}

/// Reports a job as it is now, without following it (`kick job show`).
/// The exit code follows the outcomes once the job has ended, else it is 0.
pub async fn show<A: Api>(
    api: &A,
    job_id: &str,
    rep: &mut dyn Reporter,
    cfg: &WatchConfig,
) -> Result<u8, Error> {
    let job = persist(cfg, job_id, || api.job(job_id)).await?;
    let info = JobInfo::from_job(&job);
    rep.started(&info)?;
    let w = Watcher {
        job: job_id.to_owned(),
        noop: info.noop,
        is_task: info.job_type != "deploy",
        progress: Progress::default(),
        printed: HashSet::new(),
        running: HashMap::new(),
        cursor: None,
        stop_presses: 0,
    };
    let code = w.collect(api, rep, cfg).await?;
    if job.state.is_terminal() {
        Ok(code)
    } else {
        rep.notice(&format!(
            "Job {job_id} is still {}; follow it with `kick job watch {job_id}`.",
            job.state
        ))?;
        Ok(0)
    }
}
