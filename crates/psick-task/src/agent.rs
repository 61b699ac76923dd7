//! The `psick::puppet_agent` task: checks, lock wait, one puppet run, result.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use orchestrator_types::psick::{PuppetAgentResult, RunStatus, shorten};

use crate::error::Failure;
use crate::input::Input;
use crate::locate::Puppet;
use crate::lockfile::{self, WaitOutcome};
use crate::params::AgentOptions;
use crate::process::{self, Limits, Signals, Stop};
use crate::summary::{self, Stamp};

/// Time between SIGTERM and SIGKILL when a run is stopped.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How often a run skipped because of a lock race is retried.
const MAX_ATTEMPTS: u32 = 3;

const LOCKED_MSG: &str = "Run of Puppet configuration client already in progress";
const DISABLED_MSG: &str = "administratively disabled";

/// Runs the task; the result carries `_error` on failure.
pub fn run(input: &Input, started: Instant) -> PuppetAgentResult {
    let mut result = empty_result();
    if let Err(failure) = execute(input, &mut result) {
        result.status = RunStatus::Failed;
        result.error = Some(failure.to_task_error(result.exitcode));
    }
    result.duration = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    result
}

/// The result document before anything is known.
pub fn empty_result() -> PuppetAgentResult {
    PuppetAgentResult {
        status: RunStatus::Failed,
        noop: false,
        exitcode: None,
        command: Vec::new(),
        server: None,
        environment: None,
        duration: 0.0,
        resources: None,
        config_version: None,
        puppet_version: None,
        output: String::new(),
        changes: Vec::new(),
        changes_truncated: 0,
        transaction_uuid: None,
        corrective_change: None,
        report_error: None,
        error: None,
    }
}

/// The full argv: executable, `agent`, the fixed flags, `--confdir` when
/// overridden, then the flags the parameters ask for.
pub fn build_argv(puppet: &Puppet, params: &AgentOptions) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![puppet.bin.clone().into(), "agent".into()];
    argv.extend(params.fixed_flags().iter().map(OsString::from));
    if let Some(dir) = &puppet.confdir_override {
        let mut flag = OsString::from("--confdir=");
        flag.push(dir);
        argv.push(flag);
    }
    let pin = puppet.settings.server_list.is_some();
    argv.extend(params.puppet_flags(pin).into_iter().map(OsString::from));
    argv
}

fn execute(input: &Input, r: &mut PuppetAgentResult) -> Result<(), Failure> {
    let params = AgentOptions::from_input(input)?;
    r.noop = params.noop.unwrap_or(false);
    let puppet = Puppet::from_env()?;
    let s = &puppet.settings;
    r.noop = params.noop.unwrap_or(s.noop);
    r.server = params
        .server
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| s.server_list.clone())
        .or_else(|| s.server.clone())
        .or_else(|| Some("puppet".to_owned()));
    r.environment = params
        .environment
        .clone()
        .or_else(|| s.environment.clone())
        .or_else(|| Some("production".to_owned()));
    let argv = build_argv(&puppet, &params);
    r.command = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();

    // Without handlers a SIGTERM would kill the task silently; with them it
    // stops puppet and still yields a result.
    let signals = Signals::install().map_err(|e| Failure::Io {
        action: "install signal handlers for",
        path: "the task".into(),
        source: e,
    })?;
    if let Some(message) = lockfile::disabled_message(&s.disabled_lock) {
        return Err(Failure::AgentDisabled {
            message,
            lockfile: s.disabled_lock.clone(),
        });
    }
    let limits = Limits {
        timeout: params.timeout.map(Duration::from_secs),
        grace: kill_grace(),
    };
    let wait_started = Instant::now();
    let wait_until = wait_started + Duration::from_secs(params.wait_for_lock);
    let mut note = String::new();
    let mut attempt = 1;
    let (finished, before) = loop {
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
                });
            }
        }
        let before = Stamp::of(&s.lastrunfile);
        let finished = process::run(&argv, limits, &signals).map_err(|e| Failure::SpawnFailed {
            program: puppet.bin.clone(),
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
        break (finished, before);
    };
    r.output = note + &finished.output;
    r.exitcode = finished.code;

    if let Some(stop) = finished.stopped {
        return Err(Failure::Timeout {
            timeout: match stop {
                Stop::Timeout => params.timeout,
                Stop::Signal(_) => None,
            },
            signal: match stop {
                Stop::Signal(sig) => Some(process::signal_name(sig)),
                Stop::Timeout => None,
            },
            killed: finished.killed,
        });
    }
    if finished.code == Some(1) {
        if finished.output.contains(LOCKED_MSG) {
            return Err(locked_after_race(&s.catalog_lock, wait_started));
        }
        if finished.output.contains(DISABLED_MSG) {
            return Err(Failure::AgentDisabled {
                message: disabled_reason(&finished.output)
                    .or_else(|| lockfile::disabled_message(&s.disabled_lock))
                    .unwrap_or_else(|| "reason not specified".to_owned()),
                lockfile: s.disabled_lock.clone(),
            });
        }
    }

    let fresh = Stamp::of(&s.lastrunfile).written_since(before);
    if let Some(sum) = fresh
        .then(|| summary::read(&s.lastrunfile, r.noop))
        .flatten()
    {
        r.resources = Some(sum.resources);
        r.config_version = sum.config_version;
        r.puppet_version = sum.puppet_version;
        if sum.environment.is_some() {
            r.environment = sum.environment;
        }
    }

    let pending = r.resources.map_or(0, |res| res.noop_pending);
    r.status = match finished.code {
        Some(0) if r.noop && pending > 0 => RunStatus::Changed,
        Some(0) => RunStatus::Unchanged,
        Some(2) => RunStatus::Changed,
        Some(code @ (4 | 6)) => {
            return Err(Failure::ResourceFailures {
                exitcode: code,
                failed: r.resources.map(|res| res.failed),
            });
        }
        Some(code) => {
            return Err(Failure::RunFailed {
                status: format!("exit {code}"),
                hint: first_error_line(&finished.output),
            });
        }
        None => {
            return Err(Failure::RunFailed {
                status: format!(
                    "killed by signal {}",
                    finished
                        .signal
                        .map_or_else(|| "?".to_owned(), |s| s.to_string())
                ),
                hint: first_error_line(&finished.output),
            });
        }
    };
    Ok(())
}

/// `PSICK_KILL_GRACE` (seconds, for tests), else 10 s.
fn kill_grace() -> Duration {
    std::env::var("PSICK_KILL_GRACE")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|g| g.is_finite() && *g >= 0.0 && *g <= 3600.0)
        .map_or(DEFAULT_GRACE, Duration::from_secs_f64)
}

fn locked_after_race(lock: &Path, wait_started: Instant) -> Failure {
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

/// The reason in puppet's "administratively disabled (Reason: '...')".
fn disabled_reason(output: &str) -> Option<String> {
    let start = output.find("(Reason: '")? + "(Reason: '".len();
    let rest = &output[start..];
    let end = rest.find("');")?;
    Some(rest[..end].to_owned())
}

/// The first `Error:` line puppet printed, shortened.
fn first_error_line(output: &str) -> Option<String> {
    let line = output.lines().find(|l| l.starts_with("Error: "))?;
    let mut line = line.trim_end().to_owned();
    shorten(&mut line, 300);
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Context, Layout, PuppetConf};

    fn puppet(conf: &str, confdir: Option<&str>) -> Puppet {
        let ctx = Context {
            layout: Layout::Distro,
            confdir: confdir.map(Into::into),
            root: true,
            home: "/root".into(),
        };
        Puppet {
            bin: "/usr/bin/puppet".into(),
            confdir_override: confdir.map(Into::into),
            settings: ctx.resolve(&PuppetConf::parse(conf)),
        }
    }

    fn params(json: &str) -> AgentOptions {
        AgentOptions::from_input(&Input::parse(json, Vec::new()).unwrap()).unwrap()
    }

    #[test]
    fn argv_is_exact() {
        let argv = build_argv(
            &puppet("", Some("/n1/conf")),
            &params(r#"{"noop": true, "environment": "dev", "puppet_master": "pm:8141"}"#),
        );
        let argv: Vec<_> = argv.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "/usr/bin/puppet",
                "agent",
                "--onetime",
                "--no-daemonize",
                "--verbose",
                "--no-usecacheonfailure",
                "--no-splay",
                "--detailed-exitcodes",
                "--color=false",
                "--confdir=/n1/conf",
                "--noop",
                "--server=pm",
                "--serverport=8141",
                "--environment=dev",
            ]
        );
    }

    #[test]
    fn a_configured_server_list_is_pinned_too() {
        let argv = build_argv(
            &puppet("[agent]\nserver_list = a,b\n", None),
            &params(r#"{"puppet_master": "pm"}"#),
        );
        let tail: Vec<_> = argv[9..].iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(tail, ["--server=pm", "--server_list=pm"]);
    }

    #[test]
    fn output_parsing() {
        let out = "Notice: Skipping run of Puppet configuration client; administratively \
                   disabled (Reason: 'maint by ops');\nUse 'puppet agent --enable' to re-enable.\n";
        assert_eq!(disabled_reason(out).as_deref(), Some("maint by ops"));
        assert_eq!(
            first_error_line("Info: x\nError: first\nError: second\n").as_deref(),
            Some("Error: first")
        );
        assert_eq!(first_error_line("Info: x\n"), None);
    }
}
