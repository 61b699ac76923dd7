//! Results kept as the server wrote them, for the JSON formats, which copy
//! them through: an object's members each as their JSON text, so that a
//! large `_output` is read once and written out as sent. Only the members
//! the rules read ([`PAYLOAD_KEYS`]) are parsed.

use orchestrator_types::JobNode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Facts, NodeReport, Outcome, PAYLOAD_KEYS};

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

/// A node read from a raw result, for [`super::prepare`].
#[derive(Debug)]
pub enum RawRead {
    /// An object with each key once: the report without output or result,
    /// the members to write as the result, and the index of the `_output`
    /// member when its text is wanted as `output`.
    Members {
        /// The report.
        report: NodeReport,
        /// The result's members, compacted.
        members: Vec<(String, Box<RawValue>)>,
        /// `_output`'s index in `members`, when kept.
        output: Option<usize>,
    },
    /// Anything else (not an object, a key twice): read as parsed.
    Parsed(NodeReport),
}

impl RawRead {
    /// The report read.
    pub fn report_mut(&mut self) -> &mut NodeReport {
        match self {
            Self::Members { report, .. } | Self::Parsed(report) => report,
        }
    }
}

/// Reads a node whose result is kept as the server wrote it; the output is
/// kept when `keep_output` wants it for the node's outcome.
pub fn read_raw(
    mut node: JobNode<RawResult>,
    job_noop: bool,
    keep_output: impl Fn(Outcome) -> bool,
) -> RawRead {
    let result = match node.result.take() {
        Some(RawResult::Members(members)) if distinct(&members) => {
            return read_members(node, members, job_noop, &keep_output);
        }
        other => other,
    };
    // Results that are not objects, or have a key twice (the last one
    // counts, as when parsed), take the general path.
    let node = node.map_result(|_| result.map(RawResult::into_value).filter(|v| !v.is_null()));
    RawRead::Parsed(NodeReport::from_node_keeping(node, job_noop, keep_output))
}

fn read_members(
    node: JobNode<RawResult>,
    mut members: Vec<(String, Box<RawValue>)>,
    job_noop: bool,
    keep_output: &impl Fn(Outcome) -> bool,
) -> RawRead {
    for (_, raw) in members.iter_mut() {
        // Strings cannot hold line breaks; other members may, when the
        // server pretty-prints.
        if !raw.get().starts_with('"')
            && let Some(c) = compact(raw.get()).and_then(|c| RawValue::from_string(c).ok())
        {
            *raw = c;
        }
    }
    let mut payload = Map::new();
    let mut output = None;
    for (i, (key, raw)) in members.iter().enumerate() {
        if key == "_output" {
            output = Some(i);
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
    let output = output.filter(|_| keep_output(f.outcome));
    RawRead::Members {
        report: NodeReport::from_facts(node.name, node.state, f),
        members,
        output,
    }
}

/// `raw` without the whitespace between its tokens, when it has line
/// breaks or tabs there (a server that pretty-prints its answers): a
/// `jsonl` line must stay one line. Spaces alone are left; they are valid
/// and harmless. `None` when there is nothing to do, or `raw` is not JSON.
pub(crate) fn compact(raw: &str) -> Option<String> {
    // Inside strings these bytes must be escaped: any is between tokens.
    memchr::memchr3(b'\n', b'\r', b'\t', raw.as_bytes())?;
    let mut out = Vec::with_capacity(raw.len());
    let mut de = serde_json::Deserializer::from_str(raw);
    serde_transcode::transcode(&mut de, &mut serde_json::Serializer::new(&mut out)).ok()?;
    String::from_utf8(out).ok()
}
