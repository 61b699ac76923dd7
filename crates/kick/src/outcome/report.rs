//! [`NodeReport`]: everything kick reports about one node, built by one
//! constructor from a [`Reading`] of an event or a node record.

use orchestrator_types::psick::Change;
use orchestrator_types::{EventType, JobNode, NodeState};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Facts, JOB_STOPPED, Outcome, strip_ansi};

/// Everything kick reports about one node; serialises as an item of the
/// `nodes` array of `--format json` (and, with `type`, a `jsonl` line).
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// Certname.
    pub name: String,
    /// The orchestrator's node state.
    pub state: NodeState,
    /// What it amounted to.
    pub outcome: Outcome,
    /// Seconds, when known.
    pub duration: Option<f64>,
    /// The task's (or puppet's) exit code, when known.
    pub exitcode: Option<i64>,
    /// Puppet resource counts (psick::puppet_agent and deploy results).
    pub resources: Option<Value>,
    /// The result's `_output`, ANSI-free.
    pub output: Option<String>,
    /// The result's `_error`, or kick's description of why the node did not run.
    pub error: Option<Value>,
    /// The run's changes (psick::puppet_agent's `changes`): what changed
    /// or, in noop, would change.
    pub changes: Vec<Change>,
    /// Changes the task's `changes_limit` left out.
    pub changes_truncated: u64,
    /// The raw result.
    pub result: Option<Value>,
    /// This report already serialized by the JSON renderer (then `output`
    /// and `result` are dropped): done where the results are fetched, off
    /// the task that writes them ([`super::prepare`]).
    #[serde(skip)]
    pub json: Option<Vec<u8>>,
}

/// What a [`NodeReport`] is made from.
#[derive(Debug)]
pub struct Reading<'a> {
    /// Certname.
    pub name: String,
    /// The node's state.
    pub state: NodeState,
    /// Seconds, when known apart from the result.
    pub duration: Option<f64>,
    /// What the rules read: the result, or what stands in for it.
    pub payload: Option<&'a Value>,
    /// The orchestrator's words about the node, for nodes that did not run.
    pub message: Option<String>,
    /// The job ran in noop mode.
    pub job_noop: bool,
}

impl NodeReport {
    /// The report the rules make of `r`, without output or result.
    pub fn new(r: Reading<'_>) -> Self {
        let payload = r.payload.filter(|p| p.is_object());
        let f = Facts::read(r.state, r.duration, payload, r.message, r.job_noop);
        Self::from_facts(r.name, r.state, f)
    }

    pub(crate) fn from_facts(name: String, state: NodeState, f: Facts) -> Self {
        Self {
            name,
            state,
            outcome: f.outcome,
            duration: f.duration,
            exitcode: f.exitcode,
            resources: f.resources,
            output: None,
            error: f.error,
            changes: f.changes,
            changes_truncated: f.changes_truncated,
            result: None,
            json: None,
        }
    }

    /// From a node record of `GET /jobs/:id/nodes`.
    pub fn from_node(node: JobNode, job_noop: bool) -> Self {
        Self::from_node_keeping(node, job_noop, |_| true)
    }

    /// Like [`NodeReport::from_node`], with `output` left out unless
    /// `keep_output` wants it for the node's outcome: cleaning the output of
    /// nodes nobody will see is most of the cost of collecting a large job.
    pub fn from_node_keeping(
        node: JobNode,
        job_noop: bool,
        keep_output: impl Fn(Outcome) -> bool,
    ) -> Self {
        let substitute = substitute_payload(node.result.as_ref(), &node.details);
        let payload = substitute.as_ref().or(node.result.as_ref());
        let message = node
            .details
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut report = Self::new(Reading {
            name: node.name,
            state: node.state,
            duration: node.duration,
            payload,
            message,
            job_noop,
        });
        report.output = output_of(payload, report.outcome, keep_output);
        report.result = node.result;
        report
    }

    /// From a node event (`node_finished`, `node_failed`, ...); `detail` is the
    /// event's `details.detail`: the task result, or a deploy's run summary.
    pub fn from_event(
        node: String,
        event: EventType,
        detail: &Value,
        message: &str,
        duration: Option<f64>,
        job_noop: bool,
    ) -> Self {
        let state = match event {
            EventType::NodeFinished => NodeState::Finished,
            EventType::NodeFailed => NodeState::Failed,
            EventType::NodeErrored => NodeState::Errored,
            EventType::NodeSkipped => NodeState::Skipped,
            _ => NodeState::Unknown,
        };
        let result = match detail {
            Value::Object(m) if !m.is_empty() => Some(detail.clone()),
            _ => None,
        };
        // PE has no node_stopped event; a force-stopped node's event is
        // node_errored while its record says stopped.
        let stopped = result
            .as_ref()
            .and_then(|r| r.get("_error"))
            .and_then(|e| e.get("kind"))
            .and_then(Value::as_str)
            == Some(JOB_STOPPED);
        let state = if stopped { NodeState::Stopped } else { state };
        let message = Some(message.to_owned()).filter(|m| !m.trim().is_empty());
        // Event timestamps have whole seconds (PE's format), so the time
        // between two is off by up to a second: a duration the result
        // carries (psick's run time) is the better figure.
        let duration = result
            .as_ref()
            .and_then(|r| r.get("duration"))
            .and_then(Value::as_f64)
            .or(duration);
        let mut report = Self::new(Reading {
            name: node,
            state,
            duration,
            payload: result.as_ref(),
            message,
            job_noop,
        });
        report.output = output_of(result.as_ref(), report.outcome, |_| true);
        report.result = result;
        report
    }

    /// For a node of a job that has not ended: a node that has not ended
    /// either is `running`, not stopped or skipped, and has no error.
    pub fn job_not_ended(&mut self) {
        if !self.state.is_terminal() {
            self.outcome = Outcome::Running;
            self.error = None;
        }
    }

    /// The error message, for human output.
    pub fn error_line(&self) -> Option<String> {
        let e = self.error.as_ref()?;
        let kind = e.get("kind").and_then(Value::as_str).unwrap_or("");
        let msg = e
            .get("msg")
            .and_then(Value::as_str)
            .map(|m| m.lines().next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        Some(match (kind.is_empty(), msg.is_empty()) {
            (false, false) => format!("{kind}: {msg}"),
            (false, true) => kind.to_owned(),
            (true, _) => msg,
        })
    }
}

/// The payload's `_output`, ANSI-free, when `keep` wants it for `outcome`.
fn output_of(
    payload: Option<&Value>,
    outcome: Outcome,
    keep: impl Fn(Outcome) -> bool,
) -> Option<String> {
    payload
        .filter(|p| p.is_object() && keep(outcome))
        .and_then(|p| p.get("_output"))
        .and_then(Value::as_str)
        .map(strip_ansi)
}

/// What the outcome is read from when the result is not an object: a
/// scalar result as output, else (deploy nodes on some PE versions) the
/// details carrying the run summary. `None` when the result itself serves
/// (large results are not copied).
fn substitute_payload(result: Option<&Value>, details: &Value) -> Option<Value> {
    match result {
        Some(Value::Object(_)) => None,
        Some(other) if !other.is_null() => Some(json!({ "_output": other.to_string() })),
        _ if details.get("status").is_some() || details.get("metrics").is_some() => {
            Some(details.clone())
        }
        _ => None,
    }
}
