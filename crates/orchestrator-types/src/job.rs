//! `GET /jobs` and `GET /jobs/:id`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::lenient;
use crate::node::NodeState;

job_states! {
    /// A job's state. `stopped`, `finished` and `failed` are terminal.
    pub enum JobState {}
}

impl JobState {
    /// True once the job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped | Self::Finished | Self::Failed)
    }
}

/// `{"id": "<url>"}` links to a job's sub-resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Absolute URL.
    pub id: String,
}

/// One entry of a job's state history; a plan job's ([`crate::plan::PlanStatusEntry`]) has its
/// own states, `S`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEntry<S = JobState> {
    /// The state entered.
    pub state: S,
    /// When it was entered (ISO-8601, `Z`).
    pub enter_time: String,
    /// When it was left; `null` for the current state.
    pub exit_time: Option<String>,
}

/// The job's owner (an RBAC subject); only `id` and `login` are reliable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    /// Subject id.
    #[serde(default)]
    pub id: String,
    /// Login name.
    #[serde(default)]
    pub login: String,
    /// Everything else the server sent (`email`, `display_name`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"name": "production"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentName {
    /// Environment name.
    pub name: String,
}

/// A job as `GET /jobs/:id` (with `status`) and `GET /jobs` items (without) show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Absolute URL of the job.
    pub id: String,
    /// Job number as a string of digits.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub name: String,
    /// Current state.
    pub state: JobState,
    /// `task`, `deploy`, `plan_task`, ...
    #[serde(default)]
    pub command: String,
    /// Same values as `command`.
    #[serde(default, rename = "type")]
    pub job_type: String,
    /// The request as the orchestrator stored it (`task`, `params`, `scope`, `noop`, ...).
    #[serde(default)]
    pub options: Value,
    /// Who started the job.
    #[serde(default)]
    pub owner: Owner,
    /// Deprecated copy of `options.description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Time of the last state change.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// When the job started running.
    #[serde(default)]
    pub started_timestamp: Option<String>,
    /// When the job ended.
    #[serde(default)]
    pub finished_timestamp: Option<String>,
    /// Seconds; a string on the wire (`"256.0"`).
    #[serde(default, with = "lenient::job_duration")]
    pub duration: Option<f64>,
    /// Deprecated `{name}` of the environment.
    #[serde(default)]
    pub environment: Option<EnvironmentName>,
    /// How many nodes the job has.
    #[serde(default)]
    pub node_count: u64,
    /// Node count per state, zero states omitted; `null` when the job has no nodes.
    #[serde(default)]
    pub node_states: Option<BTreeMap<NodeState, u64>>,
    /// Link to `/jobs/:id/nodes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Link>,
    /// Link to `/jobs/:id/report`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Link>,
    /// Link to `/jobs/:id/events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Link>,
    /// Whatever the request's `userdata` held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userdata: Option<Value>,
    /// State history (only on `GET /jobs/:id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<StatusEntry>>,
}

impl Job {
    /// The task name for task jobs (`options.task`).
    pub fn task(&self) -> Option<&str> {
        self.options.get("task").and_then(Value::as_str)
    }

    /// Whether the job was started in noop mode (`options.noop`).
    pub fn noop(&self) -> bool {
        self.options
            .get("noop")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The environment name, from `options.environment` or `environment.name`.
    pub fn environment_name(&self) -> Option<&str> {
        self.options
            .get("environment")
            .and_then(Value::as_str)
            .or(self.environment.as_ref().map(|e| e.name.as_str()))
    }
}

/// Paging information; every key is optional because it changed across PE versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pagination {
    /// Page size asked for.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_u64_lenient"
    )]
    pub limit: Option<u64>,
    /// Offset asked for.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_u64_lenient"
    )]
    pub offset: Option<u64>,
    /// Total items matching.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_u64_lenient"
    )]
    pub total: Option<u64>,
    /// `asc` or `desc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Sort key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    /// Job type filter echoed back.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
}

/// `GET /jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs on this page.
    pub items: Vec<Job>,
    /// Paging (absent on PE 2016.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}
