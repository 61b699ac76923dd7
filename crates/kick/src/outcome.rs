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
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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
        // Event timestamps have whole seconds (PE's format), so the time
        // between two is off by up to a second: a duration the result
        // carries (psick's run time) is the better figure.
        let duration = result
            .as_ref()
            .and_then(|r| r.get("duration"))
            .and_then(Value::as_f64)
            .or(duration);
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
        let f = Facts::read(state, duration, p, message, job_noop);
        let output = p
            .filter(|_| keep_output(f.outcome))
            .and_then(|p| p.get("_output"))
            .and_then(Value::as_str)
            .map(strip_ansi);
        Self {
            name,
            state,
            outcome: f.outcome,
            duration: f.duration,
            exitcode: f.exitcode,
            resources: f.resources,
            output,
            error: f.error,
            result,
            json: None,
        }
    }

    /// From a node record whose result is kept as the server wrote it, for
    /// the JSON formats: the report comes serialized ([`NodeReport::json`]),
    /// its `result` copied from the server's text, and so is `output` when
    /// it holds nothing to strip. Parsing a large result into a value and
    /// escaping its output twice (as `output` and inside `result`) was most
    /// of the cost of `--format json` on large jobs.
    pub fn from_raw_node(
        mut node: JobNode<RawResult>,
        job_noop: bool,
        keep_output: impl Fn(Outcome) -> bool,
    ) -> Self {
        let result = match node.result.take() {
            Some(RawResult::Members(mut members)) if distinct(&members) => {
                match Self::from_members(&node, &mut members, job_noop, &keep_output) {
                    Some(report) => return report,
                    None => Some(RawResult::Members(members)),
                }
            }
            other => other,
        };
        // Results that are not objects, or have a key twice (the last one
        // counts, as when parsed), take the general path.
        let node = node.map_result(|_| result.map(RawResult::into_value).filter(|v| !v.is_null()));
        let mut report = Self::from_node_keeping(node, job_noop, keep_output);
        report.pre_serialize();
        report
    }

    /// The report of a node whose result has `members`, each key once.
    fn from_members(
        node: &JobNode<RawResult>,
        members: &mut [(String, Box<RawValue>)],
        job_noop: bool,
        keep_output: &impl Fn(Outcome) -> bool,
    ) -> Option<Self> {
        for (_, raw) in members.iter_mut() {
            // Strings cannot hold line breaks; other members may, when the
            // server pretty-prints.
            if !raw.get().starts_with('"')
                && let Some(c) = compact(raw.get()).and_then(|c| RawValue::from_string(c).ok())
            {
                *raw = c;
            }
        }
        let members = &*members;
        let mut payload = Map::new();
        let mut output = None;
        for (key, raw) in members {
            if key == "_output" {
                output = Some(&**raw);
            } else if PAYLOAD_KEYS.contains(&key.as_str()) {
                // A number no f64 holds reads as null; it did not stop the
                // page from being read.
                let v = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                if !v.is_null() {
                    payload.insert(key.clone(), v);
                }
            }
        }
        let p = Value::Object(payload);
        let message = node
            .details
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let f = Facts::read(node.state, node.duration, Some(&p), message, job_noop);
        let output = output
            .filter(|_| keep_output(f.outcome))
            .and_then(Text::output);
        // Room for the result, the output beside it and the small members:
        // growing the buffer would copy the large ones again.
        let size: usize = members
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut json = Vec::with_capacity(size + output.as_ref().map_or(0, Text::len) + 1024);
        serde_json::to_writer(
            &mut json,
            &RawReport {
                name: &node.name,
                state: node.state,
                outcome: f.outcome,
                duration: f.duration,
                exitcode: f.exitcode,
                resources: f.resources.as_ref(),
                output,
                error: f.error.as_ref(),
                result: Members(members),
            },
        )
        .ok()?;
        Some(Self {
            name: node.name.clone(),
            state: node.state,
            outcome: f.outcome,
            duration: f.duration,
            exitcode: f.exitcode,
            resources: f.resources,
            output: None,
            error: f.error,
            result: None,
            json: Some(json),
        })
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

/// What a report says besides the output and the result.
struct Facts {
    outcome: Outcome,
    duration: Option<f64>,
    exitcode: Option<i64>,
    resources: Option<Value>,
    error: Option<Value>,
}

impl Facts {
    /// From the payload `p` (an object, or none), by the module's rules.
    fn read(
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
            duration: duration
                .or_else(|| p.and_then(|p| p.get("duration")).and_then(Value::as_f64)),
            exitcode: p.and_then(exitcode),
            resources: p.and_then(resources),
            error,
        }
    }
}

/// The members of a result object that the rules of this module read,
/// besides `_output`.
const PAYLOAD_KEYS: [&str; 8] = [
    "_error",
    "status",
    "noop",
    "changed",
    "resources",
    "metrics",
    "exitcode",
    "duration",
];

/// A node's result as the server wrote it, for the JSON formats: an
/// object's members each as their JSON text, so that a large `_output` is
/// read once and written out as sent, or any other value parsed.
#[derive(Debug, Clone)]
pub enum RawResult {
    /// An object's members, in the server's order.
    Members(Vec<(String, Box<RawValue>)>),
    /// Anything but an object.
    Other(Value),
}

impl RawResult {
    /// From a parsed result.
    pub fn from_value(v: Value) -> Self {
        match v {
            Value::Object(m) => Self::Members(
                m.into_iter()
                    .filter_map(|(k, v)| Some((k, serde_json::value::to_raw_value(&v).ok()?)))
                    .collect(),
            ),
            other => Self::Other(other),
        }
    }

    /// The parsed result; of members with the same key the last counts,
    /// as when a document is parsed.
    fn into_value(self) -> Value {
        match self {
            Self::Members(m) => Value::Object(
                m.into_iter()
                    .map(|(k, raw)| (k, serde_json::from_str(raw.get()).unwrap_or(Value::Null)))
                    .collect(),
            ),
            Self::Other(v) => v,
        }
    }
}

impl<'de> Deserialize<'de> for RawResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawResultVisitor)
    }
}

struct RawResultVisitor;

impl<'de> serde::de::Visitor<'de> for RawResultVisitor {
    type Value = RawResult;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a task result")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawResult, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            members.push((key, map.next_value::<Box<RawValue>>()?));
        }
        Ok(RawResult::Members(members))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RawResult, A::Error> {
        Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(RawResult::Other)
    }

    fn visit_bool<E>(self, v: bool) -> Result<RawResult, E> {
        Ok(RawResult::Other(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<RawResult, E> {
        Ok(RawResult::Other(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<RawResult, E> {
        Ok(RawResult::Other(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<RawResult, E> {
        Ok(RawResult::Other(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<RawResult, E> {
        Ok(RawResult::Other(v.into()))
    }

    fn visit_unit<E>(self) -> Result<RawResult, E> {
        Ok(RawResult::Other(Value::Null))
    }
}

/// True when no key comes twice.
fn distinct(members: &[(String, Box<RawValue>)]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    members.iter().all(|(k, _)| seen.insert(k.as_str()))
}

/// An object from its members, each written as its text.
struct Members<'a>(&'a [(String, Box<RawValue>)]);

impl Serialize for Members<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A report serialized from a raw result; the members and their order are
/// those of [`NodeReport`].
#[derive(Serialize)]
struct RawReport<'a> {
    name: &'a str,
    state: NodeState,
    outcome: Outcome,
    duration: Option<f64>,
    exitcode: Option<i64>,
    resources: Option<&'a Value>,
    output: Option<Text<'a>>,
    error: Option<&'a Value>,
    result: Members<'a>,
}

/// The `output` member: the server's string token when it has nothing to
/// strip, else the cleaned text.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Text<'a> {
    Raw(&'a RawValue),
    Clean(String),
}

impl<'a> Text<'a> {
    /// About the size of its JSON.
    fn len(&self) -> usize {
        match self {
            Self::Raw(token) => token.get().len(),
            Self::Clean(text) => text.len() + text.len() / 8 + 2,
        }
    }

    /// From the `_output` token; none unless it is a string, as for a
    /// parsed result.
    fn output(token: &'a RawValue) -> Option<Self> {
        let s = token.get();
        if !s.starts_with('"') {
            return None;
        }
        if needs_no_stripping(s.as_bytes()) {
            return Some(Self::Raw(token));
        }
        let text: String = serde_json::from_str(s).ok()?;
        Some(Self::Clean(strip_ansi(&text)))
    }
}

/// True when the JSON string token `raw` cannot decode to text holding an
/// ESC or a 0x9b byte, which is when [`strip_ansi`] returns the text as it
/// is. Escapes of ASCII characters other than ESC are safe; any other
/// `\u` escape is left to the decoder (serde_json writes none, and none
/// arise from a valid string without them).
fn needs_no_stripping(raw: &[u8]) -> bool {
    if memchr::memchr2(0x1b, 0x9b, raw).is_some() {
        return false;
    }
    // Output has an escape on every line, `\u` escapes are rare: look for
    // those, then tell escapes from text by the backslashes before them
    // (an even run escapes itself).
    memchr::memmem::find_iter(raw, b"\\u").all(|at| {
        let run = raw
            .get(..at)
            .unwrap_or_default()
            .iter()
            .rev()
            .take_while(|&&c| c == b'\\')
            .count();
        run % 2 == 1
            || raw
                .get(at + 2..at + 6)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u16::from_str_radix(h, 16).ok())
                .is_some_and(|c| c < 0x80 && c != 0x1b)
    })
}

/// `raw` without the whitespace between its tokens, when it has line
/// breaks or tabs there (a server that pretty-prints its answers): a
/// `jsonl` line must stay one line. Spaces alone are left; they are valid
/// and harmless.
fn compact(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    // Inside strings these bytes must be escaped: any is between tokens.
    memchr::memchr3(b'\n', b'\r', b'\t', b)?;
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                let start = i;
                i += 1;
                // To the closing quote, jumping over escapes.
                loop {
                    match b
                        .get(i..)
                        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                    {
                        Some(k) if b[i + k] == b'"' => {
                            i += k + 1;
                            break;
                        }
                        Some(k) => i = (i + k + 2).min(b.len()),
                        None => {
                            i = b.len();
                            break;
                        }
                    }
                }
                out.extend_from_slice(&b[start..i]);
            }
            b' ' | b'\n' | b'\r' | b'\t' => i += 1,
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
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

    /// `node` with its result read from the JSON text `text`, as the
    /// client reads it.
    fn raw_node(state: &str, text: &str, details: Value) -> JobNode<RawResult> {
        let mut n = node(state, Value::Null, details).map_result(|_: Option<Value>| None);
        n.result = serde_json::from_str(text).unwrap();
        n
    }

    /// The report's JSON from the raw result and from the parsed one.
    fn both_ways(
        state: &str,
        result: &Value,
        details: Value,
        noop: bool,
        keep: fn(Outcome) -> bool,
    ) -> (NodeReport, Vec<u8>, Vec<u8>) {
        let raw = NodeReport::from_raw_node(
            raw_node(state, &result.to_string(), details.clone()),
            noop,
            keep,
        );
        let mut parsed =
            NodeReport::from_node_keeping(node(state, result.clone(), details), noop, keep);
        assert_eq!(raw.outcome, parsed.outcome, "{result}");
        parsed.pre_serialize();
        let (a, b) = (raw.json.clone().unwrap(), parsed.json.unwrap());
        (raw, a, b)
    }

    fn member(json: &[u8], key: &str) -> Value {
        serde_json::from_slice::<Value>(json).unwrap()[key].clone()
    }

    #[test]
    fn raw_results_give_the_same_reports_as_parsed_ones() {
        let cases = [
            (
                "finished",
                json!({"status": "changed", "noop": false, "exitcode": 2,
                "resources": {"total": 9, "changed": 2, "failed": 0, "out_of_sync": 2, "skipped": 0, "noop_pending": 0},
                "_output": "\u{1b}[0;32mNotice: applied\u{1b}[0m"}),
                json!({}),
                false,
            ),
            (
                "finished",
                json!({"status": "unchanged", "noop": true,
                "resources": {"total": 9, "noop_pending": 3}}),
                json!({}),
                false,
            ),
            (
                "finished",
                json!({"status": "unchanged",
                "metrics": {"total": 171, "noop": 3}}),
                json!({}),
                true,
            ),
            (
                "failed",
                json!({"status": "failed", "exitcode": 4,
                "_error": {"kind": "psick/resource-failures", "msg": "1 failed", "details": {"exitcode": 4}}}),
                json!({}),
                false,
            ),
            (
                "finished",
                json!({"_output": "hi\n", "duration": 3.25}),
                json!({}),
                false,
            ),
            (
                "finished",
                json!({"changed": true, "other": [1, {"x": "y"}]}),
                json!({}),
                false,
            ),
            (
                "finished",
                json!({"_error": null, "status": null, "noop": null}),
                json!({}),
                true,
            ),
            (
                "finished",
                json!({"_error": {"kind": "k", "msg": "m"}}),
                json!({}),
                false,
            ),
            (
                "failed",
                json!({"_error": {"kind": "puppetlabs.tasks/task-error", "msg": "x",
                "details": {"exit_code": 3}}}),
                json!({}),
                false,
            ),
            (
                "errored",
                json!({}),
                json!({"message": "n1 is not connected"}),
                false,
            ),
            ("stopped", json!({"_output": 5}), json!({}), false),
            (
                "finished",
                json!({"_output": {"lines": ["a"]}, "status": 7}),
                json!({}),
                false,
            ),
            // Not objects, or nothing: the general path.
            ("finished", json!("just text"), json!({}), false),
            ("finished", json!([1, 2]), json!({}), false),
            (
                "finished",
                json!([{"a": [1.5, null]}, "b"]),
                json!({}),
                false,
            ),
            ("finished", json!(-5), json!({}), false),
            ("finished", json!(true), json!({}), false),
            (
                "finished",
                Value::Null,
                json!({"status": "changed", "metrics": {"total": 1}}),
                false,
            ),
            ("errored", Value::Null, json!({"message": "gone"}), false),
        ];
        for (state, result, details, noop) in cases {
            for keep in [(|_| true) as fn(Outcome) -> bool, |_| false] {
                let (_, raw, parsed) = both_ways(state, &result, details.clone(), noop, keep);
                assert_eq!(
                    String::from_utf8_lossy(&raw),
                    String::from_utf8_lossy(&parsed),
                    "{state} {result}"
                );
            }
        }
    }

    #[test]
    fn ansi_free_output_is_copied_as_sent_and_other_output_cleaned() {
        // `\/` is an escape serde_json never writes: its presence shows the
        // token was copied.
        let r = NodeReport::from_raw_node(
            raw_node(
                "finished",
                r#"{"_output":"a\/b\n\"q\" \\u001b","x":1}"#,
                json!({}),
            ),
            false,
            |_| true,
        );
        let json = String::from_utf8(r.json.unwrap()).unwrap();
        assert!(json.contains(r#""output":"a\/b\n\"q\" \\u001b""#), "{json}");
        assert!(
            json.contains(r#""result":{"_output":"a\/b\n\"q\" \\u001b","x":1}"#),
            "{json}"
        );

        for (text, clean) in [
            (r#""\u001b[1;31mError:\u001B[0m x""#, "Error: x"),
            // However strip-ansi-escapes reads a C1 CSI, the same way.
            (r#""\u009b0mtail""#, &strip_ansi("\u{9b}0mtail")),
            ("\"Kněžice \\u001b[0m\"", "Kněžice "),
            ("\"Kněžice\"", "Kněžice"),
            (r#""\u00db\ud83d\ude00""#, "Û😀"),
        ] {
            let r = NodeReport::from_raw_node(
                raw_node("finished", &format!(r#"{{"_output":{text}}}"#), json!({})),
                false,
                |_| true,
            );
            assert_eq!(member(r.json.as_ref().unwrap(), "output"), clean, "{text}");
        }
    }

    #[test]
    fn escape_checks_and_compaction_handle_odd_input() {
        assert!(needs_no_stripping(br#""plain \n\t\"\\ \u0041""#));
        // An escaped backslash before `u001b` is text, not an escape.
        assert!(needs_no_stripping(br#""\\u001b""#));
        assert!(needs_no_stripping(br#""\\\\u001b \u007f""#));
        for risky in [
            &br#""\u001b""#[..],
            br#""\u001B""#,
            br#""\u009b""#,
            br#""\u00DB""#,
            br#""\u12""#,
            br#""\u+7f0""#,
            br#""\\\u001b""#,
            b"\"\x1b\"",
            b"\"\xc4\x9b\"",
        ] {
            assert!(!needs_no_stripping(risky), "{risky:?}");
        }
        assert_eq!(compact(r#"{"a": "b c", "d": [1, 2]}"#), None);
        assert_eq!(
            compact("{\n  \"a\\\"\\\\\": \"x\\ny\",\n\t\"b\": [1,\r\n 2]\n}").as_deref(),
            Some(r#"{"a\"\\":"x\ny","b":[1,2]}"#)
        );
        // Truncated input does not panic.
        assert!(compact("{\n\"a").is_some());
        assert!(compact("{\n\"a\\").is_some());
    }

    #[test]
    fn pretty_printed_results_stay_on_one_line() {
        let text = "{\n  \"_output\": \"done\\n\",\n  \"status\": \"changed\",\n  \"resources\": {\n    \"total\": 1\n  }\n}";
        let r = NodeReport::from_raw_node(raw_node("finished", text, json!({})), false, |_| true);
        assert_eq!(r.outcome, Outcome::Changed);
        let json = r.json.unwrap();
        assert!(!json.contains(&b'\n'));
        assert_eq!(
            member(&json, "result"),
            json!({"_output": "done\n", "status": "changed", "resources": {"total": 1}})
        );
        assert_eq!(member(&json, "output"), "done\n");
    }

    #[test]
    fn results_the_lean_reading_refuses_take_the_general_path() {
        // Duplicate keys: the last one counts, as when parsed.
        let r = NodeReport::from_raw_node(
            raw_node(
                "finished",
                r#"{"status":"failed","status":"changed"}"#,
                json!({}),
            ),
            false,
            |_| true,
        );
        assert_eq!(r.outcome, Outcome::Changed);
        // A number no f64 holds: the result is dropped, nothing panics.
        let r = NodeReport::from_raw_node(
            raw_node("finished", r#"{"exitcode":1e999}"#, json!({})),
            false,
            |_| true,
        );
        assert_eq!(r.outcome, Outcome::Unchanged);
        assert!(r.json.is_some());
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
    fn a_result_duration_beats_whole_second_event_timestamps() {
        let with = json!({"status": "changed", "duration": 7.64});
        let r = NodeReport::from_event(
            "n".into(),
            EventType::NodeFinished,
            &with,
            "",
            Some(9.0),
            false,
        );
        assert_eq!(r.duration, Some(7.64));
        let without = json!({"status": "changed"});
        let r = NodeReport::from_event(
            "n".into(),
            EventType::NodeFinished,
            &without,
            "",
            Some(9.0),
            false,
        );
        assert_eq!(r.duration, Some(9.0));
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
