//! Following a job until it ends, then collecting its nodes' results.
//!
//! Progress comes from `GET /jobs/:id/events` with the cursor `start` = last
//! event id + 1, polled on the schedule of [`poll_interval`]: quickly at
//! first, then backing off while nothing happens (the wait is 1/40 of the
//! quiet time) to at most [`WatchConfig::poll_max`]. Each node's line is
//! reported as soon as its `node_*` event arrives. When the events endpoint is
//! unavailable (404, 5xx, garbage), kick follows `GET /jobs/:id` instead and
//! reports the nodes at the end. Once the job has ended, the nodes are read
//! page by page; only names of nodes already reported are kept between
//! pages, never their outputs.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use orchestrator_types::{Event, EventType, JobNode, NodeList, NodeState};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::{Api, Failure, classify};
use crate::error::Error;
use crate::outcome::{NodeReport, Outcome};
use crate::render::{JobInfo, Progress, Reporter};
use crate::summary::{EXIT_DETACHED, Summary};

/// Consecutive failed event polls after which kick follows the job instead.
const EVENT_FAILURES_BEFORE_FALLBACK: u32 = 5;

/// Lookups of the record of a node whose end event carried no result,
/// before it is left to the collection of results.
const LOOKUPS: u8 = 2;

/// Result pages requested ahead of the one being reported.
const PAGES_IN_FLIGHT: usize = 2;

/// The poll interval is the time since the last event divided by this.
const QUIET_FRACTION: u32 = 40;

/// While events flow, the interval is the time spent watching divided by
/// this, at most [`WatchConfig::poll_busy`].
const BUSY_FRACTION: u32 = 40;

/// Polling and paging knobs.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Shortest poll interval, at the start of a watch.
    pub poll_min: Duration,
    /// Longest interval while events keep coming.
    pub poll_busy: Duration,
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
            poll_min: Duration::from_millis(20),
            poll_busy: Duration::from_millis(250),
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

    /// A press already waiting, if any.
    fn try_next(&mut self) -> bool {
        self.0.as_mut().is_some_and(|rx| rx.try_recv().is_ok())
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
pub async fn watch<A: Api + Clone + Send + Sync + 'static>(
    api: &A,
    job_id: &str,
    rep: &mut dyn Reporter,
    interrupts: &mut Interrupts,
    cfg: &WatchConfig,
) -> Result<u8, Error> {
    let job = persist(cfg, job_id, || api.job(job_id)).await?;
    let info = JobInfo::from_job(&job);
    rep.started(&info)?;
    let mut w = Watcher::new(job_id, &info);
    if !job.state.is_terminal() && w.follow(api, rep, interrupts, cfg).await? {
        rep.notice(&format!(
            "Detached from job {job_id}; it goes on without kick. Reattach with `kick job watch {job_id}`."
        ))?;
        return Ok(EXIT_DETACHED);
    }
    // A press that came as the job ended was meant for the job, which no
    // longer needs stopping: it must not cut the results short.
    while interrupts.try_next() {}
    w.collect(api, rep, interrupts, cfg).await
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
    /// Nodes whose end event carried no result, with that event's type and
    /// the lookups tried (always fewer than [`LOOKUPS`]): their records are
    /// read to report them live.
    awaiting: HashMap<String, (EventType, u8)>,
    cursor: Option<u64>,
    stop_presses: u32,
}

impl Watcher {
    fn new(job_id: &str, info: &JobInfo) -> Watcher {
        Watcher {
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
            stop_presses: 0,
        }
    }

    /// Polls until the job ends; true when the user detached.
    async fn follow<A: Api>(
        &mut self,
        api: &A,
        rep: &mut dyn Reporter,
        interrupts: &mut Interrupts,
        cfg: &WatchConfig,
    ) -> Result<bool, Error> {
        let mut use_events = true;
        let mut event_failures = 0u32;
        let watching = Instant::now();
        let mut last_activity = Instant::now();
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
                        event_failures = 0;
                        active = !list.items.is_empty();
                        for ev in list.items {
                            ended |= self.event(ev, rep)?;
                        }
                        if !ended && !self.awaiting.is_empty() {
                            self.report_awaiting(api, rep, cfg).await?;
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
                        Failure::Transient => {
                            event_failures += 1;
                            // The job endpoint may still answer when the
                            // events one keeps timing out.
                            if event_failures >= EVENT_FAILURES_BEFORE_FALLBACK {
                                use_events = false;
                                rep.notice(&format!(
                                    "Events of job {} keep failing ({e}); following the job's state instead, node results come at the end.",
                                    self.job
                                ))?;
                            }
                            failure = Some(e);
                        }
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
            if let Some(e) = &failure {
                if last_ok.elapsed() >= cfg.give_up {
                    return Err(Error::LostContact {
                        job: self.job.clone(),
                        cause: e.to_string(),
                    });
                }
                tracing::debug!("poll failed, will retry: {e}");
            }
            let interval = if failure.is_some() {
                cfg.poll_max
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
                        return Ok(true);
                    }
                    // Presses made while the stop request was under way
                    // count at once: a quick triple Ctrl-C detaches.
                    while interrupts.try_next() {
                        if self.interrupted(api, rep).await? {
                            return Ok(true);
                        }
                    }
                    last_activity = Instant::now();
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

    /// Reports a node that ended, counting it as failed unless its
    /// `node_failed` event already did.
    fn report_live(
        &mut self,
        report: NodeReport,
        failure_counted: bool,
        rep: &mut dyn Reporter,
    ) -> Result<(), Error> {
        if report.outcome.is_bad() && !failure_counted {
            self.progress.failed += 1;
        }
        rep.node_done(&report)?;
        self.printed.insert(report.name);
        Ok(())
    }

    /// Reports the nodes of [`Watcher::awaiting`] from their records. The
    /// nodes that ended last come first among the finished (or failed) ones
    /// ordered by finish time, so one short page per state holds them. A node
    /// not found after [`LOOKUPS`] tries is left to the collection of
    /// results, so a server that never gives its record costs two requests,
    /// not one every poll.
    async fn report_awaiting<A: Api>(
        &mut self,
        api: &A,
        rep: &mut dyn Reporter,
        cfg: &WatchConfig,
    ) -> Result<(), Error> {
        for (event, state) in [
            (EventType::NodeFinished, NodeState::Finished),
            (EventType::NodeFailed, NodeState::Failed),
        ] {
            let wanted = self.awaiting.values().filter(|(t, _)| *t == event).count() as u64;
            if wanted == 0 {
                continue;
            }
            let limit = (wanted * 2).clamp(10, cfg.page_size.max(10));
            let page = match api.recent_nodes(&self.job, state, limit).await {
                Ok(page) => page.items,
                Err(e) if classify(&e) == Failure::Fatal => return Err(self.fatal(e)),
                Err(e) => {
                    tracing::debug!("reading the records of ended nodes failed: {e}");
                    Vec::new()
                }
            };
            for node in page {
                if node.state != state || node.result.is_none() {
                    continue;
                }
                let Some((t, _)) = self.awaiting.remove(&node.name) else {
                    continue;
                };
                let report = NodeReport::from_node(node, self.noop);
                self.report_live(report, t == EventType::NodeFailed, rep)?;
            }
            for (t, tries) in self.awaiting.values_mut() {
                if *t == event {
                    *tries = tries.saturating_add(1);
                }
            }
        }
        // Nodes given up on are reported with the results; forget them.
        self.awaiting.retain(|_, (_, tries)| *tries < LOOKUPS);
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

    /// Reads every node page by page and reports the results and the summary.
    async fn collect<A: Api + Clone + Send + Sync + 'static>(
        mut self,
        api: &A,
        rep: &mut dyn Reporter,
        interrupts: &mut Interrupts,
        cfg: &WatchConfig,
    ) -> Result<u8, Error> {
        let job = persist(cfg, &self.job, || api.job(&self.job)).await?;
        let info = JobInfo::from_job(&job);
        rep.begin_results(&info)?;
        let mut summary = Summary::default();
        /// A page's reports, and the node count the server gave.
        fn page_reports<R>(
            page: NodeList<R>,
            report: impl FnMut(JobNode<R>) -> NodeReport,
        ) -> (Vec<NodeReport>, Option<u64>) {
            let total = page.pagination.as_ref().and_then(|p| p.total);
            (page.items.into_iter().map(report).collect(), total)
        }
        // The next page is fetched (and parsed, by the client) on another
        // task while this one reports the current page.
        let noop = self.noop;
        let pre_serialize = rep.wants_json();
        let wants_output = Outcome::ALL.map(|o| rep.wants_output(o));
        let fetch = |offset: u64| {
            let (api, job, cfg) = (api.clone(), self.job.clone(), cfg.clone());
            tokio::spawn(async move {
                let keep = |o: Outcome| wants_output[o as usize];
                let size = cfg.page_size;
                // The JSON formats copy results through as the server's
                // text; the human one reads them.
                Ok::<_, Error>(if pre_serialize {
                    let page = persist(&cfg, &job, || api.nodes_page_raw(&job, offset, size));
                    page_reports(page.await?, |n| NodeReport::from_raw_node(n, noop, keep))
                } else {
                    let page = persist(&cfg, &job, || api.nodes_page(&job, offset, size));
                    page_reports(page.await?, |n| {
                        NodeReport::from_node_keeping(n, noop, keep)
                    })
                })
            })
        };
        // Pages are requested ahead, so that the server prepares the next
        // ones while this process parses and reports; at most
        // PAGES_IN_FLIGHT + 1 pages are in memory.
        let mut pending = std::collections::VecDeque::from([fetch(0)]);
        let mut next_offset = cfg.page_size;
        let mut total: Option<u64> = None;
        while let Some(mut handle) = pending.pop_front() {
            // The job has ended, so Ctrl-C here has nothing to stop: it
            // ends the listing at once.
            let joined = tokio::select! {
                biased;
                () = interrupts.next() => {
                    handle.abort();
                    pending.iter().for_each(|h| h.abort());
                    rep.notice(&format!(
                        "Ctrl-C: stopped listing the results of job {}, which has ended (`kick job show {}` lists them).",
                        self.job, self.job
                    ))?;
                    return Ok(EXIT_DETACHED);
                }
                joined = &mut handle => joined,
            };
            let page = joined.map_err(|e| Error::LostContact {
                job: self.job.clone(),
                cause: format!("collecting the results failed: {e}"),
            })??;
            let (reports, page_total) = page;
            let n = reports.len() as u64;
            if total.is_none() {
                total = page_total;
            }
            match total {
                Some(t) => {
                    while pending.len() < PAGES_IN_FLIGHT && next_offset < t {
                        pending.push_back(fetch(next_offset));
                        next_offset += cfg.page_size;
                    }
                }
                // Without a total, a full page means there may be more.
                None if n >= cfg.page_size && pending.is_empty() => {
                    pending.push_back(fetch(next_offset));
                    next_offset += cfg.page_size;
                }
                None => {}
            }
            for report in reports {
                let seen = self.printed.remove(&report.name);
                summary.add(report.outcome);
                rep.result(report, seen)?;
            }
        }
        let code = summary.exit_code();
        rep.finish(&info, &summary, code)?;
        Ok(code)
    }
}

/// The wait before the next poll, `watching` after the watch began and
/// `quiet` after the last event. It grows with the quiet time (1/40 of it),
/// so the delay before kick sees a change stays around 1% of how long the
/// job had been quiet: a few ms for short runs, one request a second at most
/// for long ones. While events keep coming, the floor grows with the time
/// spent watching, so a long busy job is polled a few times a second, not
/// continuously (each poll returns every event since the last one anyway).
pub fn poll_interval(cfg: &WatchConfig, watching: Duration, quiet: Duration) -> Duration {
    let floor = (watching / BUSY_FRACTION)
        .min(cfg.poll_busy)
        .max(cfg.poll_min)
        .min(cfg.poll_max);
    (quiet / QUIET_FRACTION).max(floor).min(cfg.poll_max)
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
pub async fn show<A: Api + Clone + Send + Sync + 'static>(
    api: &A,
    job_id: &str,
    rep: &mut dyn Reporter,
    interrupts: &mut Interrupts,
    cfg: &WatchConfig,
) -> Result<u8, Error> {
    let job = persist(cfg, job_id, || api.job(job_id)).await?;
    let info = JobInfo::from_job(&job);
    rep.started(&info)?;
    let w = Watcher::new(job_id, &info);
    let code = w.collect(api, rep, interrupts, cfg).await?;
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use orchestrator_client::Error as ClientError;
    use orchestrator_types::{ApiError, EventList, Job, NodeList, StopResponse};
    use serde_json::json;

    use super::*;

    /// A scripted orchestrator: events and job answers are popped in order
    /// (the last one repeats), calls are recorded.
    #[derive(Default)]
    struct Fake {
        events: Mutex<VecDeque<Result<EventList, ClientError>>>,
        jobs: Mutex<VecDeque<Result<Job, ClientError>>>,
        nodes: Vec<Value>,
        calls: Mutex<Vec<String>>,
    }

    fn job(state: &str, n: u64) -> Job {
        serde_json::from_value(
            json!({"id": "u", "name": "7", "state": state, "type": "task",
            "options": {"task": "t::x", "noop": false}, "node_count": n,
            "node_states": {"finished": n}}),
        )
        .unwrap()
    }

    fn events(items: Value) -> EventList {
        serde_json::from_value(json!({"items": items})).unwrap()
    }

    fn ev(id: u64, ty: &str, node: &str, detail: Value) -> Value {
        json!({"id": id.to_string(), "type": ty, "timestamp": "2026-01-01T00:00:00Z",
               "details": {"node": node, "detail": detail}, "message": ""})
    }

    fn api_err(status: u16, kind: &str) -> ClientError {
        ClientError::Api {
            status,
            error: ApiError::new(kind, "nope", None),
            hint: None,
        }
    }

    fn pop<T: Clone>(q: &Mutex<VecDeque<Result<T, ClientError>>>) -> Result<T, ClientError> {
        let mut q = q.lock().unwrap();
        if q.len() > 1 {
            q.pop_front().unwrap()
        } else {
            match q.front().unwrap() {
                Ok(v) => Ok(v.clone()),
                Err(ClientError::Api { status, error, .. }) => Err(ClientError::Api {
                    status: *status,
                    error: error.clone(),
                    hint: None,
                }),
                Err(_) => Err(ClientError::Timeout {
                    url: "u".into(),
                    after: Duration::from_millis(1),
                }),
            }
        }
    }

    impl Api for Arc<Fake> {
        async fn job(&self, _job: &str) -> Result<Job, ClientError> {
            self.calls.lock().unwrap().push("job".into());
            pop(&self.jobs)
        }
        async fn events(&self, _job: &str, start: Option<u64>) -> Result<EventList, ClientError> {
            self.calls.lock().unwrap().push(format!("events {start:?}"));
            pop(&self.events)
        }
        async fn nodes_page(
            &self,
            _job: &str,
            offset: u64,
            limit: u64,
        ) -> Result<NodeList, ClientError> {
            self.calls.lock().unwrap().push(format!("nodes {offset}"));
            let items: Vec<Value> = self
                .nodes
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .cloned()
                .collect();
            Ok(serde_json::from_value(json!({"items": items})).unwrap())
        }
        async fn recent_nodes(
            &self,
            _job: &str,
            state: NodeState,
            limit: u64,
        ) -> Result<NodeList, ClientError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("recent {} {limit}", state.as_str()));
            // Newest first: the fake's nodes ended in list order.
            let items: Vec<Value> = self
                .nodes
                .iter()
                .rev()
                .filter(|n| n["state"] == state.as_str())
                .take(limit as usize)
                .cloned()
                .collect();
            Ok(serde_json::from_value(json!({"items": items})).unwrap())
        }
        async fn stop(&self, _job: &str, force: bool) -> Result<StopResponse, ClientError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("stop force={force}"));
            Ok(
                serde_json::from_value(json!({"job": {"id": "u", "name": "7", "nodes": {}}}))
                    .unwrap(),
            )
        }
    }

    #[derive(Default)]
    struct Record(Vec<String>);

    impl Reporter for Record {
        fn started(&mut self, job: &JobInfo) -> std::io::Result<()> {
            self.0.push(format!("started {}", job.name));
            Ok(())
        }
        fn progress(&mut self, _p: &Progress) {}
        fn node_done(&mut self, node: &NodeReport) -> std::io::Result<()> {
            self.0
                .push(format!("live {} {}", node.name, node.outcome.as_str()));
            Ok(())
        }
        fn notice(&mut self, msg: &str) -> std::io::Result<()> {
            self.0.push(format!("notice {msg}"));
            Ok(())
        }
        fn begin_results(&mut self, _job: &JobInfo) -> std::io::Result<()> {
            self.0.push("results".into());
            Ok(())
        }
        fn result(&mut self, node: NodeReport, seen_live: bool) -> std::io::Result<()> {
            self.0.push(format!(
                "result {} {} live={seen_live}",
                node.name,
                node.outcome.as_str()
            ));
            Ok(())
        }
        fn finish(&mut self, _job: &JobInfo, s: &Summary, code: u8) -> std::io::Result<()> {
            self.0.push(format!("finish {} {code}", s.total));
            Ok(())
        }
    }

    fn fast() -> WatchConfig {
        WatchConfig {
            poll_min: Duration::from_millis(1),
            poll_busy: Duration::from_millis(2),
            poll_max: Duration::from_millis(5),
            page_size: 2,
            give_up: Duration::from_millis(200),
            job_check: Duration::from_secs(60),
        }
    }

    fn node(name: &str, state: &str, result: Value) -> Value {
        json!({"name": name, "state": state, "result": result, "details": {}})
    }

    fn three_nodes() -> Vec<Value> {
        vec![
            node("a", "finished", json!({"status": "changed"})),
            node("b", "finished", json!({"status": "unchanged"})),
            node("c", "failed", json!({"_error": {"kind": "k", "msg": "m"}})),
        ]
    }

    #[test]
    fn polls_are_quick_at_first_back_off_when_quiet_and_stay_calm_when_busy() {
        let cfg = WatchConfig::default();
        let ms = Duration::from_millis;
        assert_eq!(poll_interval(&cfg, ms(0), ms(0)), ms(20));
        // A job quiet for 2 s is looked at every 50 ms: seen ~25 ms late.
        assert_eq!(poll_interval(&cfg, ms(2000), ms(2000)), ms(50));
        assert_eq!(poll_interval(&cfg, ms(600_000), ms(600_000)), ms(1000));
        // Events just came, early on and an hour into a busy job.
        assert_eq!(poll_interval(&cfg, ms(2000), ms(0)), ms(50));
        assert_eq!(poll_interval(&cfg, ms(3_600_000), ms(0)), ms(250));
        let mut last = Duration::ZERO;
        for q in (0..120_000).step_by(500) {
            let i = poll_interval(&cfg, ms(120_000), ms(q));
            assert!(i >= last && i <= cfg.poll_max, "{q}: {i:?}");
            last = i;
        }
        // Knobs set against each other do not panic; poll_max wins.
        let odd = WatchConfig {
            poll_min: ms(500),
            poll_busy: ms(10),
            poll_max: ms(100),
            ..WatchConfig::default()
        };
        assert_eq!(poll_interval(&odd, ms(0), ms(0)), ms(100));
    }

    #[tokio::test]
    async fn nodes_are_reported_as_their_events_arrive_with_a_moving_cursor() {
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([
                Ok(job("running", 3)),
                Ok(job("failed", 3)),
            ])),
            events: Mutex::new(VecDeque::from([
                Ok(events(json!([
                    ev(1, "node_running", "a", json!({})),
                    ev(2, "node_finished", "a", json!({"status": "changed"}))
                ]))),
                Ok(events(json!([]))),
                Ok(events(json!([
                    ev(3, "node_finished", "b", json!({"status": "unchanged"})),
                    ev(
                        4,
                        "node_failed",
                        "c",
                        json!({"_error": {"kind": "k", "msg": "m"}})
                    ),
                    ev(5, "job_finished", "", json!({}))
                ]))),
            ])),
            nodes: three_nodes(),
            ..Fake::default()
        });
        let mut rec = Record::default();
        let code = watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
            .await
            .unwrap();
        assert_eq!(code, 6);
        assert_eq!(
            rec.0,
            vec![
                "started 7",
                "live a changed",
                "live b unchanged",
                "live c failed",
                "results",
                "result a changed live=true",
                "result b unchanged live=true",
                "result c failed live=true",
                "finish 3 6",
            ]
        );
        let calls = fake.calls.lock().unwrap();
        let ev_calls: Vec<&String> = calls.iter().filter(|c| c.starts_with("events")).collect();
        assert_eq!(
            ev_calls,
            ["events None", "events Some(3)", "events Some(3)"]
        );
        assert!(calls.contains(&"nodes 2".to_string()), "paged: {calls:?}");
    }

    #[tokio::test]
    async fn nodes_whose_events_carry_no_result_are_read_from_their_records_live() {
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([
                Ok(job("running", 3)),
                Ok(job("failed", 3)),
            ])),
            events: Mutex::new(VecDeque::from([
                Ok(events(json!([
                    ev(1, "node_finished", "a", json!({})),
                    ev(2, "node_failed", "c", json!({}))
                ]))),
                Ok(events(json!([ev(3, "node_finished", "b", json!({}))]))),
                Ok(events(json!([ev(4, "job_finished", "", json!({}))]))),
            ])),
            nodes: three_nodes(),
            ..Fake::default()
        });
        let mut rec = Record::default();
        let code = watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
            .await
            .unwrap();
        assert_eq!(code, 6);
        assert_eq!(
            rec.0,
            vec![
                "started 7",
                // Finished nodes are looked up before failed ones.
                "live a changed",
                "live c failed",
                "live b unchanged",
                "results",
                "result a changed live=true",
                "result b unchanged live=true",
                "result c failed live=true",
                "finish 3 6",
            ]
        );
        let calls = fake.calls.lock().unwrap();
        let recent: Vec<&String> = calls.iter().filter(|c| c.starts_with("recent")).collect();
        assert_eq!(
            recent,
            [
                "recent finished 10",
                "recent failed 10",
                "recent finished 10"
            ]
        );
    }

    #[tokio::test]
    async fn a_record_that_never_comes_is_looked_up_twice_then_left_to_the_results() {
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([
                Ok(job("running", 1)),
                Ok(job("finished", 1)),
            ])),
            events: Mutex::new(VecDeque::from([
                Ok(events(json!([ev(1, "node_finished", "a", json!({}))]))),
                Ok(events(json!([]))),
                Ok(events(json!([]))),
                Ok(events(json!([]))),
                Ok(events(json!([]))),
                Ok(events(json!([ev(2, "job_finished", "", json!({}))]))),
            ])),
            nodes: vec![node("a", "finished", Value::Null)],
            ..Fake::default()
        });
        let mut rec = Record::default();
        watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
            .await
            .unwrap();
        let calls = fake.calls.lock().unwrap();
        assert_eq!(
            calls.iter().filter(|c| c.starts_with("recent")).count(),
            2,
            "{calls:?}"
        );
        assert!(rec.0.iter().all(|l| !l.starts_with("live")), "{:?}", rec.0);
        assert!(
            rec.0.contains(&"result a unchanged live=false".to_owned()),
            "{:?}",
            rec.0
        );
    }

    #[tokio::test]
    async fn without_events_the_job_is_followed_and_nodes_reported_at_the_end() {
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([
                Ok(job("running", 3)),
                Ok(job("running", 3)),
                Ok(job("finished", 3)),
            ])),
            events: Mutex::new(VecDeque::from([
                Err(api_err(404, "puppetlabs.orchestrator/unknown-job")),
                Ok(events(json!([]))),
            ])),
            nodes: three_nodes(),
            ..Fake::default()
        });
        let mut rec = Record::default();
        let code = watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
            .await
            .unwrap();
        assert_eq!(code, 6);
        assert!(
            rec.0[1].starts_with("notice Events of job 7 are unavailable"),
            "{:?}",
            rec.0
        );
        assert!(rec.0.contains(&"result a changed live=false".to_string()));
        assert_eq!(rec.0.last().unwrap(), "finish 3 6");
    }

    #[tokio::test]
    async fn ctrl_c_stops_then_forces_then_detaches() {
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([Ok(job("running", 3))])),
            events: Mutex::new(VecDeque::from([Ok(events(json!([])))])),
            nodes: three_nodes(),
            ..Fake::default()
        });
        let (tx, mut ints) = Interrupts::channel();
        let mut rec = Record::default();
        let presser = async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                tx.send(()).unwrap();
            }
        };
        let cfg = fast();
        let (code, ()) = tokio::join!(watch(&fake, "7", &mut rec, &mut ints, &cfg), presser);
        assert_eq!(code.unwrap(), EXIT_DETACHED);
        let calls = fake.calls.lock().unwrap();
        let stops: Vec<&String> = calls.iter().filter(|c| c.starts_with("stop")).collect();
        assert_eq!(stops, ["stop force=false", "stop force=true"]);
        let notices: Vec<&String> = rec.0.iter().filter(|l| l.starts_with("notice")).collect();
        assert_eq!(notices.len(), 3, "{notices:?}");
        assert!(notices[0].contains("asked the orchestrator to stop job 7"));
        assert!(notices[1].contains("force-stopping job 7"));
        assert!(notices[2].contains("kick job watch 7"));
    }

    #[tokio::test]
    async fn ctrl_c_while_results_are_listed_ends_the_listing() {
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([Ok(job("failed", 3))])),
            nodes: three_nodes(),
            ..Fake::default()
        });
        let (tx, mut ints) = Interrupts::channel();
        tx.send(()).unwrap();
        let mut rec = Record::default();
        let code = show(&fake, "7", &mut rec, &mut ints, &fast())
            .await
            .unwrap();
        assert_eq!(code, EXIT_DETACHED);
        assert_eq!(rec.0[..2], ["started 7", "results"]);
        assert_eq!(rec.0.len(), 3, "{:?}", rec.0);
        assert!(rec.0[2].contains("kick job show 7"), "{:?}", rec.0);
        assert!(
            fake.calls
                .lock()
                .unwrap()
                .iter()
                .all(|c| !c.starts_with("stop"))
        );
    }

    #[tokio::test]
    async fn a_ctrl_c_pressed_as_the_job_ends_does_not_cut_the_results_short() {
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([Ok(job("failed", 3))])),
            nodes: three_nodes(),
            ..Fake::default()
        });
        let (tx, mut ints) = Interrupts::channel();
        tx.send(()).unwrap();
        let mut rec = Record::default();
        let code = watch(&fake, "7", &mut rec, &mut ints, &fast())
            .await
            .unwrap();
        assert_eq!(code, 6);
        assert_eq!(rec.0.last().map(String::as_str), Some("finish 3 6"));
    }

    #[tokio::test]
    async fn an_expired_token_mid_watch_ends_with_a_clear_error() {
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([Ok(job("running", 3))])),
            events: Mutex::new(VecDeque::from([
                Ok(events(json!([]))),
                Err(api_err(401, "puppetlabs.rbac/token-expired")),
            ])),
            ..Fake::default()
        });
        let err = watch(
            &fake,
            "7",
            &mut Record::default(),
            &mut Interrupts::none(),
            &fast(),
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("token-expired") && msg.contains("kick job watch 7"),
            "{msg}"
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[tokio::test]
    async fn an_orchestrator_that_stops_answering_is_given_up_on() {
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([
                Ok(job("running", 3)),
                Err(ClientError::Timeout {
                    url: "u".into(),
                    after: Duration::from_millis(1),
                }),
            ])),
            events: Mutex::new(VecDeque::from([
                Ok(events(json!([]))),
                Err(ClientError::Timeout {
                    url: "u".into(),
                    after: Duration::from_millis(1),
                }),
            ])),
            ..Fake::default()
        });
        let err = watch(
            &fake,
            "7",
            &mut Record::default(),
            &mut Interrupts::none(),
            &fast(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::LostContact { .. }), "{err}");
        assert!(err.to_string().contains("kick job watch 7"));
    }

    #[tokio::test]
    async fn a_server_that_ignores_the_cursor_does_not_duplicate_nodes() {
        let batch = json!([ev(1, "node_finished", "a", json!({"status": "unchanged"}))]);
        let fake = Arc::new(Fake {
            jobs: Mutex::new(VecDeque::from([
                Ok(job("running", 1)),
                Ok(job("finished", 1)),
            ])),
            events: Mutex::new(VecDeque::from([
                Ok(events(batch.clone())),
                Ok(events(batch)),
                Ok(events(json!([ev(2, "job_finished", "", json!({}))]))),
            ])),
            nodes: vec![node("a", "finished", json!({"status": "unchanged"}))],
            ..Fake::default()
        });
        let mut rec = Record::default();
        let code = watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
            .await
            .unwrap();
        assert_eq!(code, 0);
        assert_eq!(rec.0.iter().filter(|l| l.starts_with("live a")).count(), 1);
    }
}
