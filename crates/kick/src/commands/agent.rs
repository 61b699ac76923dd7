//! `kick agent`: psick::puppet_agent (or `--task`) with the agent flags
//! mapped to task parameters.
//!
//! `--environment` names the Puppet environment: the agent runs in it
//! (task parameter `environment`) and the task is read from it, as
//! `puppet job run -e` does; `--task-environment` reads the task from
//! elsewhere when the psick module is not deployed in that environment.

use orchestrator_client::Settings;
use orchestrator_types::{Scope, TaskRequest};
use serde_json::{Map, Value};

use crate::Context;
use crate::cli::AgentArgs;
use crate::error::Error;

/// The task `kick agent` runs unless `--task` says otherwise.
pub const DEFAULT_TASK: &str = "psick::puppet_agent";

/// The task parameters for the agent flags.
pub fn params(args: &AgentArgs) -> Map<String, Value> {
    let mut p = Map::new();
    if args.noop {
        p.insert("noop".into(), Value::Bool(true));
    } else if args.no_noop {
        p.insert("noop".into(), Value::Bool(false));
    }
    if let Some(s) = &args.server {
        p.insert("puppet_master".into(), Value::from(s.as_str()));
    }
    if let Some(e) = &args.run.conn.environment {
        p.insert("environment".into(), Value::from(e.as_str()));
    }
    let tags: Vec<Value> = args
        .tags
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(Value::from)
        .collect();
    if !tags.is_empty() {
        p.insert("tags".into(), Value::Array(tags));
    }
    if let Some(w) = args.wait_for_lock {
        p.insert("wait_for_lock".into(), Value::from(w));
    }
    if let Some(t) = args.run_timeout {
        p.insert("timeout".into(), Value::from(t));
    }
    p
}

/// The task request for the agent flags (also what `--at` schedules).
pub fn request(args: &AgentArgs, scope: Scope, settings: &Settings) -> TaskRequest {
    TaskRequest {
        environment: args
            .task_environment
            .clone()
            .or(settings.environment.clone()),
        scope,
        task: args.task.clone(),
        params: params(args),
        description: args.run.description.clone(),
        // psick::puppet_agent supports noop, so the job is also marked noop
        // (PE shows it in job listings); another --task may not, and gets
        // only the parameter.
        noop: (args.noop && args.task == DEFAULT_TASK).then_some(true),
        timeout: args.run.timeout,
        userdata: None,
    }
}

/// Runs `kick agent` (or schedules it, with `--at`/`--every`).
pub async fn run(ctx: &mut Context, args: AgentArgs) -> Result<u8, Error> {
    if args.when.is_set() {
        return super::schedule::agent(ctx, args).await;
    }
    let scope = crate::target::scope(&args.target)?;
    let (client, settings) = super::connect(&args.run.conn, &ctx.watch, ctx.streams.err.as_mut())?;
    let req = request(&args, scope, &settings);
    let job = client.run_task(req).await?;
    super::follow_started(ctx, &client, job, &args.run).await
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
            Value::Object(params(&a)),
            json!({"noop": true, "puppet_master": "puppet:8140", "environment": "dev",
                   "tags": ["ntp", "ssh"], "wait_for_lock": 30, "timeout": 600})
        );
        let a = agent(&["--nodes", "a", "--no-noop"]);
        assert_eq!(Value::Object(params(&a)), json!({"noop": false}));
        let a = agent(&["--nodes", "a"]);
        assert_eq!(Value::Object(params(&a)), json!({}));
        assert_eq!(a.task, DEFAULT_TASK);
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
