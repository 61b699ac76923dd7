//! `GET /tasks` and `GET /tasks/:module/:task`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"name": "production", "code_id": null}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEnvironment {
    /// Environment name.
    pub name: String,
    /// Code Manager's id of the deployed code, if any.
    #[serde(default)]
    pub code_id: Option<String>,
}

/// An entry of `GET /tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRef {
    /// Absolute URL of the task.
    pub id: String,
    /// `module::task`.
    pub name: String,
    /// Whether the caller may run it (PE 2019.x+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted: Option<bool>,
}

/// `GET /tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskList {
    /// The environment listed.
    pub environment: TaskEnvironment,
    /// The tasks.
    pub items: Vec<TaskRef>,
}

/// `{"path": ..., "params": {"environment": ...}}` of a task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileUri {
    /// Puppet file-server path.
    pub path: String,
    /// Query parameters for the path.
    #[serde(default)]
    pub params: Value,
}

/// A file of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFile {
    /// File name.
    pub filename: String,
    /// Where agents download it from.
    pub uri: FileUri,
    /// Hex sha256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// `GET /tasks/:module/:task`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDetails {
    /// Absolute URL of the task.
    pub id: String,
    /// `module::task`.
    pub name: String,
    /// The environment it was read from.
    pub environment: TaskEnvironment,
    /// The task's metadata JSON as written in `tasks/<name>.json`.
    #[serde(default)]
    pub metadata: Value,
    /// Executables and helper files.
    #[serde(default)]
    pub files: Vec<TaskFile>,
}
