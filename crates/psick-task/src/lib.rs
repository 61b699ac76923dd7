//! The node side of Kick: one static binary behind the psick tasks
//! `psick::puppet_agent` (the default), `psick::puppet_unlock`,
//! `psick::puppet_enable_noop`, `psick::system_update` and
//! `psick::puppet_install`, told apart by the `_task` metaparameter; with an
//! argument it is pxp-agent's external module `pxp-module-puppet` ([`pxp`]).
//!
//! It reads the task input (stdin JSON, else `PT_*` variables), runs puppet
//! directly (never through a shell) and prints exactly one JSON object on
//! stdout; the process exits 0 on success and 1 whenever the object holds
//! `_error`.
//!
//! # Node-local settings (environment, never task parameters)
//! - `PSICK_PUPPET_BIN`: the puppet executable, instead of
//!   `/opt/puppetlabs/bin/puppet`, `/opt/puppetlabs/puppet/bin/puppet`, PATH.
//! - `PSICK_PUPPET_CONFDIR`: puppet's confdir, read for puppet.conf and
//!   passed as `--confdir`.
//! - `PSICK_KILL_GRACE`: seconds between SIGTERM and SIGKILL (default 10).
//! - `PSICK_TEST_SYSROOT`: tests only; see [`sysroot`].
//!
//! # Signals
//! SIGTERM or SIGINT sent to the task during a run stop the whole run, as a
//! timeout does: puppet and every process it started, in whatever session
//! (the task is the run's child subreaper; see [`process`]), SIGKILL after
//! the grace period; the result then fails with kind `psick/timeout`,
//! `details.signal` `"TERM"` or `"INT"` and `details.stopped`. A SIGKILLed
//! task cannot stop anything; puppet then gets SIGTERM as its parent-death
//! signal.
//!
//! # Layout
//! - [`input`], [`params`]: task input and `puppet_agent` parameters.
//! - [`locate`], [`settings`]: the puppet executable and its settings.
//! - [`lockfile`], [`summary`]: lockfiles and last_run_summary.yaml; the
//!   run's report (its `changes`) is read by the `puppet-report` crate.
//! - [`process`], [`ansi`], [`output`]: running puppet and capturing its
//!   output.
//! - [`agent`], [`unlock`], [`enable_noop`], [`system_update`],
//!   [`puppet_install`]: the five tasks; [`packages`]: the package managers.
//! - [`cli`], [`pxp`]: the command line and the pxp-agent module mode.
//! - [`probe`], [`sysroot`], [`stop`], [`run_once`]: asking puppet for its
//!   settings, fixed system paths, stopping a live run, the guarded run.

pub mod agent;
pub mod ansi;
pub mod cli;
pub mod enable_noop;
pub mod error;
pub mod input;
pub mod locate;
pub mod lockfile;
pub mod output;
pub mod packages;
pub mod params;
pub mod probe;
pub mod process;
pub mod puppet_install;
pub mod pxp;
pub mod run_once;
pub mod settings;
pub mod stop;
pub mod summary;
pub mod sysroot;
pub mod system_update;
pub mod unlock;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use crate::error::Failure;
use crate::input::Input;

/// The tasks this binary implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `psick::puppet_agent`.
    PuppetAgent,
    /// `psick::puppet_unlock`.
    PuppetUnlock,
    /// `psick::puppet_enable_noop`.
    PuppetEnableNoop,
    /// `psick::system_update`.
    SystemUpdate,
    /// `psick::puppet_install`.
    PuppetInstall,
}

impl Task {
    /// The task named by `_task` (`psick::puppet_agent`; the module part is
    /// ignored so a renamed module still works); absent means puppet_agent.
    pub fn from_name(name: Option<&str>) -> Result<Task, Failure> {
        let Some(name) = name else {
            return Ok(Task::PuppetAgent);
        };
        match name.rsplit("::").next().unwrap_or(name) {
            "puppet_agent" => Ok(Task::PuppetAgent),
            "puppet_unlock" => Ok(Task::PuppetUnlock),
            "puppet_enable_noop" => Ok(Task::PuppetEnableNoop),
            "system_update" => Ok(Task::SystemUpdate),
            "puppet_install" => Ok(Task::PuppetInstall),
            _ => Err(Failure::InvalidParams(format!(
                "unknown task {name:?} (`_task`); this executable implements \
                 psick::puppet_agent, psick::puppet_unlock, psick::puppet_enable_noop, \
                 psick::system_update and psick::puppet_install"
            ))),
        }
    }
}

/// Runs what the command line selects: a task (no arguments), a pxp-agent
/// module action, or the usage.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match cli::parse(&args) {
        cli::Mode::Task => task_main(),
        cli::Mode::ModuleMetadata => pxp::print_metadata(),
        cli::Mode::ModuleRun => pxp::main_run(),
        cli::Mode::Usage(unknown) => {
            let mut err = std::io::stderr().lock();
            if let Some(arg) = unknown {
                let _ = writeln!(err, "unknown arguments {arg:?}");
            }
            let argv0 = std::env::args_os().next();
            let _ = err.write_all(cli::usage(argv0.as_deref()).as_bytes());
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}

/// Runs the task named in the process's input and prints its result.
fn task_main() -> ExitCode {
    let started = Instant::now();
    let input = Input::from_process();
    let task = match &input {
        Ok(i) => i.task().and_then(|name| Task::from_name(name.as_deref())),
        // Input that cannot be read is reported in the puppet_agent shape.
        Err(_) => Ok(Task::PuppetAgent),
    };
    match (task, input) {
        (Ok(Task::PuppetAgent), Ok(input)) => {
            let result = agent::run(&input, started);
            let failed = result.error.is_some();
            emit(&result, failed)
        }
        (Ok(Task::PuppetAgent), Err(failure)) | (Err(failure), _) => {
            let mut result = agent::empty_result();
            result.error = Some(failure.to_task_error(None));
            emit(&result, true)
        }
        (Ok(Task::PuppetUnlock), Ok(input)) => emit_plain(unlock::run(&input)),
        (Ok(Task::PuppetEnableNoop), Ok(input)) => emit_plain(enable_noop::run(&input)),
        (Ok(Task::SystemUpdate), Ok(input)) => {
            let result = system_update::run(&input);
            emit(&result, result.run.error.is_some())
        }
        (Ok(Task::PuppetInstall), Ok(input)) => {
            let result = puppet_install::run(&input);
            emit(&result, result.run.error.is_some())
        }
        (Ok(_), Err(failure)) => emit_plain::<()>(Err(failure)),
    }
}

fn emit_plain<T: Serialize>(result: Result<T, Failure>) -> ExitCode {
    match result {
        Ok(value) => emit(&value, false),
        Err(failure) => emit(&json!({ "_error": failure.to_task_error(None) }), true),
    }
}

/// Prints the one JSON object and picks the exit code.
fn emit<T: Serialize>(value: &T, failed: bool) -> ExitCode {
    let text = serde_json::to_string(value).unwrap_or_else(|e| {
        json!({"_error": {"kind": "psick/io-failed", "msg": format!("could not encode the result: {e}"),
                          "details": {"exitcode": null}}})
        .to_string()
    });
    print_stdout(&(text + "\n"), failed)
}

/// Writes `text` to stdout; the exit code is 1 when `failed`.
pub(crate) fn print_stdout(text: &str, failed: bool) -> ExitCode {
    let mut out = std::io::stdout().lock();
    // Nobody left to tell if stdout is gone; the exit code still says it.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names() {
        assert_eq!(Task::from_name(None).unwrap(), Task::PuppetAgent);
        assert_eq!(
            Task::from_name(Some("psick::puppet_agent")).unwrap(),
            Task::PuppetAgent
        );
        assert_eq!(
            Task::from_name(Some("kick_psick::puppet_unlock")).unwrap(),
            Task::PuppetUnlock
        );
        assert_eq!(
            Task::from_name(Some("puppet_enable_noop")).unwrap(),
            Task::PuppetEnableNoop
        );
        for bad in ["psick", "psick::reboot", "psick::puppet_agent::x", ""] {
            assert_eq!(
                Task::from_name(Some(bad)).unwrap_err().kind(),
                "psick/invalid-params",
                "{bad}"
            );
        }
    }

    #[test]
    fn every_error_carries_exitcode_in_details() {
        let failures = [
            Failure::InvalidParams("x".into()),
            Failure::RunFailed {
                status: "exit 1".into(),
                hint: None,
            },
            Failure::Timeout {
                timeout: Some(5),
                signal: None,
                killed: true,
                stopped: Vec::new(),
                survivors: Vec::new(),
            },
            Failure::AgentLocked {
                pid: None,
                held_for: None,
                waited: 3,
                lockfile: "/l".into(),
            },
        ];
        for f in failures {
            let e = f.to_task_error(Some(1));
            assert_eq!(e.details["exitcode"], 1, "{f:?}");
            assert_eq!(e.kind, f.kind());
            assert!(!e.msg.is_empty());
        }
        let locked = Failure::AgentLocked {
            pid: None,
            held_for: None,
            waited: 3,
            lockfile: "/l".into(),
        };
        assert!(locked.to_string().contains("PID unknown"), "{locked}");
    }
}
