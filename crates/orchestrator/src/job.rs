//! A job's record (what is persisted), how it renders on the wire, and the
//! handle a running job is stopped through.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use orchestrator_types::job::{EnvironmentName, Owner};
use orchestrator_types::{
    Event, EventDetails, EventType, Job, JobNode, JobState, Link, NextEvents, NodeState,
    StatusEntry,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use tokio::sync::watch;

use crate::exec::StopLevel;
use crate::store::Store;
use crate::time;

/// A job and the means to stop it.
#[derive(Debug)]
pub struct JobHandle {
    pub name: u64,
    rec: Mutex<JobRecord>,
    pub stop: watch::Sender<StopLevel>,
    store: Store,
    /// How many of the job's events are committed to the store: readers are
    /// shown only those, so an event seen is an event kept.
    durable: Arc<AtomicU64>,
}

/// A locked job record. Changes are sent to the store when it is dropped,
/// still under the lock, so they reach the store in the order they were made.
pub struct RecordGuard<'a> {
    rec: MutexGuard<'a, JobRecord>,
    job: &'a JobHandle,
}

impl std::ops::Deref for RecordGuard<'_> {
    type Target = JobRecord;
    fn deref(&self) -> &JobRecord {
        &self.rec
    }
}

impl std::ops::DerefMut for RecordGuard<'_> {
    fn deref_mut(&mut self) -> &mut JobRecord {
        &mut self.rec
    }
}

impl Drop for RecordGuard<'_> {
    fn drop(&mut self) {
        if !self.rec.pending.is_empty() {
            self.job.store.save(&mut self.rec, &self.job.durable);
        }
    }
}

impl JobHandle {
    /// A handle for a record already in the store (its events all durable).
    pub fn new(rec: JobRecord, store: Store) -> Self {
        Self {
            name: rec.name,
            durable: Arc::new(AtomicU64::new(rec.events.len() as u64)),
            rec: Mutex::new(rec),
            stop: watch::channel(StopLevel::None).0,
            store,
        }
    }

    /// Locks the record; a poisoned lock (a panic elsewhere) still yields it.
    pub fn lock(&self) -> RecordGuard<'_> {
        RecordGuard {
            rec: self.rec.lock().unwrap_or_else(|p| p.into_inner()),
            job: self,
        }
    }

    /// The job as readers may see it: an end is shown only once its
    /// `job_finished` event is committed, so a client that sees the job
    /// ended finds every event and result of it.
    pub fn render(&self, base: &str, with_status: bool) -> Job {
        let durable = self.durable_events() as usize;
        let rec = self.lock();
        if rec.state.is_terminal() && durable < rec.events.len() && rec.status.len() >= 2 {
            let mut head = rec.head.clone();
            head.status.pop();
            if let Some(last) = head.status.last_mut() {
                last.exit = None;
                head.state = last.state;
            }
            head.finished = None;
            return head.render(
                base,
                with_status,
                rec.nodes.len() as u64,
                &rec.node_states(),
            );
        }
        rec.render(base, with_status)
    }

    /// How many events readers may see (those committed to the store).
    pub fn durable_events(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Asks the job to stop at `level` (a raise only: a force stop is never
    /// turned back into a graceful one). The first raise moves an unfinished
    /// job to `stopping` with a `job_stopping` event.
    pub fn request_stop(&self, level: StopLevel) {
        let mut rec = self.lock();
        if rec.state.is_terminal() {
            return;
        }
        let raised = self.stop.send_if_modified(|l| {
            if *l < level {
                *l = level;
                true
            } else {
                false
            }
        });
        if !raised || rec.state == JobState::Stopping {
            return;
        }
        rec.set_state(JobState::Stopping);
        let force = level == StopLevel::Force;
        let msg = format!(
            "Stopping job {}{}",
            self.name,
            if force {
                " (force: running nodes are killed)"
            } else {
                ": running nodes finish, no new ones start"
            }
        );
        rec.push_event(
            EventType::JobStopping,
            None,
            Detail::Value(json!({ "force": force })),
            msg,
        );
    }
}

/// What kind of job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// `command/task`.
    Task,
    /// `command/deploy` (a Puppet run).
    Deploy,
    /// `command/plan_task`: a task job of a plan job.
    PlanTask,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Deploy => "deploy",
            Self::PlanTask => "plan_task",
        }
    }
}

/// One entry of a state history (of a job, or of a plan job).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status<S = JobState> {
    pub state: S,
    pub enter: f64,
    pub exit: Option<f64>,
}

impl<S: Copy + PartialEq> Status<S> {
    /// A history that starts in `state` at `now`.
    pub fn start(state: S, now: f64) -> Vec<Self> {
        vec![Self {
            state,
            enter: now,
            exit: None,
        }]
    }

    /// Moves a job or a plan job from `state` to `to` now, with its `history` and the time of
    /// its last change (`timestamp`), which always change together. The time of the change,
    /// `None` when it was in `to` already.
    pub fn change(
        history: &mut Vec<Self>,
        state: &mut S,
        timestamp: &mut f64,
        to: S,
    ) -> Option<f64> {
        if *state == to {
            return None;
        }
        let now = time::now();
        // The current entry ends when the next starts.
        if let Some(last) = history.last_mut() {
            last.exit = Some(now);
        }
        history.extend(Self::start(to, now));
        *state = to;
        *timestamp = now;
        Some(now)
    }

    /// The history as the API shows it.
    pub fn render(history: &[Self]) -> Vec<StatusEntry<S>> {
        history
            .iter()
            .map(|s| StatusEntry {
                state: s.state,
                enter_time: time::seconds(s.enter),
                exit_time: s.exit.map(time::seconds),
            })
            .collect()
    }
}

/// A node within a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    pub state: NodeState,
    pub timestamp: f64,
    pub start: Option<f64>,
    pub finish: Option<f64>,
    /// Details of the latest event (`{}` or `{"message": ...}`).
    #[serde(default)]
    pub details: Option<Value>,
    pub result: Option<Value>,
    pub latest_event: Option<u64>,
}

/// An event's detail. Node results are not copied into their event: the
/// event points at the node, so a large result is held once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    /// `{"noop": bool}` of node_running.
    Noop(bool),
    /// The node's result.
    NodeResult,
    /// Anything else.
    Value(Value),
}

/// One event; its id is its position + 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub ts: f64,
    pub node: Option<u32>,
    pub detail: Detail,
    pub message: String,
}

/// What a job is apart from its nodes and events: the row of the store's
/// `jobs` table, enough to list the job and answer `GET /jobs/:id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobHead {
    pub name: u64,
    pub command: Command,
    pub options: Value,
    pub owner: String,
    pub description: Option<String>,
    pub environment: String,
    pub userdata: Option<Value>,
    pub state: JobState,
    pub status: Vec<Status>,
    pub timestamp: f64,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    /// Counts as of the last save (the record's own nodes are the truth
    /// while it is in memory).
    #[serde(default)]
    pub node_count: u64,
    #[serde(default)]
    pub node_states: BTreeMap<NodeState, u64>,
    #[serde(default)]
    pub event_count: u64,
}

/// A change not yet sent to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    Head,
    Node(usize),
    Event(u64),
}

/// Everything about a job; the head, nodes and events are what the store
/// holds (older versions wrote it whole as JSON, which still reads).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    #[serde(flatten)]
    pub head: JobHead,
    /// Sorted by name.
    pub nodes: Vec<NodeRecord>,
    pub events: Vec<EventRecord>,
    /// Changes made since the last save.
    #[serde(skip)]
    pub pending: Vec<Pending>,
}

impl std::ops::Deref for JobRecord {
    type Target = JobHead;
    fn deref(&self) -> &JobHead {
        &self.head
    }
}

impl std::ops::DerefMut for JobRecord {
    fn deref_mut(&mut self) -> &mut JobHead {
        &mut self.head
    }
}

impl JobHead {
    pub fn task(&self) -> Option<&str> {
        self.options.get("task").and_then(Value::as_str)
    }

    pub fn url(&self, base: &str) -> String {
        format!(
            "{base}{}/jobs/{}",
            orchestrator_types::API_PREFIX,
            self.name
        )
    }

    pub fn duration(&self) -> Option<f64> {
        let start = self.started?;
        Some(time::round_ms(
            self.finished.unwrap_or_else(time::now) - start,
        ))
    }

    /// The job as `GET /jobs/:id` (with `status`) or a `GET /jobs` item.
    pub fn render(
        &self,
        base: &str,
        with_status: bool,
        node_count: u64,
        states: &BTreeMap<NodeState, u64>,
    ) -> Job {
        let url = self.url(base);
        Job {
            id: url.clone(),
            name: self.name.to_string(),
            state: self.state,
            command: self.command.as_str().to_owned(),
            job_type: self.command.as_str().to_owned(),
            options: self.options.clone(),
            owner: owner(
                &self.owner,
                self.status.first().map_or(self.timestamp, |s| s.enter),
            ),
            description: Some(self.description.clone().unwrap_or_default()),
            timestamp: Some(time::seconds(self.timestamp)),
            started_timestamp: self.started.map(time::seconds),
            finished_timestamp: self.finished.map(time::seconds),
            duration: self.duration(),
            environment: Some(EnvironmentName {
                name: self.environment.clone(),
            }),
            node_count,
            node_states: (!states.is_empty()).then(|| states.clone()),
            nodes: Some(Link {
                id: format!("{url}/nodes"),
            }),
            report: Some(Link {
                id: format!("{url}/report"),
            }),
            events: Some(Link {
                id: format!("{url}/events"),
            }),
            userdata: Some(self.userdata.clone().unwrap_or_else(|| json!({}))),
            status: with_status.then(|| Status::render(&self.status)),
        }
    }

    /// `next-events` of job `name` for a cursor.
    pub fn next_events_of(base: &str, name: u64, start: u64) -> NextEvents {
        NextEvents {
            id: format!(
                "{base}{}/jobs/{name}/events?start={start}",
                orchestrator_types::API_PREFIX
            ),
            event: Some(start.to_string()),
        }
    }
}

impl JobRecord {
    pub fn new(
        name: u64,
        command: Command,
        options: Value,
        owner: &str,
        environment: &str,
        certnames: Vec<String>,
    ) -> Self {
        let now = time::now();
        let description = options
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let userdata = options.get("userdata").cloned().filter(|u| !u.is_null());
        let mut certnames = certnames;
        // Kept sorted by name: the default listing order, and pages stay stable.
        certnames.sort();
        let nodes = certnames
            .into_iter()
            .map(|name| NodeRecord {
                name,
                state: NodeState::New,
                timestamp: now,
                start: None,
                finish: None,
                details: None,
                result: None,
                latest_event: None,
            })
            .collect();
        Self {
            head: JobHead {
                name,
                command,
                options,
                owner: owner.to_owned(),
                description,
                environment: environment.to_owned(),
                userdata,
                state: JobState::New,
                status: Status::start(JobState::New, now),
                timestamp: now,
                started: None,
                finished: None,
                node_count: 0,
                node_states: BTreeMap::new(),
                event_count: 0,
            },
            nodes,
            events: Vec::new(),
            pending: Vec::new(),
        }
    }

    pub fn set_state(&mut self, state: JobState) {
        let h = &mut self.head;
        let Some(now) = Status::change(&mut h.status, &mut h.state, &mut h.timestamp, state) else {
            return;
        };
        self.pending.push(Pending::Head);
        if state == JobState::Running && h.started.is_none() {
            h.started = Some(now);
        }
        if state.is_terminal() {
            h.finished = Some(now);
        }
    }

    /// Appends an event and returns its id.
    pub fn push_event(
        &mut self,
        kind: EventType,
        node: Option<usize>,
        detail: Detail,
        message: String,
    ) -> u64 {
        self.events.push(EventRecord {
            kind,
            ts: time::now(),
            node: node.map(|n| n as u32),
            detail,
            message,
        });
        let id = self.events.len() as u64;
        if let Some(i) = node
            && let Some(n) = self.nodes.get_mut(i)
        {
            n.latest_event = Some(id);
            self.pending.push(Pending::Node(i));
        }
        self.pending.push(Pending::Event(id));
        id
    }

    pub fn node_states(&self) -> BTreeMap<NodeState, u64> {
        let mut m = BTreeMap::new();
        for n in &self.nodes {
            *m.entry(n.state).or_insert(0) += 1;
        }
        m
    }

    pub fn has_failures(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(n.state, NodeState::Failed | NodeState::Errored))
    }

    /// The job as `GET /jobs/:id` (with `status`) or a `GET /jobs` item.
    pub fn render(&self, base: &str, with_status: bool) -> Job {
        self.head.render(
            base,
            with_status,
            self.nodes.len() as u64,
            &self.node_states(),
        )
    }

    /// Event `id` (1-based) as the wire shows it.
    pub fn render_event(&self, id: u64) -> Event {
        let e = &self.events[id as usize - 1];
        let node = e.node.and_then(|n| self.nodes.get(n as usize));
        render_event(id, e, node)
    }

    /// The head as the store keeps it, counts brought up to date.
    pub fn head_for_store(&self) -> JobHead {
        let mut h = self.head.clone();
        h.node_count = self.nodes.len() as u64;
        h.node_states = self.node_states();
        h.event_count = self.events.len() as u64;
        h
    }

    /// Ends a job that was unfinished when the service went away. Nodes
    /// that had ended keep their results; only those really running are
    /// failed, saying why, and those never started are skipped. The job
    /// fails if any node was cut short; otherwise it ends as it would have.
    /// Returns whether anything changed.
    pub fn finish_interrupted(&mut self, reason: &str) -> bool {
        if self.state.is_terminal() {
            return false;
        }
        let now = time::now();
        let mut cut_short = false;
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            let (state, kind, message) = match n.state {
                s if s.is_terminal() => continue,
                NodeState::New | NodeState::Ready => (
                    NodeState::Skipped,
                    EventType::NodeSkipped,
                    format!("Skipped {}: it had not started when {reason}", n.name),
                ),
                _ => (
                    NodeState::Failed,
                    EventType::NodeFailed,
                    format!(
                        "The run on {} was interrupted: {reason}; its result is unknown",
                        n.name
                    ),
                ),
            };
            cut_short = true;
            let n = &mut self.nodes[i];
            n.state = state;
            n.timestamp = now;
            if n.start.is_some() {
                n.finish = Some(now);
                n.result = Some(json!({ "_error": {
                    "kind": orchestrator_types::error::kind::EXECUTION_FAILURE,
                    "msg": message.clone(),
                    "details": { "node": n.name.clone(), "interrupted": true },
                }}));
            }
            n.details = Some(json!({ "message": message.clone() }));
            let detail = if state == NodeState::Failed {
                Detail::NodeResult
            } else {
                Detail::Value(json!({ "message": message.clone() }))
            };
            self.push_event(kind, Some(i), detail, message);
        }
        let state = if cut_short || self.has_failures() {
            JobState::Failed
        } else if self.state == JobState::Stopping {
            JobState::Stopped
        } else {
            JobState::Finished
        };
        self.set_state(state);
        let states = self.node_states();
        let (detail, message) = if cut_short {
            (
                json!({ "state": state, "node_states": states, "reason": reason }),
                format!("Job failed: {reason}"),
            )
        } else {
            (
                json!({ "state": state, "node_states": states }),
                format!("Job {} {state}", self.name),
            )
        };
        self.push_event(EventType::JobFinished, None, Detail::Value(detail), message);
        true
    }
}

/// A node as `GET /jobs/:id/nodes` shows it.
pub fn render_node(n: &NodeRecord) -> JobNode {
    let duration = n
        .start
        .map(|s| time::round_ms(n.finish.unwrap_or_else(time::now) - s));
    JobNode {
        name: n.name.clone(),
        state: n.state,
        timestamp: Some(time::seconds(n.timestamp)),
        start_timestamp: n.start.map(time::seconds),
        finish_timestamp: n.finish.map(time::seconds),
        duration,
        transaction_uuid: None,
        details: n.details.clone().unwrap_or_else(|| json!({})),
        result: n.result.clone(),
        transport: Some("pcp".to_owned()),
        latest_event_id: n.latest_event,
    }
}

/// Event `id` as the wire shows it; `node` is the node it is about.
pub fn render_event(id: u64, e: &EventRecord, node: Option<&NodeRecord>) -> Event {
    let detail = match &e.detail {
        Detail::Noop(b) => json!({ "noop": b }),
        Detail::NodeResult => node
            .and_then(|n| n.result.clone())
            .unwrap_or_else(|| json!({})),
        Detail::Value(v) => v.clone(),
    };
    Event {
        id: id.to_string(),
        event_type: e.kind,
        timestamp: time::seconds(e.ts),
        details: EventDetails {
            node: node.map(|n| n.name.clone()),
            detail,
        },
        message: e.message.clone(),
    }
}

/// The owner object: PE sends the full RBAC subject.
pub(crate) fn owner(login: &str, logged_in: f64) -> Owner {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(login.as_bytes()));
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    let mut extra = Map::new();
    extra.insert("email".into(), json!(""));
    extra.insert("display_name".into(), json!(login));
    extra.insert("is_revoked".into(), json!(false));
    extra.insert("is_remote".into(), json!(false));
    extra.insert("is_superuser".into(), json!(login == "admin"));
    extra.insert("is_group".into(), json!(false));
    extra.insert("last_login".into(), json!(time::millis(logged_in)));
    extra.insert("role_ids".into(), json!([1]));
    extra.insert("group_ids".into(), json!([]));
    extra.insert("inherited_role_ids".into(), json!([]));
    Owner {
        id,
        login: login.to_owned(),
        extra,
    }
}
