//! Scheduled jobs: `GET/POST /scheduled_jobs/environment_jobs`,
//! `GET/PUT/DELETE /scheduled_jobs/environment_jobs/:id`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::job::Owner;
use crate::lenient;

/// When a scheduled job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The first run (ISO-8601 UTC).
    pub start_time: String,
    /// Time between runs; `null` runs once.
    #[serde(default)]
    pub interval: Option<Interval>,
}

/// A repeat interval; PE accepts only `units: "seconds"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// `seconds`.
    pub units: String,
    /// How many units between runs.
    pub value: u64,
}

/// `POST /scheduled_jobs/environment_jobs` (and the body of `PUT`, where
/// every key is optional and `enabled` may be set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRequest {
    /// `deploy`, `task` or `plan`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    /// The job's body: a deploy request, a task request or a plan_run
    /// request, without `environment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Map<String, Value>>,
    /// Environment (may be `""` for deploys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// When it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Arbitrary key/values given to each job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userdata: Option<Map<String, Value>>,
    /// Whether it runs when due (PUT only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A scheduled job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledJob {
    /// Absolute URL.
    pub id: String,
    /// Name, a string of digits.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub name: String,
    /// `deploy`, `task` or `plan`.
    #[serde(rename = "type")]
    pub job_type: String,
    /// Environment.
    pub environment: String,
    /// Who scheduled it.
    #[serde(default)]
    pub owner: Owner,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Given to each job.
    #[serde(default)]
    pub userdata: Value,
    /// The job's body.
    #[serde(default)]
    pub input: Value,
    /// When it runs.
    pub schedule: Schedule,
    /// The next run (ISO-8601); `null` once a one-off job has run.
    #[serde(default)]
    pub next_run_time: Option<String>,
    /// Whether it runs when due.
    pub enabled: bool,
    /// The job its last run started, when it has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_job: Option<Value>,
}

/// `GET /scheduled_jobs/environment_jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledJobList {
    /// One page.
    pub items: Vec<ScheduledJob>,
    /// Paging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<crate::Pagination>,
}

/// Answer of `POST /scheduled_jobs/environment_jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledJobCreated {
    /// The new scheduled job.
    pub scheduled_job: crate::JobRef,
}
