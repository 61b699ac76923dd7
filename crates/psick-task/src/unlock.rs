//! The `psick::puppet_unlock` task: removes a stale catalog-run lock; with
//! `force` a live one too, after stopping the run that holds it (so two runs
//! never overlap); the disabled lock only with `enable`.

use std::io;
use std::path::Path;

use orchestrator_types::psick::{LockAction, LockReport, StoppedRun, UnlockResult};
use rustix::process::Pid;

use crate::error::Failure;
use crate::input::Input;
use crate::locate::Puppet;
use crate::lockfile::{self, CatalogLock};
use crate::process::{self, Signals};
use crate::stop;

/// Parameter names `psick::puppet_unlock` accepts.
pub const UNLOCK_PARAMS: &[&str] = &["force", "enable", "noop"];

/// Runs the task.
pub fn run(input: &Input) -> Result<UnlockResult, Failure> {
    input.reject_unknown(UNLOCK_PARAMS)?;
    let force = input.bool("force")?.unwrap_or(false);
    let enable = input.bool("enable")?.unwrap_or(false);
    let noop = input.noop()?;
    let signals = Signals::install().map_err(Failure::signals)?;
    let puppet = Puppet::from_env_bounded(&signals)?;
    let s = &puppet.settings;
    let mut removed = Vec::new();

    let path = &s.catalog_lock;
    let mut catalog = report(path);
    match lockfile::inspect_catalog_lock(path) {
        CatalogLock::Absent => catalog.reason = "no catalog-run lock".into(),
        CatalogLock::Stale { pid, reason } => {
            catalog.present = true;
            catalog.pid = pid;
            catalog.age_seconds = lockfile::age_seconds(path);
            catalog.reason = format!("stale: {reason}");
            catalog.action = remove(path, noop, &mut removed)?;
        }
        CatalogLock::Held { pid, age } => {
            catalog.present = true;
            catalog.pid = Some(pid);
            catalog.age_seconds = age;
            if !force {
                catalog.action = LockAction::Kept;
                catalog.reason = format!(
                    "held by the live puppet process {pid}, a run in progress; pass force=true \
                     to stop that run and remove the lock"
                );
            } else if noop {
                let group = Pid::from_raw(pid as i32)
                    .and_then(stop::target_group)
                    .map_or(pid, |g| g.as_raw_nonzero().get().unsigned_abs());
                catalog.stopped_run = Some(StoppedRun {
                    pid,
                    process_group: group,
                    signal: None,
                    waited: 0.0,
                    processes: Vec::new(),
                });
                let below = process_tree::descendants(pid).len();
                catalog.reason = format!(
                    "held by the live puppet process {pid}; force=true would stop its run \
                     (SIGTERM to it, its process group {group} and the {below} process{} it \
                     started, SIGKILL after the grace) and remove the lock",
                    if below == 1 { "" } else { "es" }
                );
                catalog.action = remove(path, noop, &mut removed)?;
            } else {
                let stopped = stop::stop_run(pid, process::kill_grace(), || signals.take())
                    .map_err(|e| Failure::StopFailed {
                        pid,
                        lockfile: path.clone(),
                        source: e,
                    })?;
                catalog.reason = format!(
                    "held by the live puppet process {pid}; because force=true its run was \
                     stopped ({} process{} ended, SIG{} the last needed, nothing left after \
                     {:.1}s), then the lock was removed",
                    stopped.processes.len(),
                    if stopped.processes.len() == 1 {
                        ""
                    } else {
                        "es"
                    },
                    stopped.signal,
                    stopped.waited
                );
                catalog.stopped_run = Some(StoppedRun {
                    pid,
                    process_group: stopped.group,
                    signal: Some(stopped.signal.to_owned()),
                    waited: stopped.waited,
                    processes: stopped.processes,
                });
                catalog.action = remove(path, noop, &mut removed)?;
            }
        }
    }

    let path = &s.disabled_lock;
    let mut disabled = report(path);
    match lockfile::disabled_message(path) {
        None => disabled.reason = "the agent is not disabled".into(),
        Some(message) => {
            disabled.present = true;
            disabled.age_seconds = lockfile::age_seconds(path);
            if enable {
                disabled.reason = "the agent was disabled; re-enabled because enable=true".into();
                disabled.action = remove(path, noop, &mut removed)?;
            } else {
                disabled.action = LockAction::Kept;
                disabled.reason =
                    "the agent is administratively disabled; pass enable=true to re-enable it"
                        .into();
            }
            disabled.disabled_message = Some(message);
        }
    }

    Ok(UnlockResult {
        noop,
        removed,
        catalog_run_lock: catalog,
        disabled_lock: disabled,
    })
}

fn report(path: &Path) -> LockReport {
    LockReport {
        path: path.display().to_string(),
        present: false,
        action: LockAction::Absent,
        reason: String::new(),
        pid: None,
        age_seconds: None,
        disabled_message: None,
        stopped_run: None,
    }
}

fn remove(path: &Path, noop: bool, removed: &mut Vec<String>) -> Result<LockAction, Failure> {
    removed.push(path.display().to_string());
    if noop {
        return Ok(LockAction::WouldRemove);
    }
    match std::fs::remove_file(path) {
        // Gone already: someone else finished the job.
        Ok(()) => Ok(LockAction::Removed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LockAction::Removed),
        Err(source) => Err(Failure::Io {
            action: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}
