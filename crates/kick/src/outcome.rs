//! What a node's run amounted to, from its state and its result.
//!
//! Rules (documented in the README):
//! - `finished` nodes are `unchanged` or `changed`: `changed` when the result
//!   (a psick::puppet_agent result, or a deploy's run summary) has
//!   `status: "changed"`, or a noop run reports pending changes
//!   (`resources.noop_pending` / `metrics.noop` > 0), or a generic task
//!   result says `"changed": true`; a finished node whose result carries
//!   `_error` or `status: "failed"` is `failed`.
//! - `failed` → failed, `errored` → errored, `skipped` → skipped,
//!   `stopped` → stopped; a node that never started by the time the job
//!   ended counts as skipped, one still running as stopped.

use orchestrator_types::NodeState;
use orchestrator_types::{EventType, JobNode};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The `_error` kind of a run ended by a force stop.
const JOB_STOPPED: &str = "puppetlabs.orchestrator/job-stopped";

/// A node's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Succeeded, nothing changed.
    Unchanged,
    /// Succeeded and changed something (or would have, in noop).
    Changed,
    /// Ran and failed.
    Failed,
    /// Could not run.
    Errored,
    /// Was not run.
    Skipped,
    /// Was stopped.
    Stopped,
}

impl Outcome {
    /// All outcomes, in summary order, which is also declaration order: an
    /// outcome `as usize` is its index here.
    pub const ALL: [Outcome; 6] = [
        Self::Unchanged,
        Self::Changed,
        Self::Failed,
        Self::Errored,
        Self::Skipped,
        Self::Stopped,
    ];

    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unchanged => "unchanged",
            Self::Changed => "changed",
            Self::Failed => "failed",
            Self::Errored => "errored",
            Self::Skipped => "skipped",
            Self::Stopped => "stopped",
        }
    }

    /// True for the outcomes that make the exit code include 4.
    pub fn is_bad(self) -> bool {
        !matches!(self, Self::Unchanged | Self::Changed)
    }
}

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
    /// The raw result.
    pub result: Option<Value>,
    /// This report already serialized (then `output` and `result` are
    /// dropped): done where the results are fetched, off the task that
    /// writes them, for the JSON formats.
    #[serde(skip)]
    pub json: Option<Vec<u8>>,
}

impl NodeReport {
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
        let payload = substitute_payload(node.result.as_ref(), &node.details);
        let message = node
            .details
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Self::build(
            node.name,
            node.state,
            node.duration,
            payload,
            node.result,
            message,
            job_noop,
            keep_output,
        )
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
        Self::build(
            node,
            state,
            duration,
            None,
            result,
            message,
            job_noop,
            |_| true,
        )
    }

    /// `payload` is what the outcome is read from when it is not `result`
    /// itself (see [`substitute_payload`]).
    #[allow(clippy::too_many_arguments)]
    fn build(
        name: String,
        state: NodeState,
        duration: Option<f64>,
        payload: Option<Value>,
        result: Option<Value>,
        message: Option<String>,
        job_noop: bool,
        keep_output: impl Fn(Outcome) -> bool,
    ) -> Self {
        let p = payload
            .as_ref()
            .or(result.as_ref())
            .filter(|p| p.is_object());
        let outcome = classify(state, p, job_noop);
        let output = p
            .filter(|_| keep_output(outcome))
            .and_then(|p| p.get("_output"))
            .and_then(Value::as_str)
            .map(strip_ansi);
        let mut error = p
            .and_then(|p| p.get("_error"))
            .filter(|e| !e.is_null())
            .cloned();
        if error.is_none() && outcome.is_bad() {
            error = Some(json!({
                "kind": format!("kick/node-{}", state.as_str()),
                "msg": message.unwrap_or_else(|| format!("the node ended {}", state.as_str())),
                "details": {},
            }));
        }
        let duration =
            duration.or_else(|| p.and_then(|p| p.get("duration")).and_then(Value::as_f64));
        Self {
            exitcode: p.and_then(exitcode),
            resources: p.and_then(resources),
            name,
            state,
            outcome,
            duration,
            output,
            error,
            result,
            json: None,
        }
    }

    /// Serializes the report into [`NodeReport::json`] and drops the large
    /// fields nothing else needs.
    pub fn pre_serialize(&mut self) {
        if let Ok(bytes) = serde_json::to_vec(self) {
            self.json = Some(bytes);
            self.output = None;
            self.result = None;
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

/// The outcome rules of the module docs.
pub fn classify(state: NodeState, payload: Option<&Value>, job_noop: bool) -> Outcome {
    match state {
        NodeState::Finished => match payload {
            None => Outcome::Unchanged,
            Some(p) => {
                if p.get("_error").is_some_and(|e| !e.is_null()) {
                    return Outcome::Failed;
                }
                let noop = p.get("noop").and_then(Value::as_bool).unwrap_or(job_noop);
                match p.get("status").and_then(Value::as_str) {
                    Some("changed") => Outcome::Changed,
                    Some("failed") => Outcome::Failed,
                    _ if noop && noop_pending(p) > 0 => Outcome::Changed,
                    _ if p.get("changed").and_then(Value::as_bool) == Some(true) => {
                        Outcome::Changed
                    }
                    _ => Outcome::Unchanged,
                }
            }
        },
        NodeState::Failed => Outcome::Failed,
        NodeState::Errored | NodeState::Unknown => Outcome::Errored,
        NodeState::Skipped | NodeState::New | NodeState::Ready => Outcome::Skipped,
        NodeState::Stopped | NodeState::Running | NodeState::Stopping => Outcome::Stopped,
    }
}

fn noop_pending(p: &Value) -> u64 {
    let r = p.get("resources").and_then(|r| r.get("noop_pending"));
    let m = p
        .get("metrics")
        .and_then(|m| m.get("noop_pending").or_else(|| m.get("noop")));
    r.or(m).and_then(Value::as_u64).unwrap_or(0)
}

fn exitcode(p: &Value) -> Option<i64> {
    p.get("exitcode").and_then(Value::as_i64).or_else(|| {
        let d = p.get("_error")?.get("details")?;
        d.get("exitcode")
            .or_else(|| d.get("exit_code"))
            .and_then(Value::as_i64)
    })
}

const RESOURCE_KEYS: [&str; 6] = [
    "total",
    "changed",
    "failed",
    "out_of_sync",
    "skipped",
    "noop_pending",
];

/// `{total, changed, failed, out_of_sync, skipped, noop_pending}` from a
/// psick result's `resources` or a deploy summary's `metrics`.
fn resources(p: &Value) -> Option<Value> {
    let src = p
        .get("resources")
        .filter(|r| r.is_object())
        .or_else(|| p.get("metrics").filter(|m| m.is_object()))?;
    let mut out = Map::new();
    for k in RESOURCE_KEYS {
        let v = src.get(k).and_then(Value::as_u64).or_else(|| {
            // PE's deploy metrics call noop-pending changes `noop`.
            (k == "noop_pending")
                .then(|| src.get("noop").and_then(Value::as_u64))
                .flatten()
        });
        out.insert(k.to_owned(), Value::from(v.unwrap_or(0)));
    }
    Some(Value::Object(out))
}

/// Removes ANSI escape sequences (puppet colours its output even on pipes).
pub fn strip_ansi(s: &str) -> String {
    // Most output (psick's always) has no escape sequence: skip the parser,
    // which costs more than everything else when collecting large jobs. A
    // 0x9b byte is also a continuation byte of other characters; those only
    // take the slow path.
    if memchr::memchr2(0x1b, 0x9b, s.as_bytes()).is_none() {
        return s.to_owned();
    }
    let bytes = strip_ansi_escapes::strip(s.as_bytes());
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(state: &str, result: Value, details: Value) -> JobNode {
        serde_json::from_value(json!({
            "name": "n1", "state": state, "result": result, "details": details, "duration": 1.5
        }))
        .unwrap()
    }

    #[test]
    fn ansi_is_stripped_and_plain_text_kept() {
        assert_eq!(strip_ansi("\u{1b}[1;31mError:\u{1b}[0m x\n"), "Error: x\n");
        assert_eq!(strip_ansi("plain\ttext\r\n"), "plain\ttext\r\n");
        // Text whose UTF-8 holds a 0x9b byte ("ě" is c4 9b) comes through
        // whole, with or without escapes elsewhere.
        assert_eq!(strip_ansi("Kněžice \u{1b}[0m"), "Kněžice ");
        assert_eq!(strip_ansi("Kněžice"), "Kněžice");
    }

    #[test]
    fn outcome_discriminants_index_all() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i, "{o:?}");
        }
    }

    #[test]
    fn output_is_kept_only_for_wanted_outcomes() {
        let result =
            json!({"status": "changed", "_output": "\u{1b}[0;32mNotice: applied\u{1b}[0m"});
        let shown = NodeReport::from_node_keeping(
            node("finished", result.clone(), json!({})),
            false,
            |o| o == Outcome::Changed,
        );
        assert_eq!(shown.output.as_deref(), Some("Notice: applied"));
        let hidden = NodeReport::from_node_keeping(
            node("finished", result.clone(), json!({})),
            false,
            |o| o != Outcome::Changed,
        );
        assert_eq!(hidden.outcome, Outcome::Changed);
        assert_eq!(hidden.output, None);
        assert_eq!(hidden.result, Some(result));
    }

    #[test]
    fn psick_results_map_to_outcomes() {
        let changed = json!({"status": "changed", "noop": false, "exitcode": 2,
            "resources": {"total": 9, "changed": 2, "failed": 0, "out_of_sync": 2, "skipped": 0, "noop_pending": 0},
            "_output": "\u{1b}[0;32mNotice: applied\u{1b}[0m"});
        let r = NodeReport::from_node(node("finished", changed, json!({})), false);
        assert_eq!(r.outcome, Outcome::Changed);
        assert_eq!(r.exitcode, Some(2));
        assert_eq!(r.output.as_deref(), Some("Notice: applied"));
        assert_eq!(r.resources.unwrap()["changed"], 2);
        assert!(r.error.is_none());

        let pending = json!({"status": "unchanged", "noop": true,
            "resources": {"total": 9, "noop_pending": 3}});
        let r = NodeReport::from_node(node("finished", pending, json!({})), false);
        assert_eq!(r.outcome, Outcome::Changed);

        let failed = json!({"status": "failed", "exitcode": 4,
            "_error": {"kind": "psick/resource-failures", "msg": "1 failed", "details": {"exitcode": 4}}});
        let r = NodeReport::from_node(node("failed", failed, json!({})), false);
        assert_eq!(r.outcome, Outcome::Failed);
        assert_eq!(r.error_line().unwrap(), "psick/resource-failures: 1 failed");
    }

    #[test]
    fn generic_results_are_unchanged_unless_they_say_changed() {
        let r = NodeReport::from_node(
            node("finished", json!({"_output": "hi\n"}), json!({})),
            false,
        );
        assert_eq!(r.outcome, Outcome::Unchanged);
        let r = NodeReport::from_node(node("finished", json!({"changed": true}), json!({})), false);
        assert_eq!(r.outcome, Outcome::Changed);
        let r = NodeReport::from_node(
            node(
                "failed",
                json!({"_error": {"kind": "puppetlabs.tasks/task-error", "msg": "x", "details": {"exit_code": 3}}}),
                json!({}),
            ),
            false,
        );
        assert_eq!(r.exitcode, Some(3));
    }

    #[test]
    fn nodes_that_did_not_run_get_an_explaining_error() {
        let r = NodeReport::from_node(
            node(
                "errored",
                Value::Null,
                json!({"message": "n1 is not connected"}),
            ),
            false,
        );
        assert_eq!(r.outcome, Outcome::Errored);
        assert_eq!(r.error.as_ref().unwrap()["kind"], "kick/node-errored");
        assert_eq!(
            r.error_line().unwrap(),
            "kick/node-errored: n1 is not connected"
        );
        assert_eq!(classify(NodeState::New, None, false), Outcome::Skipped);
        assert_eq!(classify(NodeState::Running, None, false), Outcome::Stopped);
    }

    #[test]
    fn deploy_summaries_in_events_use_status_and_metrics() {
        let detail = json!({"status": "unchanged", "noop": true,
            "metrics": {"total": 171, "changed": 0, "failed": 0, "out_of_sync": 3, "skipped": 0, "noop": 3}});
        let r =
            NodeReport::from_event("a".into(), EventType::NodeFinished, &detail, "", None, true);
        assert_eq!(r.outcome, Outcome::Changed);
        assert_eq!(r.resources.unwrap()["noop_pending"], 3);
        let r = NodeReport::from_event(
            "a".into(),
            EventType::NodeFinished,
            &json!({"status": "unchanged", "metrics": {"total": 5}}),
            "",
            Some(2.0),
            false,
        );
        assert_eq!(r.outcome, Outcome::Unchanged);
        assert_eq!(r.duration, Some(2.0));
    }
}
