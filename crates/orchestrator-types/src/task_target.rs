//! Task targets: `POST /command/task_target`, `GET /scopes/task_targets[/:id]`.

use serde::{Deserialize, Serialize};

use crate::lenient;

/// `POST /command/task_target`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskTargetRequest {
    /// Its name (need not be unique).
    pub display_name: String,
    /// Tasks it allows (or `all_tasks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<String>>,
    /// Whether it allows every task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_tasks: Option<bool>,
    /// Certnames (required, may be empty).
    pub nodes: Vec<String>,
    /// Node group ids (required, may be empty).
    pub node_groups: Vec<String>,
    /// A PQL query adding nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pql_query: Option<String>,
}

/// A task target as `GET /scopes/task_targets[/:id]` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTarget {
    /// Absolute URL.
    pub id: String,
    /// Name, a string of digits.
    #[serde(deserialize_with = "lenient::string_or_number")]
    pub name: String,
    /// Its display name.
    pub display_name: String,
    /// Tasks it allows.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Whether it allows every task.
    #[serde(default)]
    pub all_tasks: bool,
    /// Certnames.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Node group ids.
    #[serde(default)]
    pub node_groups: Vec<String>,
    /// PQL query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pql_query: Option<String>,
}

/// `GET /scopes/task_targets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTargetList {
    /// All task targets.
    pub items: Vec<TaskTarget>,
}

/// Answer of `POST /command/task_target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTargetCreated {
    /// The new task target.
    pub task_target: crate::JobRef,
}
