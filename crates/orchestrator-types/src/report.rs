//! `GET /jobs/:id/report`.
//!
//! The docs wrap the entries in `items`; real clients read `report`. The
//! orchestrator writes `report` and this type reads either.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Per-node summary of a job.
///
/// Its timestamps are [`crate::JobNode`]'s, but this is the report's entry (`node`, the state
/// as text, resource `events`), another document of PE's: a type of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportEntry {
    /// Certname.
    pub node: String,
    /// Node state as a string.
    pub state: String,
    /// Time of the last change.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// When the node started.
    #[serde(default)]
    pub start_timestamp: Option<String>,
    /// When the node ended.
    #[serde(default)]
    pub finish_timestamp: Option<String>,
    /// Resource events (empty for task jobs).
    #[serde(default)]
    pub events: Vec<Value>,
}

/// `GET /jobs/:id/report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The entries.
    #[serde(alias = "items")]
    pub report: Vec<ReportEntry>,
}
