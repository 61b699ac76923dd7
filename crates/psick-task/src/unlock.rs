//! The `psick::puppet_unlock` task: removes a stale catalog-run lock (or
//! any, with `force`), and the disabled lock only with `enable`.

use std::io;
use std::path::Path;

use orchestrator_types::psick::{LockAction, LockReport, UnlockResult};

use crate::error::Failure;
use crate::input::Input;
use crate::locate::Puppet;
use crate::lockfile::{self, CatalogLock};
use crate::process::Signals;

/// Parameter names `psick::puppet_unlock` accepts.
pub const UNLOCK_PARAMS: &[&str] = &["force", "enable"];

/// Runs the task.
pub fn run(input: &Input) -> Result<UnlockResult, Failure> {
    input.reject_unknown(UNLOCK_PARAMS)?;
    let force = input.bool("force")?.unwrap_or(false);
    let enable = input.bool("enable")?.unwrap_or(false);
    let noop = input.meta_noop()?;
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
            if force {
                catalog.reason =
                    format!("held by the live puppet process {pid}; removed because force=true");
                catalog.action = remove(path, noop, &mut removed)?;
            } else {
                catalog.action = LockAction::Kept;
                catalog.reason = format!(
                    "held by the live puppet process {pid}, a run in progress; pass force=true \
                     to remove it anyway"
                );
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
