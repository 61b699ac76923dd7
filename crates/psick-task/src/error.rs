//! The ways a psick task can fail, each mapped to an `_error` kind.

use std::io;
use std::path::PathBuf;

use orchestrator_types::psick::{ParamError, TaskError, kind};
use serde_json::{Value, json};

/// A task failure; [`Failure::to_task_error`] turns it into the `_error`
/// object the runner sees.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad input: unknown parameter, wrong type, failed validation, bad JSON.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),

    /// No usable puppet executable.
    #[error(
        "no puppet executable found (looked at {looked}); install puppet-agent on the node \
         or point PSICK_PUPPET_BIN at it in the task's environment"
    )]
    PuppetNotFound {
        /// The candidates that were tried, comma-separated.
        looked: String,
    },

    /// `puppet agent --disable` is in effect.
    #[error(
        "the puppet agent is administratively disabled (reason: '{message}'); run \
         `puppet agent --enable` on the node, or the psick::puppet_unlock task with enable=true"
    )]
    AgentDisabled {
        /// The message given to `puppet agent --disable`.
        message: String,
        /// The disabled lockfile.
        lockfile: PathBuf,
    },

    /// Another agent run held the catalog-run lock past `wait_for_lock`.
    #[error(
        "another puppet agent run (PID {pid}) {held}; gave up after waiting {waited}s. \
         Retry later or raise wait_for_lock; if that process is hung, stop it or run \
         psick::puppet_unlock with force=true",
        pid = pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
        held = held_for.map_or_else(
            || format!("holds the catalog-run lock {}", lockfile.display()),
            |s| format!("has held the catalog-run lock {} for {s}s", lockfile.display())
        ),
    )]
    AgentLocked {
        /// PID recorded in the lockfile.
        pid: Option<u32>,
        /// Seconds since the lockfile was written.
        held_for: Option<u64>,
        /// Seconds this task waited.
        waited: u64,
        /// The catalog-run lockfile.
        lockfile: PathBuf,
    },

    /// The run was stopped: `timeout` expired or the task got a signal.
    #[error("{}", timeout_message(*.timeout, *.signal, *.killed))]
    Timeout {
        /// The `timeout` parameter, when that is what expired.
        timeout: Option<u64>,
        /// The signal the task received (`"TERM"`, `"INT"`), when that is
        /// what stopped it.
        signal: Option<&'static str>,
        /// Whether puppet ignored SIGTERM and had to be killed.
        killed: bool,
    },

    /// Puppet exited 1 or with an unexpected status.
    #[error("puppet agent run failed ({status}){}", hint.as_ref().map(|h| format!(": {h}")).unwrap_or_default())]
    RunFailed {
        /// `exit 1`, `killed by signal 9`...
        status: String,
        /// The last `Error:` line puppet printed, if any.
        hint: Option<String>,
    },

    /// Puppet exited 4 or 6.
    #[error(
        "puppet agent run had resource failures (exit {exitcode}{}); see _output for the errors",
        failed.map(|n| format!(", {n} failed")).unwrap_or_default()
    )]
    ResourceFailures {
        /// Puppet's exit code.
        exitcode: i32,
        /// `resources.failed` from the summary.
        failed: Option<u64>,
    },

    /// Puppet could not be started.
    #[error("could not start {}: {source}", program.display())]
    SpawnFailed {
        /// The executable.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },

    /// A node-side file could not be read or written.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// `read`, `write`, `remove`...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

fn timeout_message(timeout: Option<u64>, signal: Option<&str>, killed: bool) -> String {
    let why = match (signal, timeout) {
        (Some(sig), _) => format!("the task received SIG{sig} and stopped the puppet run"),
        (None, Some(t)) => format!("the puppet run exceeded the timeout of {t}s and was stopped"),
        (None, None) => "the puppet run was stopped".to_owned(),
    };
    let how = if killed {
        " (puppet ignored SIGTERM and was killed)"
    } else {
        ""
    };
    format!("{why}{how}; raise `timeout` or look at _output for where it hung")
}

impl From<ParamError> for Failure {
    fn from(e: ParamError) -> Self {
        Failure::InvalidParams(e.0)
    }
}

impl Failure {
    /// The `_error.kind` of this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::InvalidParams(_) => kind::INVALID_PARAMS,
            Failure::PuppetNotFound { .. } => kind::PUPPET_NOT_FOUND,
            Failure::AgentDisabled { .. } => kind::AGENT_DISABLED,
            Failure::AgentLocked { .. } => kind::AGENT_LOCKED,
            Failure::Timeout { .. } => kind::TIMEOUT,
            Failure::RunFailed { .. } => kind::RUN_FAILED,
            Failure::ResourceFailures { .. } => kind::RESOURCE_FAILURES,
            Failure::SpawnFailed { .. } => kind::SPAWN_FAILED,
            Failure::Io { .. } => kind::IO_FAILED,
        }
    }

    /// The `_error` object; `exitcode` is puppet's exit code if it ran.
    pub fn to_task_error(&self, exitcode: Option<i32>) -> TaskError {
        let mut details = json!({ "exitcode": exitcode });
        let extra = match self {
            Failure::PuppetNotFound { looked } => json!({ "looked": looked }),
            Failure::AgentDisabled { message, lockfile } => json!({
                "disabled_message": message,
                "lockfile": lockfile.display().to_string(),
            }),
            Failure::AgentLocked {
                pid,
                held_for,
                waited,
                lockfile,
            } => json!({
                "pid": pid,
                "held_for": held_for,
                "waited": waited,
                "lockfile": lockfile.display().to_string(),
            }),
            Failure::Timeout {
                timeout,
                signal,
                killed,
            } => json!({ "timeout": timeout, "signal": signal, "killed": killed }),
            Failure::SpawnFailed { program, .. } => {
                json!({ "program": program.display().to_string() })
            }
            Failure::Io { path, .. } => json!({ "path": path.display().to_string() }),
            Failure::ResourceFailures { failed, .. } => json!({ "failed": failed }),
            Failure::InvalidParams(_) | Failure::RunFailed { .. } => Value::Null,
        };
        if let (Value::Object(d), Value::Object(e)) = (&mut details, extra) {
            d.extend(e);
        }
        TaskError {
            kind: self.kind().to_owned(),
            msg: self.to_string(),
            details,
        }
    }
}
