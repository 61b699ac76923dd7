//! `kick job show|watch|list|stop|rerun`.

use std::io::Write;

use orchestrator_client::{JobsQuery, strip_marker};
use orchestrator_types::{DeployRequest, NodeState, Scope, TaskRequest};
use serde_json::{Value, json};

use crate::cli::rollout::JobRerunArgs;
use crate::cli::{Format, JobCommand, JobIdArgs, JobListArgs, JobStopArgs, TargetArgs};
use crate::context::Context;
use crate::error::Error;
use crate::job::Look;
use crate::render::table::{self, Column, left, right};
use crate::rollout::run::Submission;
use crate::target::resolve::{DEFAULT_RERUN, job_nodes, parse_outcomes};

/// Runs `kick job ...`.
pub async fn run(ctx: &mut Context, cmd: JobCommand) -> Result<u8, Error> {
    match cmd {
        JobCommand::Show(a) => look(ctx, a, Look::Show).await,
        JobCommand::Watch(a) => look(ctx, a, Look::Reattach).await,
        JobCommand::List(a) => list(ctx, a).await,
        JobCommand::Stop(a) => stop(ctx, a).await,
        JobCommand::Rerun(a) => {
            check_id(&a.id)?;
            rerun(ctx, *a).await
        }
    }
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Usage(format!(
            "`{id}` is not a job id; job ids are numbers, see `kick job list`"
        )));
    }
    Ok(())
}

/// `kick job show` and `kick job watch`.
async fn look(ctx: &mut Context, a: JobIdArgs, look: Look) -> Result<u8, Error> {
    check_id(&a.id)?;
    let f = &a.follow;
    let (client, _) = super::connect(&f.conn, None, ctx.streams.err.as_mut())?;
    let io = ctx.take_streams();
    crate::job::watch(ctx, &client, &a.id, &f.output, &f.reports, io, look).await
}

async fn list(ctx: &mut Context, a: JobListArgs) -> Result<u8, Error> {
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    let q = JobsQuery {
        limit: Some(a.limit),
        offset: Some(0),
        order_by: Some("timestamp".into()),
        order: Some("desc".into()),
        job_type: a.job_type.map(|t| {
            match t {
                crate::cli::JobType::Task => "task",
                crate::cli::JobType::Deploy => "deploy",
            }
            .to_owned()
        }),
    };
    let jobs = client.jobs(&q).await?;
    let mut io = ctx.take_streams();
    match a.output.format {
        Format::Json => super::write_json_line(&mut io.out, &jobs.items)?,
        Format::Jsonl => super::write_json_lines(&mut io.out, &jobs.items)?,
        Format::Human => {
            if jobs.items.is_empty() {
                writeln!(io.err, "No jobs.")?;
                return Ok(0);
            }
            let rows = jobs.items.iter().map(job_row).collect();
            io.out
                .write_all(table::render(&JOB_COLUMNS, rows).as_bytes())?;
        }
    }
    Ok(0)
}

const JOB_COLUMNS: [Column; 10] = [
    left("ID"),
    left("STATE"),
    left("TYPE"),
    left("TASK/ENVIRONMENT"),
    right("NODES"),
    left("OUTCOME"),
    right("DURATION"),
    left("OWNER"),
    left("STARTED"),
    left("DESCRIPTION"),
];

/// One job of `kick job list`.
fn job_row(j: &orchestrator_types::Job) -> Vec<String> {
    let what = j
        .task()
        .map(str::to_owned)
        .or_else(|| j.environment_name().map(str::to_owned))
        .unwrap_or_default();
    let desc = j
        .options
        .get("description")
        .and_then(|d| d.as_str())
        .or(j.description.as_deref())
        .unwrap_or("");
    let info = crate::watch::JobInfo::from_job(j);
    vec![
        j.name.clone(),
        j.state.as_str().to_owned(),
        j.job_type.clone(),
        what,
        j.node_count.to_string(),
        outcome(j),
        info.duration
            .map_or_else(|| "-".to_owned(), crate::time::human),
        j.owner.login.clone(),
        j.started_timestamp
            .as_deref()
            .or(j.timestamp.as_deref())
            .unwrap_or("-")
            .to_owned(),
        strip_marker(desc).to_owned(),
    ]
}

/// How the nodes of an ended job ended, from its node states: `3 ok`,
/// `2 ok, 1 failed`; `-` while it runs.
fn outcome(j: &orchestrator_types::Job) -> String {
    if !j.state.is_terminal() {
        return "-".to_owned();
    }
    let Some(states) = &j.node_states else {
        return "-".to_owned();
    };
    let parts: Vec<String> = states
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| match s {
            NodeState::Finished => format!("{n} ok"),
            other => format!("{n} {}", other.as_str()),
        })
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

async fn stop(ctx: &mut Context, a: JobStopArgs) -> Result<u8, Error> {
    check_id(&a.id)?;
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    let resp = client.stop(&a.id, a.force).await?;
    let mut io = ctx.take_streams();
    match a.output.format {
        Format::Json | Format::Jsonl => {
            writeln!(io.out, "{}", json!({"job": resp.job, "force": a.force}))?
        }
        Format::Human => {
            let counts: Vec<String> = resp
                .job
                .nodes
                .iter()
                .map(|(state, n)| format!("{n} {state}"))
                .collect();
            let how = if a.force {
                "force-stop requested: runs in progress are ended"
            } else {
                "stop requested: no new nodes start, running ones finish"
            };
            writeln!(io.out, "Job {}: {how}.", resp.job.name)?;
            if !counts.is_empty() {
                writeln!(io.out, "Nodes: {}", counts.join(", "))?;
            }
        }
    }
    Ok(0)
}

/// Runs `kick job rerun`: the job's task (or deploy) with its parameters, on its nodes that
/// ended as `--only` says.
pub async fn rerun(ctx: &mut Context, a: JobRerunArgs) -> Result<u8, Error> {
    let outcomes = match &a.only {
        Some(o) => parse_outcomes(o)?,
        None => DEFAULT_RERUN.to_vec(),
    };
    let (client, settings) = super::connect(
        &a.run.follow.conn,
        Some(&a.run.env),
        ctx.streams.err.as_mut(),
    )?;
    let job = client.job(&a.id).await?;
    let nodes = job_nodes(&client, &a.id, &outcomes).await?;
    if nodes.is_empty() {
        let which: Vec<&str> = outcomes.iter().map(|o| o.as_str()).collect();
        writeln!(
            ctx.streams.err,
            "No node of job {} ended {}; nothing to rerun.",
            a.id,
            which.join(" or ")
        )?;
        return Ok(0);
    }
    let opt = |k: &str| job.options.get(k).filter(|v| !v.is_null());
    let environment = opt("environment")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| job.environment_name().map(str::to_owned));
    let description = a
        .run
        .description
        .clone()
        .or_else(|| Some(format!("kick job rerun {}", a.id)));
    if let Some(task) = job.task() {
        let params = opt("params")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let req = TaskRequest {
            environment: a.run.env.environment.clone().or(environment),
            scope: Scope::default(),
            task: task.to_owned(),
            params,
            description,
            noop: opt("noop").and_then(Value::as_bool).filter(|n| *n),
            timeout: a
                .run
                .timeout
                .or_else(|| opt("timeout").and_then(Value::as_u64)),
            userdata: None,
        };
        let target = TargetArgs {
            nodes: Some(nodes.join(",")),
            ..TargetArgs::default()
        };
        let sub = Submission {
            request: req,
            target: &target,
            rollout: &a.rollout,
            run: &a.run,
            command: "rerun",
        };
        return super::start_connected(ctx, &client, &settings, sub).await;
    }
    if a.rollout.batch.is_some() || a.rollout.canary.is_some() {
        return Err(Error::Usage(format!(
            "job {} is a deploy job; kick rolls out tasks in waves. Rerun it without --batch/--canary, or run `kick agent --nodes-from {} --batch ...`",
            a.id, a.id
        )));
    }
    let req = DeployRequest {
        environment: environment.or_else(|| Some("production".into())),
        scope: Scope::nodes(nodes),
        noop: opt("noop").and_then(Value::as_bool).filter(|n| *n),
        no_noop: opt("no_noop").and_then(Value::as_bool).filter(|n| *n),
        description,
        timeout: a.run.timeout,
        ..DeployRequest::default()
    };
    let started = client.deploy(req).await?;
    crate::job::follow_started(ctx, &client, started, &a.run).await
}
