//! The error body every Orchestrator API error carries.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"kind": "<ns>/<kind>", "msg": "...", "details": {...}}`.
///
/// `details` is absent in RBAC errors and some orchestrator errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// Namespaced kind, e.g. `puppetlabs.orchestrator/unknown-job`.
    pub kind: String,
    /// Human-readable message.
    #[serde(default)]
    pub msg: String,
    /// Free-form context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with a kind, a message and optional details.
    pub fn new(kind: &str, msg: impl Into<String>, details: Option<Value>) -> Self {
        Self {
            kind: kind.to_owned(),
            msg: msg.into(),
            details,
        }
    }

    /// True for the two validation-error kinds seen in the wild.
    pub fn is_validation(&self) -> bool {
        self.kind == kind::VALIDATION_ERROR || self.kind == kind::VALIDATORS_VALIDATION_ERROR
    }

    /// True for the RBAC kinds that mean "get a new token".
    pub fn is_auth(&self) -> bool {
        self.kind.starts_with("puppetlabs.rbac/")
    }
}

/// Error kinds, as strings on the wire.
pub mod kind {
    /// Bad body, bad id, bad query parameter.
    pub const VALIDATION_ERROR: &str = "puppetlabs.orchestrator/validation-error";
    /// The body-schema validation kind the official Ruby client maps.
    pub const VALIDATORS_VALIDATION_ERROR: &str = "puppetlabs.validators/validation-error";
    /// No such job.
    pub const UNKNOWN_JOB: &str = "puppetlabs.orchestrator/unknown-job";
    /// No such environment.
    pub const UNKNOWN_ENVIRONMENT: &str = "puppetlabs.orchestrator/unknown-environment";
    /// No such task.
    pub const UNKNOWN_TASK: &str = "puppetlabs.orchestrator/unknown-task";
    /// The scope resolved to no nodes.
    pub const EMPTY_TARGET: &str = "puppetlabs.orchestrator/empty-target";
    /// A deploy to an environment that has no nodes.
    pub const EMPTY_ENVIRONMENT: &str = "puppetlabs.orchestrator/empty-environment";
    /// The PQL query failed.
    pub const QUERY_ERROR: &str = "puppetlabs.orchestrator/query-error";
    /// PuppetDB could not be reached.
    pub const PUPPETDB_ERROR: &str = "puppetlabs.orchestrator/puppetdb-error";
    /// The user may not run that task on those nodes.
    pub const NOT_PERMITTED: &str = "puppetlabs.orchestrator/not-permitted";
    /// Unexpected server-side failure.
    pub const UNKNOWN_ERROR: &str = "puppetlabs.orchestrator/unknown-error";
    /// An orchestrator-side failure inside a node result.
    pub const EXECUTION_FAILURE: &str = "puppetlabs.orchestrator/execution-failure";
    /// No token was sent.
    pub const USER_UNAUTHENTICATED: &str = "puppetlabs.rbac/user-unauthenticated";
    /// The token is not known.
    pub const INVALID_TOKEN: &str = "puppetlabs.rbac/invalid-token";
    /// The token has expired.
    pub const TOKEN_EXPIRED: &str = "puppetlabs.rbac/token-expired";
    /// The token was revoked.
    pub const TOKEN_REVOKED: &str = "puppetlabs.rbac/token-revoked";
    /// The `_error` kind of a node whose run a force stop ended.
    pub const JOB_STOPPED: &str = "puppetlabs.orchestrator/job-stopped";
    /// A task exited non-zero without supplying `_error`.
    pub const TASK_ERROR: &str = "puppetlabs.tasks/task-error";
}
