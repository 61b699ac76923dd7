//! `GET /jobs/:id/events?start=N`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lenient;
use crate::node::NextEvents;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A node started.
    NodeRunning,
    /// A node succeeded.
    NodeFinished,
    /// A node failed.
    NodeFailed,
    /// A node could not run.
    NodeErrored,
    /// A node was not run.
    NodeSkipped,
    /// A stop was asked.
    JobStopping,
    /// The job ended without completing.
    JobAborted,
    /// The job ended; always the last event.
    JobFinished,
    /// A type this version does not know.
    #[serde(other)]
    Unknown,
}

impl EventType {
    /// True for the events after which no more come.
    pub fn ends_job(self) -> bool {
        matches!(self, Self::JobFinished | Self::JobAborted)
    }
}

/// `{"node": ..., "detail": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventDetails {
    /// The node the event is about (absent for job events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Type-specific detail: `{"noop": false}` for node_running; the task
    /// result or the Puppet run summary for node_finished/node_failed.
    #[serde(default)]
    pub detail: Value,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event id: a string of digits on the wire, increasing by one.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When (ISO-8601, `Z`).
    #[serde(default)]
    pub timestamp: String,
    /// Node and detail.
    #[serde(default)]
    pub details: EventDetails,
    /// Human text, e.g. `Started puppet run on X ...`.
    #[serde(default)]
    pub message: String,
}

impl Event {
    /// The numeric id (0 when the server sent something odd).
    pub fn number(&self) -> u64 {
        self.id.parse().unwrap_or(0)
    }
}

/// `GET /jobs/:id/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventList {
    /// Where to continue.
    #[serde(
        rename = "next-events",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_events: Option<NextEvents>,
    /// The events from `start` on.
    #[serde(default)]
    pub items: Vec<Event>,
}
