//! One puppet run guarded the way both front ends need it (the
//! `psick::puppet_agent` task and the pxp-agent module): lock paths that
//! would hang puppet refused, a disabled agent refused, a live catalog-run
//! lock waited for, a lost race for the lock retried.

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use crate::error::Failure;
use crate::lockfile::{self, WaitOutcome};
use crate::process::{self, Finished, Limits, Signals};
use crate::settings::Settings;
use crate::summary::Stamp;

/// What puppet prints (stdout, exit 1) when another run holds the lock.
pub const LOCKED_MSG: &str = "Run of Puppet configuration client already in progress";
/// What puppet prints (stdout, exit 1) when the agent is disabled.
pub const DISABLED_MSG: &str = "administratively disabled";

/// How often a run skipped because of a lock race is tried in all.
const MAX_ATTEMPTS: u32 = 3;

/// Refuses a run puppet would hang on (a FIFO or device at a lock path) or
/// skip (the agent is disabled).
pub fn preflight(s: &Settings) -> Result<(), Failure> {
    // Puppet reads both lock paths with a blocking read: a FIFO there would
    // hang it before its own run timeout applies.
    for path in [&s.disabled_lock, &s.catalog_lock] {
        if let Some(what) = lockfile::non_regular(path) {
            return Err(Failure::InvalidLockfile {
                path: path.clone(),
                what,
            });
        }
    }
    if let Some(message) = lockfile::disabled_message(&s.disabled_lock) {
        return Err(Failure::AgentDisabled {
            message,
            lockfile: s.disabled_lock.clone(),
        });
    }
    Ok(())
}

/// A finished guarded run.
#[derive(Debug)]
pub struct Ran {
    /// How puppet ended.
    pub finished: Finished,
    /// The stamp of the run summary (`lastrunfile`) just before the run that
    /// counted.
    pub before: Stamp,
    /// The stamp of the run report (`lastrunreport`) just before that run.
    pub report_before: Stamp,
    /// Notes about retries, to put before puppet's output.
    pub note: String,
}

/// Waits (until `wait_until`) while a live run holds `s.catalog_lock`, then
/// runs `argv`; retries when puppet still found the lock taken. The summary
/// and report are stamped before the attempt that counts, so that their
/// rewrite tells that this run wrote them.
pub fn run_when_free(
    argv: &[OsString],
    s: &Settings,
    wait_until: Instant,
    limits: impl Fn() -> Limits,
    signals: &Signals,
) -> Result<Ran, Failure> {
    let wait_started = Instant::now();
    let mut note = String::new();
    let mut attempt = 1;
    loop {
        let wait = wait_until.saturating_duration_since(Instant::now());
        match lockfile::wait_for_free(&s.catalog_lock, wait, || signals.take()) {
            WaitOutcome::Free => {}
            WaitOutcome::StillHeld { pid, age } => {
                return Err(Failure::AgentLocked {
                    pid: Some(pid),
                    held_for: age,
                    waited: wait_started.elapsed().as_secs(),
                    lockfile: s.catalog_lock.clone(),
                });
            }
            WaitOutcome::Interrupted(sig) => {
                return Err(Failure::Timeout {
                    timeout: None,
                    signal: Some(process::signal_name(sig)),
                    killed: false,
                    stopped: Vec::new(),
                    survivors: Vec::new(),
                });
            }
        }
        let before = Stamp::of(&s.lastrunfile);
        let report_before = Stamp::of(&s.lastrunreport);
        let finished = process::run(argv, limits(), signals).map_err(|e| Failure::SpawnFailed {
            program: argv[0].clone().into(),
            source: e,
        })?;
        let raced = finished.code == Some(1)
            && finished.stopped.is_none()
            && finished.output.contains(LOCKED_MSG);
        if raced && attempt < MAX_ATTEMPTS && Instant::now() < wait_until {
            // Another run took the lock between our check and puppet's.
            note.push_str(
                "[psick: puppet skipped the run because another run took the lock; \
                 waiting for it and retrying]\n",
            );
            attempt += 1;
            continue;
        }
        return Ok(Ran {
            finished,
            before,
            report_before,
            note,
        });
    }
}

/// The lock failure to report when puppet still said "already in progress"
/// after the retries.
pub fn locked_after_race(lock: &Path, wait_started: Instant) -> Failure {
    let (pid, held_for) = match lockfile::inspect_catalog_lock(lock) {
        lockfile::CatalogLock::Held { pid, age } => (Some(pid), age),
        _ => (None, None),
    };
    Failure::AgentLocked {
        pid,
        held_for,
        waited: wait_started.elapsed().as_secs(),
        lockfile: lock.to_path_buf(),
    }
}
