//! pxp-agent external module mode: the binary installed as
//! `/opt/puppetlabs/pxp-agent/modules/pxp-module-puppet` answers `metadata`
//! and `run` as pxp-module-puppet does, without its Ruby start-up.
//!
//! `run` reads `{"input": {"flags": [...], "env": [...], "job": "..."},
//! "configuration": {...}, "output_files": {...}}` on stdin, runs
//! `puppet agent <flags> --onetime --no-daemonize --verbose [--job-id J]`
//! directly (no shell) with the task's guards (FIFO-proof lock checks, the
//! disabled agent, the live-lock wait, a timeout, and on a timeout or a
//! signal a stop of the run's whole tree: puppet and every process it
//! started, in whatever session, see [`crate::process`]), and prints
//! pxp-module-puppet's result fields, plus `stopped` when it stopped the
//! run. Puppet's own output goes to stderr.

pub mod flags;
pub mod output_files;
pub mod report;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use orchestrator_types::psick_tasks::{PxpRunResult, pxp_error};
use serde_json::{Value, json};

use crate::error::Failure;
use crate::locate::Puppet;
use crate::process::{self, Limits, Signals, Stop};
use crate::run_once::{self, DISABLED_MSG, LOCKED_MSG};
use crate::summary::Stamp;

/// pxp-module-puppet waits up to 10 minutes for another run's lock.
pub const DEFAULT_WAIT_FOR_LOCK: u64 = 600;

/// Upper bound of the duration settings (one year).
pub const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// Part of the metadata's `description`, in every version of the binary:
/// `files/install-pxp-module.sh` looks for these bytes to tell Kick's
/// module from Puppet's, so it never saves Kick's binary as Puppet's module.
pub const MODULE_MARKER: &str = "PXP Puppet module (psick: one static binary";

/// What a configuration key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON string.
    Text,
    /// A JSON integer (no fraction, no exponent) from `min` to
    /// [`MAX_SECONDS`].
    Seconds {
        /// The smallest accepted value.
        min: u64,
    },
    /// `true` or `false`.
    Switch,
}

impl Kind {
    /// The key's JSON schema, as pxp-agent validates it (draft 4, strict
    /// types: `30.0` is not an integer).
    fn schema(self) -> Value {
        match self {
            Kind::Text => json!({"type": "string"}),
            Kind::Seconds { min } => {
                json!({"type": "integer", "minimum": min, "maximum": MAX_SECONDS})
            }
            Kind::Switch => json!({"type": "boolean"}),
        }
    }

    /// Whether `v` is a value of this kind (what [`Kind::schema`] accepts).
    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Text => v.is_string(),
            // `as_u64` is `None` for a number written with a fraction or an
            // exponent (serde_json holds it as f64), as draft 4 wants.
            Kind::Seconds { min } => v.as_u64().is_some_and(|n| (min..=MAX_SECONDS).contains(&n)),
            Kind::Switch => v.is_boolean(),
        }
    }

    fn wanted(self) -> String {
        match self {
            Kind::Text => "a string".into(),
            Kind::Seconds { min } => format!("an integer from {min} to {MAX_SECONDS}"),
            Kind::Switch => "true or false".into(),
        }
    }
}

/// The configuration keys: both the metadata's `configuration` schema and
/// [`Config::from_request`]'s checks come from this table. Other keys are
/// ignored, as pxp-agent's validation (and pxp-module-puppet) lets them by.
pub const CONFIG_KEYS: &[(&str, Kind)] = &[
    ("puppet_bin", Kind::Text),
    ("timeout", Kind::Seconds { min: 1 }),
    ("wait_for_lock", Kind::Seconds { min: 0 }),
    ("allow_server", Kind::Switch),
];

/// The `configuration` schema pxp-agent checks `pxp-module-puppet.conf`
/// against at start.
pub fn configuration_schema() -> Value {
    let properties: serde_json::Map<String, Value> = CONFIG_KEYS
        .iter()
        .map(|(key, kind)| ((*key).to_owned(), kind.schema()))
        .collect();
    json!({"type": "object", "properties": properties})
}

/// The module's metadata: pxp-module-puppet's, with `timeout`,
/// `wait_for_lock` and `allow_server` added to the configuration and
/// `stopped` to the results.
pub fn metadata() -> Value {
    json!({
        "description": "PXP Puppet module (psick: one static binary, no Ruby wrapper)",
        "actions": [{
            "name": "run",
            "description": "Start a Puppet run",
            "input": {
                "type": "object",
                "properties": {
                    "env": {"type": "array"},
                    "flags": {"type": "array", "items": {"type": "string"}},
                    "job": {"type": "string"}
                },
                "required": ["flags"]
            },
            "results": {
                "type": "object",
                "properties": {
                    "time": {"type": "string"},
                    "transaction_uuid": {"type": "string"},
                    "metrics": {"type": "object"},
                    "environment": {"type": "string"},
                    "status": {"type": "string"},
                    "error_type": {"type": "string"},
                    "error": {"type": "string"},
                    "exitcode": {"type": "number"},
                    "version": {"type": "number"},
                    "stopped": {
                        "type": "array",
                        "description": "Only when the module stopped the run: every process the stop ended",
                        "items": {
                            "type": "object",
                            "properties": {
                                "pid": {"type": "integer"},
                                "command": {"type": "string"},
                                "signal": {"type": "string"}
                            }
                        }
                    }
                },
                "required": ["time", "transaction_uuid", "environment", "status", "exitcode", "version"]
            }
        }],
        "configuration": configuration_schema()
    })
}

/// `puppet_agent metadata`.
pub fn print_metadata() -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", metadata()).and_then(|()| out.flush());
    ExitCode::SUCCESS
}

/// A failed result.
fn failed(exitcode: i64, error_type: &str, error: impl Into<String>) -> PxpRunResult {
    PxpRunResult {
        exitcode,
        error_type: Some(error_type.to_owned()),
        error: Some(error.into()),
        ..PxpRunResult::unknown()
    }
}

/// The module configuration (from pxp-agent's
/// `/etc/puppetlabs/pxp-agent/modules/pxp-module-puppet.conf`), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `puppet_bin`; `None` (absent or empty) means the task's own lookup.
    pub puppet_bin: Option<PathBuf>,
    /// Seconds for the whole action.
    pub timeout: Option<u64>,
    /// Seconds to wait for another run's lock.
    pub wait_for_lock: u64,
    /// Whether `run` takes the flags that choose the server (`--server`,
    /// `--serverport`); `true` unless the configuration says `false`.
    pub allow_server: bool,
}

impl Config {
    /// Reads the request's `configuration`; absent or null (a request
    /// written by hand: pxp-agent always sends one) is the defaults.
    pub fn from_request(args: &Value) -> Result<Config, String> {
        match args.get("configuration") {
            None | Some(Value::Null) => Config::check(&json!({})),
            Some(c) => Config::check(c),
        }
    }

    /// Checks a configuration object exactly as pxp-agent checks it against
    /// [`configuration_schema`]: a value the schema refuses is refused here,
    /// and the other way round.
    pub fn check(c: &Value) -> Result<Config, String> {
        let Some(map) = c.as_object() else {
            return Err("configuration must be a JSON object".into());
        };
        for (key, kind) in CONFIG_KEYS {
            if let Some(v) = map.get(*key).filter(|v| !kind.accepts(v)) {
                return Err(format!(
                    "configuration.{key} must be {}, not {}",
                    kind.wanted(),
                    shorten(&v.to_string())
                ));
            }
        }
        Ok(Config {
            puppet_bin: map
                .get("puppet_bin")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            timeout: map.get("timeout").and_then(Value::as_u64),
            wait_for_lock: map
                .get("wait_for_lock")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_WAIT_FOR_LOCK),
            allow_server: map
                .get("allow_server")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        })
    }
}

/// The checked `input`: the flags to pass (defaults and `--job-id` added).
pub fn flags_from_request(args: &Value, allow_server: bool) -> Result<Vec<String>, String> {
    let Some(input) = args.get("input").filter(|v| v.is_object()) else {
        return Err(format!(
            "The json received on STDIN did not contain a valid 'input' key: {}",
            shorten(&args.to_string())
        ));
    };
    let flags: Vec<String> = match input.get("flags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|f| f.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or("input.flags must be an array of strings")?,
        Some(_) => return Err("input.flags must be an array of strings".into()),
    };
    let job = match input.get("job") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        // PE sends job ids as strings; a number is taken as its digits.
        Some(Value::Number(n)) if n.is_u64() => {
            return flags::process(&flags, Some(&n.to_string()), allow_server)
                .map_err(|e| bare(&e));
        }
        Some(_) => return Err("input.job must be a string".into()),
    };
    flags::process(&flags, job, allow_server).map_err(|e| bare(&e))
}

fn bare(f: &Failure) -> String {
    match f {
        Failure::InvalidParams(m) => m.clone(),
        other => other.to_string(),
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(300).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// Runs the `run` action on a parsed request; returns the result and
/// puppet's output.
pub fn run(args: &Value, signals: &Signals) -> (PxpRunResult, String) {
    if !args.is_object() {
        let msg = format!(
            "The json received on STDIN was not a hash: {}",
            shorten(&args.to_string())
        );
        return (failed(-1, pxp_error::INVALID_JSON, msg), String::new());
    }
    let config = match Config::from_request(args) {
        Ok(c) => c,
        Err(e) => return (failed(-1, pxp_error::INVALID_JSON, e), String::new()),
    };
    let flags = match flags_from_request(args, config.allow_server) {
        Ok(f) => f,
        Err(e) => return (failed(-1, pxp_error::INVALID_JSON, e), String::new()),
    };
    let mut log = String::new();
    let result = match execute(&config, &flags, signals, &mut log) {
        Ok(r) => r,
        Err(r) => *r,
    };
    (result, log)
}

fn error_type(f: &Failure) -> &'static str {
    match f {
        Failure::InvalidParams(_) => pxp_error::INVALID_JSON,
        Failure::PuppetNotFound { .. } => pxp_error::NO_PUPPET_BIN,
        Failure::SettingsUnknown { .. } => pxp_error::NO_LAST_RUN_REPORT,
        Failure::AgentDisabled { .. } => pxp_error::AGENT_DISABLED,
        Failure::AgentLocked { .. } => pxp_error::AGENT_LOCKED,
        Failure::SpawnFailed { .. } | Failure::InvalidLockfile { .. } | Failure::Io { .. } => {
            pxp_error::AGENT_FAILED_TO_START
        }
        _ => pxp_error::AGENT_EXIT_NON_ZERO,
    }
}

fn from_failure(exitcode: i64, f: &Failure) -> PxpRunResult {
    let msg = match f {
        Failure::AgentDisabled { message, .. } => {
            format!("Puppet agent is disabled (reason: '{message}')")
        }
        Failure::AgentLocked { .. } => format!("Puppet agent run is already in progress: {f}"),
        other => other.to_string(),
    };
    failed(exitcode, error_type(f), msg)
}

fn execute(
    config: &Config,
    flags: &[String],
    signals: &Signals,
    log: &mut String,
) -> Result<PxpRunResult, Box<PxpRunResult>> {
    let deadline = config
        .timeout
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t)));
    let limits = || Limits {
        timeout: deadline.map(|d| d.saturating_duration_since(Instant::now())),
        grace: process::kill_grace(),
    };
    let puppet = match &config.puppet_bin {
        Some(bin) if !bin.exists() => {
            return Err(Box::new(failed(
                -1,
                pxp_error::NO_PUPPET_BIN,
                format!("Puppet executable '{}' does not exist", bin.display()),
            )));
        }
        Some(bin) => Puppet::with_bin(bin.clone(), limits(), signals),
        None => Puppet::from_env(limits(), signals),
    }
    .map_err(|f| Box::new(from_failure(-1, &f)))?;
    let s = &puppet.settings;
    let argv = argv(&puppet, flags);
    run_once::preflight(s).map_err(|f| Box::new(from_failure(-1, &f)))?;

    let wait_started = Instant::now();
    let lock_wait_ends = wait_started + Duration::from_secs(config.wait_for_lock);
    let wait_until = deadline.map_or(lock_wait_ends, |d| d.min(lock_wait_ends));
    let report = &s.lastrunreport;
    let ran = run_once::run_when_free(&argv, s, wait_until, limits, signals)
        .map_err(|f| Box::new(from_failure(-1, &f)))?;
    let finished = ran.finished;
    log.push_str(&ran.note);
    log.push_str(&finished.output);

    let exitcode = match (finished.stopped, finished.code) {
        (None, Some(code)) => i64::from(code),
        _ => -1,
    };
    if let Some(stop) = finished.stopped {
        let mut r = failed(
            exitcode,
            pxp_error::AGENT_EXIT_NON_ZERO,
            stop_error(stop, config.timeout, &finished),
        );
        r.stopped = Some(process::stopped_list(&finished.ended));
        return Err(Box::new(r));
    }
    if finished.code == Some(1) {
        if finished.output.contains(DISABLED_MSG) {
            return Err(Box::new(failed(
                exitcode,
                pxp_error::AGENT_DISABLED,
                "Puppet agent is disabled",
            )));
        }
        if finished.output.contains(LOCKED_MSG) {
            return Err(Box::new(failed(
                exitcode,
                pxp_error::AGENT_LOCKED,
                "Puppet agent run is already in progress",
            )));
        }
    }
    if finished.code.is_none() {
        return Err(Box::new(failed(
            -1,
            pxp_error::AGENT_EXIT_NON_ZERO,
            format!(
                "Puppet agent was killed by signal {}",
                finished
                    .signal
                    .map_or_else(|| "?".to_owned(), |s| s.to_string())
            ),
        )));
    }
    result_from_report(report, ran.report_before, exitcode)
}

/// The `error` of a run the module stopped: why, whether SIGKILL was needed,
/// and how many processes ended (the result's `stopped` lists them), or
/// which were still alive after SIGKILL.
fn stop_error(stop: Stop, timeout: Option<u64>, finished: &process::Finished) -> String {
    let why = match stop {
        Stop::Timeout => format!(
            "the timeout of {}s set in the module configuration ran out",
            timeout.unwrap_or_default()
        ),
        Stop::Signal(sig) => format!("the module received SIG{}", process::signal_name(sig)),
    };
    // The stop knows which processes needed SIGKILL, not whether puppet or
    // one it started was the slow one.
    let killed = if finished.killed {
        " (a process of the run, puppet or one it started, did not end on SIGTERM within the \
         grace period and was killed)"
    } else {
        ""
    };
    let ended = finished.ended.len();
    let mut msg = format!(
        "Puppet agent run was stopped because {why}{killed}; {ended} process{} of the run \
         ended, its exec resources included (listed in `stopped`)",
        if ended == 1 { "" } else { "es" }
    );
    if let Some(note) = crate::error::survivor_note(&finished.survivors) {
        msg.push_str(". ");
        msg.push_str(&note);
    }
    msg
}

/// The argv: puppet, `agent`, `--confdir` when overridden, the flags.
pub fn argv(puppet: &Puppet, flags: &[String]) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![puppet.bin.clone().into(), "agent".into()];
    if let Some(dir) = &puppet.confdir_override {
        let mut flag = OsString::from("--confdir=");
        flag.push(dir);
        argv.push(flag);
    }
    // A server_list in puppet.conf wins over --server; pin it like the task.
    if let (Some(server), Some(_)) = (flags::server(flags), &puppet.settings.server_list) {
        let port = flags
            .windows(2)
            .find(|w| w[0] == "--serverport")
            .map(|w| format!(":{}", w[1]))
            .unwrap_or_default();
        argv.push(format!("--server_list={server}{port}").into());
    }
    argv.extend(flags.iter().map(OsString::from));
    argv
}

fn result_from_report(
    report: &std::path::Path,
    before: Stamp,
    exitcode: i64,
) -> Result<PxpRunResult, Box<PxpRunResult>> {
    if std::fs::metadata(report).is_err() {
        return Err(Box::new(failed(
            exitcode,
            pxp_error::NO_LAST_RUN_REPORT,
            format!("{} doesn't exist", report.display()),
        )));
    }
    if !Stamp::of(report).written_since(before) {
        return Err(Box::new(failed(
            exitcode,
            pxp_error::NO_LAST_RUN_REPORT,
            "The Puppet run failed in an unexpected way",
        )));
    }
    let fields = crate::lockfile::read_regular(report, report::MAX_REPORT_BYTES)
        .ok_or_else(|| "it cannot be read as a file".to_owned())
        .and_then(|text| report::parse(&text))
        .map_err(|e| {
            Box::new(failed(
                exitcode,
                pxp_error::INVALID_LAST_RUN_REPORT,
                format!("{} could not be loaded: {e}", report.display()),
            ))
        })?;
    let mut r = if exitcode == 0 {
        PxpRunResult {
            exitcode,
            ..PxpRunResult::unknown()
        }
    } else {
        failed(
            exitcode,
            pxp_error::AGENT_EXIT_NON_ZERO,
            "Puppet agent exited with a non 0 exitcode",
        )
    };
    let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".to_owned());
    r.time = or_unknown(fields.time);
    r.transaction_uuid = or_unknown(fields.transaction_uuid);
    r.environment = or_unknown(fields.environment);
    r.status = or_unknown(fields.status);
    r.metrics = fields.metrics;
    if exitcode == 0 {
        Ok(r)
    } else {
        Err(Box::new(r))
    }
}

/// `puppet_agent run`: the whole action, stdin to exit code.
pub fn main_run() -> ExitCode {
    // Installed first, so a stop at any point still yields the files.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            return emit_plain(&failed(
                -1,
                pxp_error::AGENT_FAILED_TO_START,
                format!("could not install signal handlers: {e}"),
            ));
        }
    };
    let text = match crate::input::read_stdin() {
        Ok(t) => t,
        Err(f) => return emit_plain(&failed(-1, pxp_error::INVALID_JSON, bare(&f))),
    };
    let args: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(_) => {
            let msg = format!("Invalid json received on STDIN: {}", shorten(&text));
            return emit_plain(&failed(-1, pxp_error::INVALID_JSON, msg));
        }
    };
    let files = match output_files::Paths::from_request(&args) {
        Ok(None) => None,
        Ok(Some(paths)) => match output_files::Opened::open(paths) {
            Ok(o) => Some(o),
            Err(e) => {
                let r = failed(
                    -1,
                    pxp_error::INVALID_JSON,
                    format!("Could not open output files: {e}"),
                );
                emit_plain(&r);
                return ExitCode::from(output_files::EXIT_OUTPUT_FILES);
            }
        },
        Err(e) => return emit_plain(&failed(-1, pxp_error::INVALID_JSON, e)),
    };
    let (result, log) = run(&args, &signals);
    let code: u8 = if result.error.is_some() { 1 } else { 0 };
    let json = serde_json::to_string(&result).unwrap_or_default();
    match files {
        Some(files) => match files.finish(&json, &log, code) {
            Ok(()) => ExitCode::from(code),
            Err(_) => ExitCode::from(output_files::EXIT_OUTPUT_FILES),
        },
        None => {
            let _ = std::io::stderr().lock().write_all(log.as_bytes());
            emit_plain(&result)
        }
    }
}

/// Prints a result on stdout, without a trailing newline as
/// pxp-module-puppet does, and exits 1 when it holds an error.
fn emit_plain(result: &PxpRunResult) -> ExitCode {
    let json = serde_json::to_string(result).unwrap_or_default();
    crate::print_stdout(&json, result.error.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_has_what_pxp_agent_validates() {
        let m = metadata();
        assert!(
            m["description"]
                .as_str()
                .is_some_and(|d| d.starts_with(MODULE_MARKER)),
            "the installer finds Kick's binary by its description: {m}"
        );
        let run = &m["actions"][0];
        assert_eq!(run["name"], "run");
        assert!(run["input"].is_object() && run["results"].is_object());
        assert_eq!(run["input"]["required"], json!(["flags"]));
        let mut keys: Vec<&str> = CONFIG_KEYS.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        let properties = m["configuration"]["properties"].as_object().unwrap();
        assert!(properties.keys().eq(keys), "{properties:?}");
        assert_eq!(
            m["configuration"]["properties"]["timeout"],
            json!({"type": "integer", "minimum": 1, "maximum": 31_536_000})
        );
        assert_eq!(
            m["configuration"]["properties"]["allow_server"],
            json!({"type": "boolean"})
        );
    }

    #[test]
    fn configuration_is_checked() {
        let c = Config::from_request(&json!({})).unwrap();
        let defaults = Config {
            puppet_bin: None,
            timeout: None,
            wait_for_lock: 600,
            allow_server: true,
        };
        assert_eq!(c, defaults);
        assert_eq!(
            Config::from_request(&json!({"configuration": null})).unwrap(),
            defaults
        );
        let c = Config::from_request(&json!({"configuration": {
            "puppet_bin": "", "timeout": 30, "wait_for_lock": 0, "allow_server": false,
            "not_a_key": [1]
        }}))
        .unwrap();
        assert_eq!(
            c,
            Config {
                puppet_bin: None,
                timeout: Some(30),
                wait_for_lock: 0,
                allow_server: false
            }
        );
        for (bad, msg) in [
            (
                json!({"timeout": 0}),
                "configuration.timeout must be an integer from 1 to 31536000, not 0",
            ),
            (
                json!({"timeout": "5"}),
                "configuration.timeout must be an integer from 1 to 31536000, not \"5\"",
            ),
            (
                json!({"puppet_bin": 1}),
                "configuration.puppet_bin must be a string, not 1",
            ),
            (
                json!({"puppet_bin": null}),
                "configuration.puppet_bin must be a string, not null",
            ),
            (
                json!({"allow_server": "false"}),
                "configuration.allow_server must be true or false, not \"false\"",
            ),
            (json!([]), "configuration must be a JSON object"),
        ] {
            assert_eq!(
                Config::from_request(&json!({"configuration": bad})),
                Err(msg.to_owned()),
                "{bad}"
            );
        }
    }

    /// pxp-agent drops the module, silently for every later request, when
    /// its configuration file fails the schema; the module must refuse
    /// exactly what the schema refuses, so a file it would run with is one
    /// pxp-agent loads. pxp-agent validates with valijson, draft 4 and
    /// strict types (rapidjson holds `30.0`, `1e2` and `-0` as doubles, not
    /// integers): the oracle here is draft 4.
    #[test]
    fn the_schema_and_the_module_check_agree_on_every_key_at_the_boundaries() {
        let schema = configuration_schema();
        let validator = jsonschema::draft4::new(&schema).unwrap();
        let candidates = [
            "null",
            "true",
            "false",
            "0",
            "-0",
            "1",
            "-1",
            "2",
            "30",
            "600",
            "31535999",
            "31536000",
            "31536001",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "1.0",
            "30.0",
            "0.5",
            "1e2",
            "1E3",
            "\"\"",
            "\"30\"",
            "\"false\"",
            "\"/opt/puppetlabs/bin/puppet\"",
            "[]",
            "[30]",
            "{}",
        ];
        for (key, kind) in CONFIG_KEYS {
            let mut accepted = Vec::new();
            for text in candidates {
                // As pxp-agent reads the file: JSON text, not a Rust value.
                let file = format!("{{\"{key}\": {text}}}");
                let config: Value = serde_json::from_str(&file).unwrap();
                let by_schema = validator.is_valid(&config);
                let by_module = Config::check(&config);
                assert_eq!(
                    by_schema,
                    by_module.is_ok(),
                    "{file}: the schema says {by_schema}, the module {by_module:?}"
                );
                if by_schema {
                    accepted.push(text);
                }
            }
            let want: &[&str] = match kind {
                Kind::Text => &[
                    "\"\"",
                    "\"30\"",
                    "\"false\"",
                    "\"/opt/puppetlabs/bin/puppet\"",
                ],
                Kind::Switch => &["true", "false"],
                Kind::Seconds { min: 0 } => &["0", "1", "2", "30", "600", "31535999", "31536000"],
                Kind::Seconds { min: 1 } => &["1", "2", "30", "600", "31535999", "31536000"],
                Kind::Seconds { .. } => unreachable!("no other minimum"),
            };
            assert_eq!(accepted, want, "{key}");
        }
        // The whole object: not an object, unknown keys, every key at once.
        for text in ["null", "[]", "\"x\"", "1", "{}", "{\"other\": 0}"] {
            let config: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                validator.is_valid(&config),
                Config::check(&config).is_ok(),
                "{text}"
            );
        }
        let all = json!({"puppet_bin": "/usr/bin/puppet", "timeout": 31_536_000,
                         "wait_for_lock": 0, "allow_server": false});
        assert!(validator.is_valid(&all) && Config::check(&all).is_ok());
    }

    fn finished(killed: bool, ended: usize, survivors: Vec<u32>) -> process::Finished {
        process::Finished {
            code: Some(0),
            signal: None,
            stopped: Some(Stop::Timeout),
            killed,
            ended: (0..ended)
                .map(|i| process_tree::Ended {
                    pid: 100 + i as u32,
                    command: "sleep 30".into(),
                    signal: if killed { "KILL" } else { "TERM" },
                })
                .collect(),
            survivors,
            output: String::new(),
        }
    }

    #[test]
    fn a_stop_error_puts_a_kill_on_the_run_and_names_survivors() {
        let plain = stop_error(Stop::Timeout, Some(5), &finished(false, 1, Vec::new()));
        assert_eq!(
            plain,
            "Puppet agent run was stopped because the timeout of 5s set in the module \
             configuration ran out; 1 process of the run ended, its exec resources included \
             (listed in `stopped`)"
        );
        let killed = stop_error(Stop::Signal(15), None, &finished(true, 3, vec![9, 10]));
        assert!(
            killed.contains(
                "because the module received SIGTERM (a process of the run, puppet or one it \
                 started, did not end on SIGTERM within the grace period and was killed); 3 \
                 processes of the run ended"
            ),
            "{killed}"
        );
        assert!(!killed.contains("it ignored"), "{killed}");
        assert!(
            killed.ends_with(
                "PIDs 9, 10 were still alive after SIGKILL (uninterruptible sleep, \
                 or not the task's to signal) and may still change the node"
            ),
            "{killed}"
        );
    }

    #[test]
    fn input_is_checked() {
        let f = flags_from_request(
            &json!({"input": {"flags": ["--noop"], "env": [], "job": "17"}}),
            true,
        )
        .unwrap();
        assert_eq!(
            f,
            [
                "--noop",
                "--onetime",
                "--no-daemonize",
                "--verbose",
                "--job-id",
                "17"
            ]
        );
        assert!(
            flags_from_request(&json!({"input": "x"}), true)
                .unwrap_err()
                .contains("valid 'input' key")
        );
        assert!(flags_from_request(&json!({}), true).is_err());
        assert!(flags_from_request(&json!({"input": {"flags": [1]}}), true).is_err());
        assert!(
            flags_from_request(&json!({"input": {"flags": ["--server_list", "x"]}}), true)
                .unwrap_err()
                .contains("non-permitted")
        );
        let server = json!({"input": {"flags": ["--server", "pm.example.com"], "job": 3}});
        assert!(flags_from_request(&server, true).is_ok());
        assert!(
            flags_from_request(&server, false)
                .unwrap_err()
                .contains("non-permitted flag: --server (allow_server is false")
        );
    }
}
