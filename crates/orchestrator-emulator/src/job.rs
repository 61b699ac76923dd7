//! A job's record (what is persisted), how it renders on the wire, and the
//! handle a running job is stopped through.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use orchestrator_types::job::{EnvironmentName, Owner};
use orchestrator_types::{
    Event, EventDetails, EventType, Job, JobNode, JobState, Link, NextEvents, NodeState,
    StatusEntry,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use tokio::sync::watch;

use crate::exec::StopLevel;
use crate::time;

/// A job and the means to stop it.
#[derive(Debug)]
pub struct JobHandle {
    pub name: u64,
    rec: Mutex<JobRecord>,
    pub stop: watch::Sender<StopLevel>,
}

impl JobHandle {
    pub fn new(rec: JobRecord) -> Self {
        Self {
            name: rec.name,
            rec: Mutex::new(rec),
            stop: watch::channel(StopLevel::None).0,
        }
    }

    /// Locks the record; a poisoned lock (a panic elsewhere) still yields it.
    pub fn lock(&self) -> MutexGuard<'_, JobRecord> {
        self.rec.lock().unwrap_or_else(|p| p.into_inner())
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
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Deploy => "deploy",
        }
    }
}

/// One entry of the state history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub state: JobState,
    pub enter: f64,
    pub exit: Option<f64>,
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

/// Everything about a job; this is what the state directory holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
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
    /// Sorted by name.
    pub nodes: Vec<NodeRecord>,
    pub events: Vec<EventRecord>,
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
            name,
            command,
            options,
            owner: owner.to_owned(),
            description,
            environment: environment.to_owned(),
            userdata,
            state: JobState::New,
            status: vec![Status {
                state: JobState::New,
                enter: now,
                exit: None,
            }],
            timestamp: now,
            started: None,
            finished: None,
            nodes,
            events: Vec::new(),
        }
    }

    pub fn set_state(&mut self, state: JobState) {
        if self.state == state {
            return;
        }
        let now = time::now();
        if let Some(last) = self.status.last_mut() {
            last.exit = Some(now);
        }
        self.status.push(Status {
            state,
            enter: now,
            exit: None,
        });
        self.state = state;
        self.timestamp = now;
        if state == JobState::Running && self.started.is_none() {
            self.started = Some(now);
        }
        if state.is_terminal() {
            self.finished = Some(now);
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
        if let Some(n) = node.and_then(|n| self.nodes.get_mut(n)) {
            n.latest_event = Some(id);
        }
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
    pub fn render(&self, base: &str, with_status: bool) -> Job {
        let url = self.url(base);
        let states = self.node_states();
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
            node_count: self.nodes.len() as u64,
            node_states: (!states.is_empty()).then_some(states),
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
            status: with_status.then(|| {
                self.status
                    .iter()
                    .map(|s| StatusEntry {
                        state: s.state,
                        enter_time: time::seconds(s.enter),
                        exit_time: s.exit.map(time::seconds),
                    })
                    .collect()
            }),
        }
    }

    pub fn render_node(&self, n: &NodeRecord) -> JobNode {
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

    /// `next-events` for a cursor.
    pub fn next_events(&self, base: &str, start: u64) -> NextEvents {
        NextEvents {
            id: format!("{}/events?start={start}", self.url(base)),
            event: Some(start.to_string()),
        }
    }

    pub fn render_event(&self, idx: usize) -> Event {
        let e = &self.events[idx];
        let node = e.node.and_then(|n| self.nodes.get(n as usize));
        let detail = match &e.detail {
            Detail::Noop(b) => json!({ "noop": b }),
            Detail::NodeResult => node
                .and_then(|n| n.result.clone())
                .unwrap_or_else(|| json!({})),
            Detail::Value(v) => v.clone(),
        };
        Event {
            id: (idx + 1).to_string(),
            event_type: e.kind,
            timestamp: time::seconds(e.ts),
            details: EventDetails {
                node: node.map(|n| n.name.clone()),
                detail,
            },
            message: e.message.clone(),
        }
    }

    /// Marks a job that was running when the service went away as failed.
    /// Returns whether anything changed.
    pub fn fail_interrupted(&mut self, reason: &str) -> bool {
        if self.state.is_terminal() {
            return false;
        }
        let now = time::now();
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            let (state, kind, message) = match n.state {
                NodeState::New | NodeState::Ready => (
                    NodeState::Skipped,
                    EventType::NodeSkipped,
                    format!("Skipped {}: {reason}", n.name),
                ),
                s if s.is_terminal() => continue,
                _ => (
                    NodeState::Failed,
                    EventType::NodeFailed,
                    format!("Task on {} ended without a result: {reason}", n.name),
                ),
            };
            let n = &mut self.nodes[i];
            n.state = state;
            n.timestamp = now;
            if n.start.is_some() {
                n.finish = Some(now);
                n.result = Some(json!({ "_error": {
                    "kind": orchestrator_types::error::kind::EXECUTION_FAILURE,
                    "msg": message.clone(),
                    "details": { "node": n.name.clone() },
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
        self.set_state(JobState::Failed);
        let detail = json!({ "state": "failed", "reason": reason });
        self.push_event(
            EventType::JobFinished,
            None,
            Detail::Value(detail),
            format!("Job failed: {reason}"),
        );
        true
    }
}

/// The owner object: PE sends the full RBAC subject.
fn owner(login: &str, logged_in: f64) -> Owner {
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
