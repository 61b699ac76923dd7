//! `GET /jobs/:id/report`.
//!
//! The docs wrap the entries in `items`; real clients read `report`. The
//! orchestrator writes `report` and this type reads either.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Per-node summary of a job.
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
