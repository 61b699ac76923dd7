//! The ways a psick task can fail, each mapped to an `_error` kind.

use std::io;
use std::path::PathBuf;

use orchestrator_types::psick::{ParamError, StoppedProcess, TaskError, kind};
use orchestrator_types::psick_tasks::package_kind;
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
    #[error("{}", timeout_message(*.timeout, *.signal, *.killed, survivors))]
    Timeout {
        /// The `timeout` parameter, when that is what expired.
        timeout: Option<u64>,
        /// The signal the task received (`"TERM"`, `"INT"`), when that is
        /// what stopped it.
        signal: Option<&'static str>,
        /// Whether a process of the run (puppet or one it started) was still
        /// there when the grace after SIGTERM ran out, and was killed.
        killed: bool,
        /// Every process the stop ended (puppet, its execs...).
        stopped: Vec<StoppedProcess>,
        /// Processes of the run still alive after SIGKILL: the run did not
        /// wholly end.
        survivors: Vec<u32>,
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

    /// `puppet config print` did not answer with the settings the task needs.
    #[error(
        "could not read puppet's settings: `{command}` failed{}; check that puppet works on \
         the node, or set PSICK_PUPPET_CONFDIR",
        if output.is_empty() { String::new() } else { format!(" ({output})") }
    )]
    SettingsUnknown {
        /// The command that was run.
        command: String,
        /// What it printed, shortened.
        output: String,
    },

    /// A lock path holds something puppet would block on or choke on.
    #[error(
        "{} is {what}, not a lockfile puppet writes; puppet would hang reading it, so the run \
         was not started. Remove it (psick::puppet_unlock removes it)",
        path.display()
    )]
    InvalidLockfile {
        /// The lock path.
        path: PathBuf,
        /// What is there (`a FIFO`...).
        what: &'static str,
    },

    /// `force` could not stop the run holding the catalog-run lock.
    #[error(
        "could not stop the puppet run (PID {pid}) holding {}: {source}; the lock was left in \
         place. Stop that process as root, then run psick::puppet_unlock again",
        lockfile.display()
    )]
    StopFailed {
        /// The holder.
        pid: u32,
        /// The catalog-run lockfile.
        lockfile: PathBuf,
        /// Why.
        source: crate::stop::StopError,
    },

    /// No supported package manager on the node.
    #[error(
        "no supported package manager found (looked for {looked}); system_update and \
         puppet_install support apt, dnf, yum and zypper"
    )]
    NoPackageManager {
        /// The paths that were looked at.
        looked: String,
    },

    /// An option the node's package manager does not have.
    #[error("{0}")]
    Unsupported(String),

    /// The package manager's lock stayed held for the whole wait.
    #[error(
        "{manager} is locked by another process{}; gave up after waiting {waited}s. Retry when \
         it is done, or raise lock_wait",
        holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    ManagerLocked {
        /// `apt`, `dnf`...
        manager: &'static str,
        /// What the manager or the lockfile said about the holder.
        holder: Option<String>,
        /// Seconds waited.
        waited: u64,
    },

    /// A requested package or version is unknown to the repositories.
    #[error(
        "{manager} does not know {what}{}; check the name and version, and that the node's \
         repositories provide it (refresh=true updates the package lists first)",
        detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    PackageNotFound {
        /// `apt`, `dnf`...
        manager: &'static str,
        /// `package foo` or `version 1.2 of foo`.
        what: String,
        /// The manager's own message.
        detail: Option<String>,
    },

    /// The package manager failed.
    #[error(
        "{manager} failed ({status}){}; see _output",
        hint.as_ref().map(|h| format!(": {h}")).unwrap_or_default()
    )]
    ManagerFailed {
        /// `apt`, `dnf`...
        manager: &'static str,
        /// `exit 100`...
        status: String,
        /// The manager's first error line.
        hint: Option<String>,
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

fn timeout_message(
    timeout: Option<u64>,
    signal: Option<&str>,
    killed: bool,
    survivors: &[u32],
) -> String {
    // What the stop knows is which processes of the run needed SIGKILL, not
    // whether puppet or something it started (an exec, a daemon) was slow.
    let how = if killed {
        " (a process of the run, puppet or one it started, did not end on SIGTERM within the \
         grace period and was killed)"
    } else {
        ""
    };
    let message = match (signal, timeout) {
        (Some(sig), _) => format!(
            "the task was stopped by SIG{sig} from outside (a local kill, the orchestrator's job \
             stop, or Bolt) and stopped the puppet run{how}; the run did not finish, see \
             _output for how far it got"
        ),
        (None, Some(t)) => format!(
            "the puppet run exceeded the timeout of {t}s and was stopped{how}; raise `timeout` \
             or look at _output for where it hung"
        ),
        (None, None) => format!("the puppet run was stopped{how}; see _output for where it was"),
    };
    match survivor_note(survivors) {
        Some(note) => format!("{message}. {note}"),
        None => message,
    }
}

/// What a stop that left processes of the run alive says about them;
/// `None` when nothing survived.
pub fn survivor_note(survivors: &[u32]) -> Option<String> {
    (!survivors.is_empty()).then(|| {
        format!(
            "Not all of the run ended: PID{} {} {} still alive after SIGKILL (uninterruptible \
             sleep, or not the task's to signal) and may still change the node",
            if survivors.len() == 1 { "" } else { "s" },
            survivors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if survivors.len() == 1 { "was" } else { "were" },
        )
    })
}

impl From<ParamError> for Failure {
    fn from(e: ParamError) -> Self {
        Failure::InvalidParams(e.0)
    }
}

impl Failure {
    /// Signal handlers could not be installed.
    pub fn signals(source: io::Error) -> Failure {
        Failure::Io {
            action: "install signal handlers for",
            path: "the task".into(),
            source,
        }
    }

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
            Failure::SettingsUnknown { .. } => kind::SETTINGS_UNKNOWN,
            Failure::InvalidLockfile { .. } => kind::INVALID_LOCKFILE,
            Failure::StopFailed { .. } => kind::STOP_FAILED,
            Failure::NoPackageManager { .. } => package_kind::NO_PACKAGE_MANAGER,
            Failure::Unsupported(_) => package_kind::UNSUPPORTED,
            Failure::ManagerLocked { .. } => package_kind::PACKAGE_MANAGER_LOCKED,
            Failure::PackageNotFound { .. } => package_kind::PACKAGE_NOT_FOUND,
            Failure::ManagerFailed { .. } => package_kind::PACKAGE_MANAGER_FAILED,
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
                stopped,
                survivors,
            } => json!({
                "timeout": timeout,
                "signal": signal,
                "killed": killed,
                "stopped": stopped,
                "survivors": survivors,
            }),
            Failure::SpawnFailed { program, .. } => {
                json!({ "program": program.display().to_string() })
            }
            Failure::Io { path, .. } => json!({ "path": path.display().to_string() }),
            Failure::SettingsUnknown { command, .. } => json!({ "command": command }),
            Failure::StopFailed { pid, lockfile, .. } => {
                json!({ "pid": pid, "lockfile": lockfile.display().to_string() })
            }
            Failure::InvalidLockfile { path, what } => {
                json!({ "path": path.display().to_string(), "file_type": what })
            }
            Failure::ResourceFailures { failed, .. } => json!({ "failed": failed }),
            Failure::NoPackageManager { looked } => json!({ "looked": looked }),
            Failure::ManagerLocked {
                manager,
                holder,
                waited,
            } => json!({ "manager": manager, "holder": holder, "waited": waited }),
            Failure::PackageNotFound { manager, what, .. } => {
                json!({ "manager": manager, "what": what })
            }
            Failure::ManagerFailed { manager, .. } => json!({ "manager": manager }),
            Failure::InvalidParams(_) | Failure::RunFailed { .. } | Failure::Unsupported(_) => {
                Value::Null
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(killed: bool, survivors: Vec<u32>) -> Failure {
        Failure::Timeout {
            timeout: Some(30),
            signal: None,
            killed,
            stopped: Vec::new(),
            survivors,
        }
    }

    #[test]
    fn a_kill_is_put_on_the_run_not_on_puppet() {
        let msg = stopped(true, Vec::new()).to_string();
        assert!(
            msg.contains("a process of the run, puppet or one it started, did not end on SIGTERM"),
            "{msg}"
        );
        assert!(!msg.contains("puppet ignored"), "{msg}");
        assert!(!stopped(false, Vec::new()).to_string().contains("killed"));
    }

    #[test]
    fn survivors_of_sigkill_are_named_in_the_message_and_details() {
        let f = stopped(true, vec![4242, 4343]);
        let msg = f.to_string();
        assert!(
            msg.ends_with(
                "Not all of the run ended: PIDs 4242, 4343 were still alive after SIGKILL \
                 (uninterruptible sleep, or not the task's to signal) and may still change the \
                 node"
            ),
            "{msg}"
        );
        assert_eq!(
            f.to_task_error(None).details["survivors"],
            json!([4242, 4343])
        );
        let one = stopped(true, vec![7]).to_string();
        assert!(one.contains("PID 7 was still alive"), "{one}");
        let none = stopped(true, Vec::new());
        assert!(!none.to_string().contains("Not all"), "{none}");
        assert_eq!(none.to_task_error(None).details["survivors"], json!([]));
    }
}
