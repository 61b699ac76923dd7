//! Request and response bodies of `POST /orchestrator/v1/command/*`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::lenient;

/// Which nodes a job runs on: exactly one of the three should be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// Certnames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<String>>,
    /// A PQL string or a PuppetDB AST array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
    /// A classifier node group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_group: Option<String>,
}

impl Scope {
    /// A scope naming certnames.
    pub fn nodes<I: IntoIterator<Item = S>, S: Into<String>>(nodes: I) -> Self {
        Self {
            nodes: Some(nodes.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// How many of `nodes`, `query`, `node_group` are set (valid scopes set one).
    pub fn kinds_set(&self) -> usize {
        usize::from(self.nodes.is_some())
            + usize::from(self.query.is_some())
            + usize::from(self.node_group.is_some())
    }
}

/// `POST /command/task`.
///
/// Its optional members are also [`crate::plan::PlanRunRequest`]'s, but PE defines the task
/// body apart from the plan's (a scope, noop), with its own member order: two types.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    /// Puppet environment the task is read from (PE defaults to `production`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Target nodes.
    pub scope: Scope,
    /// `module::task`, or `module` for the `init` task.
    pub task: String,
    /// Task parameters (may be empty).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Free text shown in job listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Run in noop mode (the task must support it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noop: Option<bool>,
    /// Per-node limit in seconds; the node's execution is ended after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Arbitrary key/values stored with the job (PE 2019.8+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userdata: Option<Map<String, Value>>,
}

/// `POST /command/deploy` (what `puppet job run` sends).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// Environment the nodes run in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Target nodes.
    #[serde(default)]
    pub scope: Scope,
    /// Maximum number of nodes running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u64>,
    /// `--noop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noop: Option<bool>,
    /// `--no-noop` (mutually exclusive with `noop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_noop: Option<bool>,
    /// `--debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// `--trace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<bool>,
    /// `--evaltrace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaltrace: Option<bool>,
    /// `--tags`, comma separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    /// `--skip_tags`, comma separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_tags: Option<String>,
    /// `--http_connect_timeout` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_connect_timeout: Option<u64>,
    /// `--http_keepalive_timeout` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_keepalive_timeout: Option<u64>,
    /// `--http_read_timeout` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_read_timeout: Option<u64>,
    /// `--filetimeout` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filetimeout: Option<u64>,
    /// `--ordering` (`manifest`, `title-hash`, `random`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<String>,
    /// `--use_cached_catalog`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cached_catalog: Option<bool>,
    /// `--usecacheonfailure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usecacheonfailure: Option<bool>,
    /// Fail nodes whose environment differs from `environment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_environment: Option<bool>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Per-node limit in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Arbitrary key/values stored with the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userdata: Option<Map<String, Value>>,
}

/// `POST /command/stop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopRequest {
    /// Job name; clients send it as a string or a number.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub job: String,
    /// End in-progress runs too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// A link to a job: absolute URL plus its name (a string of digits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRef {
    /// Absolute URL of the job.
    pub id: String,
    /// Job number as a string.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub name: String,
}

/// 202 body of `command/task` and `command/deploy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCreated {
    /// The new job.
    pub job: JobRef,
}

/// 202 body of `command/stop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopResponse {
    /// The job and how many of its nodes are in each state.
    pub job: StoppedJob,
}

/// The `job` object of a [`StopResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedJob {
    /// Absolute URL of the job.
    pub id: String,
    /// Job number as a string.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub name: String,
    /// Node count per node state (zero states omitted).
    #[serde(default)]
    pub nodes: std::collections::BTreeMap<String, u64>,
}
