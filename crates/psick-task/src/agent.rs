//! The `psick::puppet_agent` task: checks, lock wait, one puppet run, result.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use orchestrator_types::psick::{PuppetAgentResult, RunStatus, shorten};

use crate::error::Failure;
use crate::input::Input;
use crate::locate::Puppet;
use crate::lockfile;
use crate::params::AgentOptions;
use crate::process::{self, Limits, Signals};
use crate::run_once::{self, DISABLED_MSG, LOCKED_MSG, Ran};
use crate::summary::{self, Stamp};

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
    // Without handlers a SIGTERM would kill the task silently; with them it
    // stops puppet and still yields a result.
    let signals = Signals::install().map_err(Failure::signals)?;
    // One deadline covers everything the task waits for: asking puppet for
    // its settings, the lock and the run.
    let deadline = params
        .timeout
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t)));
    let limits_now = || Limits {
        timeout: deadline.map(|d| d.saturating_duration_since(Instant::now())),
        grace: process::kill_grace(),
    };
    let puppet = Puppet::from_env(limits_now(), &signals)?;
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

    run_once::preflight(s)?;
    let wait_started = Instant::now();
    let lock_wait_ends = wait_started + Duration::from_secs(params.wait_for_lock);
    let wait_until = deadline.map_or(lock_wait_ends, |d| d.min(lock_wait_ends));
    let Ran {
        finished,
        before,
        report_before,
        note,
    } = run_once::run_when_free(&argv, s, wait_until, limits_now, &signals)?;
    r.output = note + &finished.output;
    // Puppet exits 0 when it catches a TERM: after a stop (a timeout or a
    // signal) its code says nothing about the run, the stop does.
    r.exitcode = match finished.stopped {
        Some(_) => None,
        None => finished.code,
    };

    if let Some(failure) = finished.stop_failure(params.timeout) {
        return Err(failure);
    }
    if finished.code == Some(1) {
        if finished.output.contains(LOCKED_MSG) {
            return Err(run_once::locked_after_race(&s.catalog_lock, wait_started));
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

    read_report(r, &s.lastrunreport, report_before, params.changes_limit);

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

/// Fills the result's `changes` from the report this run wrote; anything
/// that keeps them from being read goes to `report_error`, never failing
/// the run.
fn read_report(r: &mut PuppetAgentResult, path: &Path, before: Stamp, limit: usize) {
    if !Stamp::of(path).written_since(before) {
        r.report_error = Some(if path.exists() {
            format!(
                "puppet did not write a report in this run ({} is from an earlier run), so no \
                 changes are listed",
                path.display()
            )
        } else {
            format!(
                "puppet wrote no report ({} does not exist), so no changes are listed",
                path.display()
            )
        });
        return;
    }
    match puppet_report::read(path, limit) {
        Ok(report) => {
            r.changes = report.changes;
            r.changes_truncated = report.changes_truncated;
            r.transaction_uuid = report.transaction_uuid;
            r.corrective_change = Some(report.corrective_change);
        }
        Err(e) => r.report_error = Some(e.to_string()),
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
            sys: crate::sysroot::SysRoot::default(),
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
