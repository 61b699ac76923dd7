//! Plan jobs: `POST /command/plan_run|plan_start|plan_task|plan_finish|stop_plan`
//! and `GET /plan_jobs[/:id[/events]]`.
//!
//! `plan_start`, `plan_task` and `plan_finish` are what Bolt's PCP transport
//! sends when it runs a plan through PE (undocumented); `plan_run` has PE's
//! plan executor run it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::command::TaskRequest;
use crate::job::{Link, Owner, StatusEntry};
use crate::lenient;

states! {
    /// A plan job's state (PE documents these four).
    pub enum PlanState {
        /// Created, not yet running.
        Pending = "pending",
        /// Running.
        Running = "running",
        /// Ended well.
        Success = "success",
        /// Ended with an error.
        Failure = "failure",
    }
}

impl PlanState {
    /// True once the plan job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Success | Self::Failure)
    }
}

/// `POST /command/plan_run`.
///
/// Its optional members are also [`crate::TaskRequest`]'s, but it is PE's plan body (no scope,
/// no noop, `plan_name`), with its own member order: kept as its own type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanRunRequest {
    /// `module::plan`.
    pub plan_name: String,
    /// Plan parameters.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Environment the plan is read from (default `production`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seconds the whole plan may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Arbitrary key/values stored with the plan job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userdata: Option<Map<String, Value>>,
}

/// `POST /command/plan_start` (Bolt): a plan job Bolt itself runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanStartRequest {
    /// `module::plan`.
    pub plan_name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Parameters (Bolt removes sensitive ones).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Environment, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Arbitrary key/values stored with the plan job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userdata: Option<Map<String, Value>>,
}

/// `POST /command/plan_task`: a task job belonging to a plan job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanTaskRequest {
    /// The plan job (a string or a number).
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub plan_job: String,
    /// The task request itself.
    #[serde(flatten)]
    pub task: TaskRequest,
}

/// `POST /command/plan_finish` (Bolt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFinishRequest {
    /// The plan job.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub plan_job: String,
    /// What the plan returned.
    #[serde(default)]
    pub result: Value,
    /// `success` or `failure`.
    pub status: PlanState,
}

/// `POST /command/stop_plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopPlanRequest {
    /// The plan job.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub plan_job: String,
}

/// Answer of `plan_run`, `plan_start`, `plan_finish` and `stop_plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCreated {
    /// The plan job's name (a string of digits).
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub name: String,
}

/// A plan job as `GET /plan_jobs/:id` (with `status`) and list items show it.
///
/// Much of it reads like [`crate::Job`], but PE defines the two documents apart (a plan job
/// has `created_timestamp`, its own states, no nodes), and each keeps its own field order on
/// the wire: two types, not one with a shared part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanJob {
    /// Absolute URL.
    pub id: String,
    /// Name, a string of digits.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub name: String,
    /// State.
    pub state: PlanState,
    /// `{plan_name, description, parameters, environment}`.
    #[serde(default)]
    pub options: Value,
    /// Who started it.
    #[serde(default)]
    pub owner: Owner,
    /// What the plan returned (absent with `results=exclude`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Time of the last state change.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// When it was created.
    #[serde(default)]
    pub created_timestamp: Option<String>,
    /// When it ended.
    #[serde(default)]
    pub finished_timestamp: Option<String>,
    /// Seconds, as a string like job durations.
    #[serde(default, with = "lenient::job_duration")]
    pub duration: Option<f64>,
    /// Link to its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Link>,
    /// Whatever the request's `userdata` held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userdata: Option<Value>,
    /// State history (only on `GET /plan_jobs/:id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<PlanStatusEntry>>,
}

/// One entry of a plan job's state history: a job's, with the plan states.
pub type PlanStatusEntry = StatusEntry<PlanState>;

/// `GET /plan_jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanJobList {
    /// One page of plan jobs.
    pub items: Vec<PlanJob>,
    /// Paging (same keys as `GET /jobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<crate::Pagination>,
}

/// One plan event: `task_start` (detail `job-id`), `plan_finished`,
/// `plan_failed` (detail `plan-id`, `result`), ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEvent {
    /// Event id, a string of digits.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub id: String,
    /// The event's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When.
    pub timestamp: String,
    /// Free-form details.
    #[serde(default)]
    pub details: Value,
}

/// `GET /plan_jobs/:id/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEventList {
    /// Events from the cursor on.
    pub items: Vec<PlanEvent>,
    /// Where to continue.
    #[serde(
        rename = "next-events",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_events: Option<crate::NextEvents>,
}
