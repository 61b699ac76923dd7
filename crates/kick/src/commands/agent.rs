//! `kick agent`: psick::puppet_agent (or `--task`) with the agent flags
//! mapped to task parameters.
//!
//! `--environment` names the Puppet environment: the agent runs in it
//! (task parameter `environment`) and the task is read from it, as
//! `puppet job run -e` does; `--task-environment` reads the task from
//! elsewhere when the psick module is not deployed in that environment.

use orchestrator_client::Settings;
use orchestrator_types::TaskRequest;
use orchestrator_types::psick::{AgentParams, PUPPET_AGENT_TASK};
use serde_json::{Map, Value};

use crate::cli::AgentArgs;
use crate::context::Context;
use crate::error::Error;

/// The task parameters for the agent flags, and those of `--params`;
/// for psick::puppet_agent checked by the task's own rules before the job
/// is submitted.
pub fn params(args: &AgentArgs) -> Result<Map<String, Value>, Error> {
    let f = &args.puppet;
    let list = |tags: &[String]| Some(tag_list(tags)).filter(|l| !l.is_empty());
    let typed = AgentParams {
        noop: either(args.noop, args.no_noop),
        puppet_master: args.server.clone(),
        environment: args.job.run.env.environment.clone(),
        tags: list(&f.tags),
        skip_tags: list(&f.skip_tags),
        debug: f.debug.then_some(true),
        trace: f.trace.then_some(true),
        evaltrace: f.evaltrace.then_some(true),
        timeout: args.run_timeout,
        wait_for_lock: args.wait_for_lock,
        http_connect_timeout: f.connect_timeout,
        http_keepalive_timeout: f.http_keepalive_timeout,
        http_read_timeout: f.http_read_timeout,
        filetimeout: f.filetimeout,
        ordering: f.ordering.map(crate::cli::Ordering::param),
        use_cached_catalog: either(f.use_cached_catalog, f.no_use_cached_catalog),
        usecacheonfailure: either(f.usecacheonfailure, f.no_usecacheonfailure),
        ..AgentParams::default()
    };
    let mut p = typed.to_json();
    if let Some(json) = &args.params_json {
        for (k, v) in crate::params::parse_json(json)? {
            if p.contains_key(&k) {
                return Err(Error::Usage(format!(
                    "task parameter `{k}` is set both by a flag and by --params; give it once"
                )));
            }
            p.insert(k, v);
        }
    }
    if args.task == PUPPET_AGENT_TASK {
        AgentParams::from_json(&p).map_err(|e| {
            Error::Usage(format!(
                "{e} (see `kick tasks show {PUPPET_AGENT_TASK}` for its parameters)"
            ))
        })?;
    }
    Ok(p)
}

/// A `--flag`/`--no-flag` pair (clap refuses both): `Some(true)`,
/// `Some(false)`, or `None` to leave the node's setting.
pub fn either(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    }
}

/// Tags as given (comma separated, possibly repeated), trimmed, empty ones
/// dropped.
pub fn tag_list(tags: &[String]) -> Vec<String> {
    tags.iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The task request for the agent flags, without its scope (also what
/// `--at` schedules).
pub fn request(
    args: &AgentArgs,
    params: Map<String, Value>,
    userdata: Option<Map<String, Value>>,
    settings: &Settings,
) -> TaskRequest {
    TaskRequest {
        environment: args
            .task_environment
            .clone()
            .or(settings.environment.clone()),
        scope: Default::default(),
        task: args.task.clone(),
        params,
        description: args.job.run.description.clone(),
        // psick::puppet_agent supports noop, so the job is also marked noop
        // (PE shows it in job listings); another --task may not, and gets
        // only the parameter.
        noop: (args.noop && args.task == PUPPET_AGENT_TASK).then_some(true),
        timeout: args.job.run.timeout,
        userdata,
    }
}

/// Runs `kick agent` (or schedules it, with `--at`/`--every`).
pub async fn run(ctx: &mut Context, mut args: AgentArgs) -> Result<u8, Error> {
    if args.when.is_set() {
        return super::schedule::agent(ctx, args).await;
    }
    crate::params::check_stdin(
        args.job.target.nodes.as_deref(),
        args.params_json.as_deref(),
    )?;
    crate::target::read_stdin_nodes(&mut args.job.target)?;
    if args.job.target.nodes_from.is_none() {
        crate::target::scope(&args.job.target)?;
    }
    let params = params(&args)?;
    super::start(ctx, &args.job, "agent", |userdata, settings| {
        request(&args, params, userdata, settings)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;
    use serde_json::json;

    fn agent(args: &[&str]) -> AgentArgs {
        let mut v = vec!["kick", "agent"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).unwrap().command {
            crate::cli::Command::Agent(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_map_to_psick_parameters() {
        let a = agent(&[
            "--nodes",
            "a",
            "--noop",
            "--server",
            "puppet:8140",
            "-e",
            "dev",
            "--tags",
            "ntp,ssh",
            "--wait-for-lock",
            "30",
            "--run-timeout",
            "600",
        ]);
        assert_eq!(
            Value::Object(params(&a).unwrap()),
            json!({"noop": true, "puppet_master": "puppet:8140", "environment": "dev",
                   "tags": ["ntp", "ssh"], "wait_for_lock": 30, "timeout": 600})
        );
        let a = agent(&["--nodes", "a", "--no-noop"]);
        assert_eq!(Value::Object(params(&a).unwrap()), json!({"noop": false}));
        let a = agent(&["--nodes", "a"]);
        assert_eq!(Value::Object(params(&a).unwrap()), json!({}));
        assert_eq!(a.task, PUPPET_AGENT_TASK);
    }

    #[test]
    fn every_agent_flag_has_its_parameter() {
        let a = agent(&[
            "--nodes",
            "a",
            "--skip-tags",
            "slow, ,heavy",
            "--debug",
            "--trace",
            "--evaltrace",
            "--connect-timeout",
            "5",
            "--http-keepalive-timeout",
            "0",
            "--http-read-timeout",
            "60",
            "--filetimeout",
            "15",
            "--ordering",
            "manifest",
            "--no-use-cached-catalog",
            "--usecacheonfailure",
            "--params",
            r#"{"changes_limit": 10}"#,
        ]);
        assert_eq!(
            Value::Object(params(&a).unwrap()),
            json!({"skip_tags": ["slow", "heavy"], "debug": true, "trace": true,
                   "evaltrace": true, "http_connect_timeout": 5, "http_keepalive_timeout": 0,
                   "http_read_timeout": 60, "filetimeout": 15, "ordering": "manifest",
                   "use_cached_catalog": false, "usecacheonfailure": true,
                   "changes_limit": 10})
        );
        let a = agent(&["--nodes", "a", "--http-connect-timeout", "7"]);
        assert_eq!(a.puppet.connect_timeout, Some(7));
    }

    #[test]
    fn params_may_not_repeat_a_flag_and_stdin_is_read_once() {
        let a = agent(&["--nodes", "a", "--debug", "--params", r#"{"debug": false}"#]);
        assert!(params(&a).unwrap_err().to_string().contains("`debug`"));
        // The task's own rules, before anything is submitted.
        for bad in [
            &["--ordering", "random"][..],
            &["--tags", "no spaces"],
            &["--server=-e"],
            &["--params", r#"{"changes_limit": 99999}"#],
            &["--params", r#"{"no_such": 1}"#],
        ] {
            let mut v = vec!["--nodes", "a"];
            v.extend_from_slice(bad);
            let e = params(&agent(&v)).unwrap_err().to_string();
            assert!(e.contains("kick tasks show"), "{bad:?}: {e}");
        }
        // Another task gets the parameters unchecked.
        let a = agent(&["--nodes", "a", "--task", "x::y", "--ordering", "random"]);
        assert_eq!(params(&a).unwrap()["ordering"], "random");
        for bad in [
            &["--connect-timeout", "0"][..],
            &["--http-read-timeout", "-1"],
            &["--filetimeout", "99999999999"],
            &["--ordering", "sideways"],
            &["--usecacheonfailure", "--no-usecacheonfailure"],
        ] {
            let mut v = vec!["kick", "agent", "--nodes", "a"];
            v.extend_from_slice(bad);
            assert!(Cli::try_parse_from(v).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn noop_and_no_noop_conflict_and_a_target_is_required() {
        assert!(
            Cli::try_parse_from(["kick", "agent", "--nodes", "a", "--noop", "--no-noop"]).is_err()
        );
        assert!(Cli::try_parse_from(["kick", "agent"]).is_err());
        assert!(Cli::try_parse_from(["kick", "agent", "--nodes", "a", "--query", "x"]).is_err());
    }
}
