//! What a node's run amounted to, from its state and its result: the
//! rules ([`Outcome`], [`classify`]) here, the [`NodeReport`] built from
//! them in `report`, results kept as the server's text in `raw`.
//!
//! Rules (documented in docs/kick.md):
//! - `finished` nodes are `unchanged` or `changed`: `changed` when the result
//!   (a psick::puppet_agent result, or a deploy's run summary) has
//!   `status: "changed"`, or a noop run reports pending changes
//!   (`resources.noop_pending` / `metrics.noop` > 0), or a generic task
//!   result says `"changed": true`; a finished node whose result carries
//!   `_error` or `status: "failed"` is `failed`.
//! - `failed` → failed, `errored` → errored, `skipped` → skipped,
//!   `stopped` → stopped; a node that never started by the time the job
//!   ended counts as skipped, one still running as stopped.

mod raw;
mod report;
mod serialize;

use orchestrator_types::psick::Change;
use orchestrator_types::{NodeState, psick};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use raw::{RawRead, RawResult, read_raw};
pub use report::{NodeReport, Reading};
pub use serialize::{needs_no_stripping, pre_serialize, prepare};

// The `_error` kind of a run ended by a force stop.
use orchestrator_types::error::kind::JOB_STOPPED;

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
    /// Has not ended yet: only for nodes of a job that is still going
    /// (`kick job show` of a job in progress).
    Running,
}

impl Outcome {
    /// All outcomes, in summary order, which is also declaration order: an
    /// outcome `as usize` is its index here.
    pub const ALL: [Outcome; 7] = [
        Self::Unchanged,
        Self::Changed,
        Self::Failed,
        Self::Errored,
        Self::Skipped,
        Self::Stopped,
        Self::Running,
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
            Self::Running => "running",
        }
    }

    /// True for the outcomes that make the exit code include 4.
    pub fn is_bad(self) -> bool {
        !matches!(self, Self::Unchanged | Self::Changed | Self::Running)
    }
}

/// What the rules make of a node besides its outcome.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub(crate) outcome: Outcome,
    pub(crate) duration: Option<f64>,
    pub(crate) exitcode: Option<i64>,
    pub(crate) resources: Option<Value>,
    pub(crate) error: Option<Value>,
    pub(crate) changes: Vec<Change>,
    pub(crate) changes_truncated: u64,
}

impl Facts {
    /// From the payload `p` (an object, or none), by the module's rules.
    pub(crate) fn read(
        state: NodeState,
        duration: Option<f64>,
        p: Option<&Value>,
        message: Option<String>,
        job_noop: bool,
    ) -> Self {
        let outcome = classify(state, p, job_noop);
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
        Self {
            outcome,
            // One figure everywhere (live line, `kick job show`, JSON): the
            // task's own run time when its result has one (psick's), else
            // the orchestrator's.
            duration: p
                .and_then(|p| p.get("duration"))
                .and_then(Value::as_f64)
                .or(duration),
            exitcode: p.and_then(exitcode),
            resources: p.and_then(resources),
            error,
            changes: p.map(changes).unwrap_or_default(),
            changes_truncated: p
                .and_then(|p| p.get("changes_truncated"))
                .and_then(Value::as_u64)
                .unwrap_or(0),
        }
    }
}

/// The members of a result object that the rules of this module read,
/// besides `_output`.
pub(crate) const PAYLOAD_KEYS: [&str; 10] = [
    "_error",
    "status",
    "noop",
    "changed",
    "resources",
    "metrics",
    "exitcode",
    "duration",
    "changes",
    "changes_truncated",
];

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
                // psick's statuses, which deploy summaries share.
                let status = p
                    .get("status")
                    .and_then(|s| psick::RunStatus::deserialize(s).ok());
                match status {
                    Some(psick::RunStatus::Changed) => Outcome::Changed,
                    Some(psick::RunStatus::Failed) => Outcome::Failed,
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

/// The psick contract's resource counts ([`psick::Resources`]) from a
/// psick result's `resources` or a deploy summary's `metrics`; a count that
/// is not a number reads as 0.
fn resources(p: &Value) -> Option<Value> {
    let src = p
        .get("resources")
        .filter(|r| r.is_object())
        .or_else(|| p.get("metrics").filter(|m| m.is_object()))?;
    let n = |k: &str| src.get(k).and_then(Value::as_u64);
    let counts = psick::Resources {
        total: n("total").unwrap_or(0),
        changed: n("changed").unwrap_or(0),
        failed: n("failed").unwrap_or(0),
        out_of_sync: n("out_of_sync").unwrap_or(0),
        skipped: n("skipped").unwrap_or(0),
        // PE's deploy metrics call noop-pending changes `noop`.
        noop_pending: n("noop_pending").or_else(|| n("noop")).unwrap_or(0),
    };
    serde_json::to_value(counts).ok()
}

/// A psick result's `changes`: the entries that read as a change (one
/// malformed entry, say from a newer task, does not hide the others).
fn changes(p: &Value) -> Vec<Change> {
    match p.get("changes") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|c| Change::deserialize(c).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Removes ANSI escape sequences (puppet colours its output even on pipes),
/// keeping the text's whitespace: tabs (Puppet's diff headers) and carriage
/// returns included.
pub fn strip_ansi(s: &str) -> String {
    // Most output (psick's always) has no escape sequence: skip the parser,
    // which costs more than everything else when collecting large jobs. A
    // 0x9b byte is also a continuation byte of other characters; those only
    // take the slow path.
    if memchr::memchr2(0x1b, 0x9b, s.as_bytes()).is_none() {
        return s.to_owned();
    }
    anstream::adapter::strip_str(s).to_string()
}

#[cfg(test)]
mod tests;
