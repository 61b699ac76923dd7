//! `kick agent`: psick::puppet_agent (or `--task`) with the agent flags
//! mapped to task parameters.
//!
//! `--environment` names the Puppet environment: the agent runs in it
//! (task parameter `environment`) and the task is read from it, as
//! `puppet job run -e` does; `--task-environment` reads the task from
//! elsewhere when the psick module is not deployed in that environment.

use orchestrator_client::Settings;
use orchestrator_types::TaskRequest;
use orchestrator_types::psick::AgentParams;
use serde_json::{Map, Value};

use crate::Context;
use crate::cli::AgentArgs;
use crate::error::Error;

/// The task `kick agent` runs unless `--task` says otherwise.
pub const DEFAULT_TASK: &str = "psick::puppet_agent";

/// The task parameters for the agent flags, as the typed psick contract
/// ([`AgentParams`]) has them.
pub fn agent_params(args: &AgentArgs) -> AgentParams {
    let tags: Vec<String> = args
        .tags
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    AgentParams {
        noop: if args.noop {
            Some(true)
        } else if args.no_noop {
            Some(false)
        } else {
            None
        },
        puppet_master: args.server.clone(),
        environment: args.run.env.environment.clone(),
        tags: (!tags.is_empty()).then_some(tags),
        wait_for_lock: args.wait_for_lock,
        timeout: args.run_timeout,
        ..AgentParams::default()
    }
}

/// The task parameters for the agent flags, as sent.
pub fn params(args: &AgentArgs) -> Map<String, Value> {
    agent_params(args).to_json()
}

/// The task request for the agent flags, without its scope (also what
/// `--at` schedules).
pub fn request(args: &AgentArgs, settings: &Settings) -> TaskRequest {
    TaskRequest {
        environment: args
            .task_environment
            .clone()
            .or(settings.environment.clone()),
        scope: Default::default(),
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
    if args.target.nodes_from.is_none() {
        crate::target::scope(&args.target)?;
    }
    let (client, settings) = super::connect(
        &args.run.conn,
        Some(&args.run.env),
        ctx.streams.err.as_mut(),
    )?;
    let req = request(&args, &settings);
    let sub = crate::rollout::run::Submission {
        request: req,
        target: &args.target,
        rollout: &args.rollout,
        run: &args.run,
        command: "agent",
    };
    crate::rollout::run::run_task(ctx, &client, &settings, sub).await
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
    fn the_typed_contract_refuses_bad_values_before_a_job_starts() {
        let a = agent(&["--nodes", "a", "--tags", "ntp,bad tag"]);
        assert!(agent_params(&a).validate().is_err());
        let a = agent(&["--nodes", "a", "--server=-e"]);
        assert!(agent_params(&a).validate().is_err());
        let a = agent(&["--nodes", "a", "--server", "puppet:8140", "--tags", "ntp"]);
        assert!(agent_params(&a).validate().is_ok());
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
