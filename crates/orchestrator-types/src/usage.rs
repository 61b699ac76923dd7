//! `GET /usage`: node counts per day.

use serde::{Deserialize, Serialize};

/// One day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Nodes counted that day.
    pub total_nodes: u64,
    /// Of those, nodes with an agent.
    pub nodes_with_agent: u64,
    /// Of those, agentless nodes.
    pub nodes_without_agent: u64,
    /// With `events=include`: corrective changes made by agent runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrective_agent_changes: Option<u64>,
    /// With `events=include`: intentional changes made by agent runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intentional_agent_changes: Option<u64>,
    /// With `events=include`: nodes a task ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes_affected_by_task_runs: Option<u64>,
    /// With `events=include`: nodes a plan's tasks ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes_affected_by_plan_runs: Option<u64>,
}

/// The dates a `/usage` answer covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRange {
    /// First day.
    pub start_date: String,
    /// Last day.
    pub end_date: String,
}

/// `GET /usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// One entry a day, oldest first.
    pub items: Vec<UsageDay>,
    /// The range asked for (or defaulted).
    pub pagination: UsageRange,
}
