//! Result documents of the psick tasks run by the node-side `psick-task`
//! binary: [`PuppetAgentResult`] for `psick::puppet_agent`, [`UnlockResult`]
//! for `psick::puppet_unlock` and [`EnableNoopResult`] for
//! `psick::puppet_enable_noop`.
//!
//! The parameters of `psick::puppet_agent` are typed in [`params`]
//! ([`AgentParams`]).
//!
//! The task prints exactly one of these as a JSON object on stdout; the
//! orchestrator hands it back as the node's `result`. Deserialisation is
//! tolerant so that results of older or newer task versions still parse:
//! every field that may be missing has a default and `config_version` may be
//! a number or a string.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lenient;

pub mod params;

pub use params::{AgentParams, Ordering, ParamError, ParamSpec, Server};

/// The task whose result is a [`PuppetAgentResult`] and whose parameters are
/// [`AgentParams`].
pub const PUPPET_AGENT_TASK: &str = "psick::puppet_agent";

/// Cuts `text` to at most `max` bytes (at a character boundary), ending it
/// with `...` when anything was cut, so a reader sees that it was.
pub fn shorten(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut cut = max.saturating_sub(3);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str("...");
}

/// Error kinds the psick tasks put in `_error.kind`.
pub mod kind {
    /// A parameter was unknown, of the wrong type or failed validation.
    pub const INVALID_PARAMS: &str = "psick/invalid-params";
    /// No puppet executable was found on the node.
    pub const PUPPET_NOT_FOUND: &str = "psick/puppet-not-found";
    /// Another agent run held the catalog-run lock past `wait_for_lock`.
    pub const AGENT_LOCKED: &str = "psick/agent-locked";
    /// The agent is administratively disabled (`puppet agent --disable`).
    pub const AGENT_DISABLED: &str = "psick/agent-disabled";
    /// The run exceeded `timeout`, or the task itself was asked to stop
    /// (`details.signal` then names the signal).
    pub const TIMEOUT: &str = "psick/timeout";
    /// Puppet exited 1 (or another unexpected code): the run failed.
    pub const RUN_FAILED: &str = "psick/run-failed";
    /// Puppet exited 4 or 6: some resources failed.
    pub const RESOURCE_FAILURES: &str = "psick/resource-failures";
    /// Puppet could not be started.
    pub const SPAWN_FAILED: &str = "psick/spawn-failed";
    /// A node-side file (puppet.conf, a lockfile) could not be read or written.
    pub const IO_FAILED: &str = "psick/io-failed";
    /// `puppet config print` did not give the settings the task needs.
    pub const SETTINGS_UNKNOWN: &str = "psick/settings-unknown";
    /// A lock path holds a FIFO, directory or device instead of a file.
    pub const INVALID_LOCKFILE: &str = "psick/invalid-lockfile";
    /// `psick::puppet_unlock` with `force` could not stop the live run.
    pub const STOP_FAILED: &str = "psick/stop-failed";
}

/// Outcome of a `psick::puppet_agent` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Puppet ran and changed nothing (and, in noop, had nothing pending).
    Unchanged,
    /// Puppet applied changes, or a noop run found pending changes.
    Changed,
    /// The run failed or never happened; `_error` says why.
    Failed,
}

/// The `_error` object of a task result (task spec `error.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskError {
    /// Namespaced kind, one of [`kind`] for the psick tasks.
    pub kind: String,
    /// Human-readable message saying what happened and what to do.
    #[serde(default)]
    pub msg: String,
    /// Free-form context; for `psick::puppet_agent` always an object with at
    /// least `exitcode` (puppet's exit code or `null`).
    #[serde(default)]
    pub details: Value,
}

/// Resource counts from `last_run_summary.yaml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Resources in the catalog.
    pub total: u64,
    /// Resources changed by this run.
    pub changed: u64,
    /// Resources that failed.
    pub failed: u64,
    /// Resources that were out of sync when the run started.
    pub out_of_sync: u64,
    /// Resources skipped (failed dependencies, schedules, tags).
    pub skipped: u64,
    /// Changes a noop run would have made (`events.noop`).
    pub noop_pending: u64,
}

/// Result of `psick::puppet_agent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PuppetAgentResult {
    /// Overall outcome.
    pub status: RunStatus,
    /// Whether the run was a noop run (task parameter or the node's config).
    #[serde(default)]
    pub noop: bool,
    /// Puppet's detailed exit code; `null` if puppet never ran or was killed.
    #[serde(default)]
    pub exitcode: Option<i32>,
    /// The argv puppet was (or would have been) started with, executable
    /// first; empty when the parameters were rejected.
    #[serde(default)]
    pub command: Vec<String>,
    /// The primary server used: the `puppet_master` parameter or the
    /// node's configured `server_list`/`server`.
    #[serde(default)]
    pub server: Option<String>,
    /// The environment the run converged to (summary), else the requested
    /// or configured one.
    #[serde(default)]
    pub environment: Option<String>,
    /// Wall-clock seconds the task spent, lock waiting included.
    #[serde(default)]
    pub duration: f64,
    /// Resource counts, present only when this run wrote the summary file.
    #[serde(default)]
    pub resources: Option<Resources>,
    /// Catalog version applied (`version.config` of the summary).
    #[serde(default, deserialize_with = "lenient::opt_string_or_number")]
    pub config_version: Option<String>,
    /// Puppet version that ran (`version.puppet` of the summary).
    #[serde(default, deserialize_with = "lenient::opt_string_or_number")]
    pub puppet_version: Option<String>,
    /// Puppet's stdout and stderr interleaved, ANSI-free, capped at 1 MiB
    /// (head and tail kept around an explicit truncation line).
    #[serde(rename = "_output", default)]
    pub output: String,
    /// The run's resource events (one per resource and property), in the
    /// report's order, read from the run's report (`lastrunreport`) only
    /// when this run wrote it; at most the `changes_limit` parameter (default
    /// 100). Empty when there were none or the report could not be read
    /// (`report_error` says why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// How many changes were left out of `changes` by `changes_limit`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub changes_truncated: u64,
    /// The run's transaction UUID (from the report), tying it to PuppetDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_uuid: Option<String>,
    /// Resources with applied or pending changes, by whether the change was
    /// corrective (drift back to what Puppet last applied) or intentional
    /// (the catalog asked for something new); present when the report was
    /// read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrective_change: Option<CorrectiveCounts>,
    /// Why the report could not be read, when it could not; the run itself
    /// is unaffected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_error: Option<String>,
    /// Present exactly when the task failed.
    #[serde(rename = "_error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The status of one resource event in a run report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    /// A noop run found the property out of sync and would change it.
    Noop,
    /// The property was changed.
    Success,
    /// Changing the property failed.
    Failure,
    /// Puppet's audit status (rare); kept so such reports still parse.
    Audit,
}

/// One resource event of a run: what changed (or would change, in noop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `Type[title]`, as puppet names the resource (`File[/etc/motd]`).
    pub resource: String,
    /// Resource type (`File`).
    #[serde(rename = "type", default)]
    pub resource_type: String,
    /// Resource title (`/etc/motd`).
    #[serde(default)]
    pub title: String,
    /// The property the event is about (`content`, `ensure`); `null` for
    /// events not tied to one (a refresh).
    #[serde(default)]
    pub property: Option<String>,
    /// The value before the run, as text (lists and hashes as compact JSON,
    /// file content as its checksum), cut at 1 KiB; `null` for none.
    #[serde(default)]
    pub previous: Option<String>,
    /// The value the catalog asks for, as text like `previous`, cut at 1 KiB.
    #[serde(default)]
    pub desired: Option<String>,
    /// Puppet's message for the event, cut at 1 KiB.
    #[serde(default)]
    pub message: String,
    /// noop, success or failure.
    pub status: ChangeStatus,
    /// Whether this was a corrective change (drift back to the catalog).
    #[serde(default)]
    pub corrective: bool,
}

/// Resources with applied or pending changes in a run, corrective versus
/// intentional (a resource with one corrective event counts as corrective).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CorrectiveCounts {
    /// Resources whose change brings drifted state back to the catalog.
    pub corrective: u64,
    /// Resources whose change the catalog itself asked for.
    pub intentional: u64,
}

/// What the task did about one lockfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockAction {
    /// There was no lockfile.
    Absent,
    /// The lockfile was removed.
    Removed,
    /// The lockfile would have been removed (noop run).
    WouldRemove,
    /// The lockfile was left in place; `reason` says why.
    Kept,
}

/// State of one lockfile as seen and handled by `psick::puppet_unlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockReport {
    /// Path of the lockfile on the node.
    pub path: String,
    /// Whether the file existed when the task looked.
    #[serde(default)]
    pub present: bool,
    /// What the task did.
    pub action: LockAction,
    /// Why, in words.
    #[serde(default)]
    pub reason: String,
    /// PID recorded in the catalog-run lock, if it held one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Seconds since the lockfile was last modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
    /// Message recorded by `puppet agent --disable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_message: Option<String>,
    /// The live run `force` stopped before removing its lock (or, in noop,
    /// would have stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_run: Option<StoppedRun>,
}

/// A live agent run stopped by `psick::puppet_unlock` with `force`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedRun {
    /// The lock holder's PID.
    pub pid: u32,
    /// The process group that was signalled (the holder alone when it shares
    /// the task's own group).
    pub process_group: u32,
    /// The last signal needed: `"TERM"`, or `"KILL"` when the run outlived
    /// the grace period; `null` in noop.
    #[serde(default)]
    pub signal: Option<String>,
    /// Seconds from SIGTERM until the holder was gone.
    #[serde(default)]
    pub waited: f64,
    /// Every process of the run that was ended: the holder and all it
    /// started, whatever their session (puppet's `exec` resources run in
    /// their own). Empty in noop.
    #[serde(default)]
    pub processes: Vec<StoppedProcess>,
}

/// One process a stop ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedProcess {
    /// Its PID.
    pub pid: u32,
    /// Its command line, shortened.
    pub command: String,
    /// `"TERM"` when it left within the grace, `"KILL"` when it was killed.
    pub signal: String,
}

/// Result of `psick::puppet_unlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlockResult {
    /// Whether this was a noop run (nothing removed).
    #[serde(default)]
    pub noop: bool,
    /// Paths removed (or, in noop, that would have been removed).
    #[serde(default)]
    pub removed: Vec<String>,
    /// The catalog-run lock (`agent_catalog_run_lockfile`).
    pub catalog_run_lock: LockReport,
    /// The disabled lock (`agent_disabled_lockfile`).
    pub disabled_lock: LockReport,
}

/// Result of `psick::puppet_enable_noop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnableNoopResult {
    /// Whether this was a noop run (puppet.conf left untouched).
    #[serde(default)]
    pub noop: bool,
    /// The puppet.conf that was (or would have been) edited.
    pub puppet_conf: String,
    /// Whether the file was (or would have been) changed.
    #[serde(default)]
    pub changed: bool,
    /// The `[agent]` `noop` value before the change, if one was set.
    #[serde(default)]
    pub previous: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_result_round_trips_and_omits_error_on_success() {
        let r = PuppetAgentResult {
            status: RunStatus::Changed,
            noop: true,
            exitcode: Some(0),
            command: vec!["/usr/bin/puppet".into(), "agent".into()],
            server: Some("puppet.example.com".into()),
            environment: Some("production".into()),
            duration: 4.2,
            resources: Some(Resources {
                total: 9,
                out_of_sync: 2,
                noop_pending: 2,
                ..Resources::default()
            }),
            config_version: Some("1795460334".into()),
            puppet_version: Some("7.23.0".into()),
            output: "Notice: Applied catalog".into(),
            changes: vec![Change {
                resource: "File[/etc/motd]".into(),
                resource_type: "File".into(),
                title: "/etc/motd".into(),
                property: Some("content".into()),
                previous: Some("{sha256}aa".into()),
                desired: Some("{sha256}bb".into()),
                message: "content changed".into(),
                status: ChangeStatus::Noop,
                corrective: false,
            }],
            changes_truncated: 0,
            transaction_uuid: Some("3b1a".into()),
            corrective_change: Some(CorrectiveCounts {
                corrective: 0,
                intentional: 1,
            }),
            report_error: None,
            error: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("_error").is_none());
        assert_eq!(v["_output"], "Notice: Applied catalog");
        assert_eq!(v["status"], "changed");
        assert_eq!(v["changes"][0]["type"], "File");
        assert_eq!(v["changes"][0]["status"], "noop");
        assert!(v.get("changes_truncated").is_none());
        assert_eq!(serde_json::from_value::<PuppetAgentResult>(v).unwrap(), r);
    }

    #[test]
    fn shorten_cuts_at_a_character_boundary_and_marks_the_cut() {
        let mut s = "abcdef".to_owned();
        shorten(&mut s, 6);
        assert_eq!(s, "abcdef");
        shorten(&mut s, 5);
        assert_eq!(s, "ab...");
        let mut e = "ééééé".to_owned(); // 10 bytes
        shorten(&mut e, 8);
        assert_eq!(e, "éé...");
        assert!(e.len() <= 8);
    }

    #[test]
    fn agent_result_parses_a_minimal_failure_with_numeric_config_version() {
        let r: PuppetAgentResult = serde_json::from_str(
            r#"{"status":"failed","config_version":17,
                "_error":{"kind":"psick/timeout","msg":"took too long"}}"#,
        )
        .unwrap();
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(r.config_version.as_deref(), Some("17"));
        assert_eq!(r.resources, None);
        assert_eq!(r.error.unwrap().kind, kind::TIMEOUT);
    }
}
