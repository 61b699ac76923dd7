//! `GET /jobs/:id/nodes`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::Pagination;
use crate::lenient;

job_states! {
    /// A node's state within a job: the job states ([`crate::JobState`]) and `errored` and
    /// `skipped`, PE's separate vocabulary for nodes.
    pub enum NodeState {
        /// Could not run (e.g. not connected).
        Errored = "errored",
        /// Not run (e.g. the job was stopped first).
        Skipped = "skipped",
    }
}

impl NodeState {
    /// True once the node will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Stopped | Self::Finished | Self::Failed | Self::Errored | Self::Skipped
        )
    }
}

/// One node of a job. `R` is how the result is held: parsed (`Value`), or
/// e.g. `Box<serde_json::value::RawValue>` by clients that copy large
/// results through without looking inside.
///
/// Its timestamps are also [`crate::ReportEntry`]'s, but the report's entry is another document
/// of PE's (`node`, the state as text, resource `events`): a type of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
pub struct JobNode<R = Value> {
    /// Certname.
    pub name: String,
    /// Current state.
    pub state: NodeState,
    /// Time of the last change (deprecated by PE, still sent).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// When the node started; `null` if it never did.
    #[serde(default)]
    pub start_timestamp: Option<String>,
    /// When the node ended; `null` while running or if never started.
    #[serde(default)]
    pub finish_timestamp: Option<String>,
    /// Seconds (elapsed if running); `null` if never started.
    #[serde(default, deserialize_with = "lenient::opt_f64_lenient")]
    pub duration: Option<f64>,
    /// Always `null` for task jobs.
    #[serde(default)]
    pub transaction_uuid: Option<String>,
    /// Details of the latest event (`message`, `report-url`, ...); may be `{}`.
    #[serde(default)]
    pub details: Value,
    /// The task result: the task's JSON object, or `{"_output": ...}`,
    /// with `_error` on failure; `null` until the node ends.
    #[serde(default)]
    pub result: Option<R>,
    /// `pcp` for agent nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Id of the node's latest event (an integer, unlike event ids).
    #[serde(
        rename = "latest-event-id",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_u64_lenient"
    )]
    pub latest_event_id: Option<u64>,
}

impl<R> JobNode<R> {
    /// The same node with its result converted by `f`.
    pub fn map_result<S>(self, f: impl FnOnce(Option<R>) -> Option<S>) -> JobNode<S> {
        JobNode {
            name: self.name,
            state: self.state,
            timestamp: self.timestamp,
            start_timestamp: self.start_timestamp,
            finish_timestamp: self.finish_timestamp,
            duration: self.duration,
            transaction_uuid: self.transaction_uuid,
            details: self.details,
            result: f(self.result),
            transport: self.transport,
            latest_event_id: self.latest_event_id,
        }
    }
}

impl JobNode {
    /// The `_error` object of the result, if any.
    pub fn error(&self) -> Option<&Value> {
        self.result
            .as_ref()
            .and_then(|r| r.get("_error"))
            .filter(|e| !e.is_null())
    }
}

/// Where to continue reading events: `start` = last event id + 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextEvents {
    /// URL of the events endpoint with `?start=N`.
    pub id: String,
    /// `N` as a string (not sent by every server version).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string_or_number"
    )]
    pub event: Option<String>,
}

impl NextEvents {
    /// The next `start` cursor, from `event` or else the URL's `start=` parameter.
    pub fn start(&self) -> Option<u64> {
        self.event
            .as_deref()
            .and_then(|e| e.parse().ok())
            .or_else(|| {
                self.id
                    .split_once("start=")
                    .and_then(|(_, rest)| rest.split('&').next())
                    .and_then(|n| n.parse().ok())
            })
    }
}

/// `GET /jobs/:id/nodes`; `R` as for [`JobNode`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
pub struct NodeList<R = Value> {
    /// The nodes on this page.
    pub items: Vec<JobNode<R>>,
    /// Cursor for the events endpoint.
    #[serde(
        rename = "next-events",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_events: Option<NextEvents>,
    /// `{offset, total}` (and `limit`) where the server sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    #[test]
    fn results_can_be_kept_as_the_servers_text() {
        let page = r#"{"items": [
            {"name": "a", "state": "finished", "result": {"_output": "x\u001b[0m",  "b": [1, 2.50]}},
            {"name": "b", "state": "errored", "result": null}
        ], "pagination": {"offset": 0, "total": 2}}"#;
        let raw: NodeList<Box<RawValue>> = serde_json::from_str(page).unwrap();
        let text = raw.items[0].result.as_ref().unwrap().get();
        assert_eq!(text, r#"{"_output": "x\u001b[0m",  "b": [1, 2.50]}"#);
        assert!(raw.items[1].result.is_none());
        let parsed: NodeList = serde_json::from_str(page).unwrap();
        let mapped = raw.items[0]
            .clone()
            .map_result(|r| serde_json::from_str::<Value>(r?.get()).ok());
        assert_eq!(mapped, parsed.items[0]);
    }
}
