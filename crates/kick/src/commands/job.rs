//! `kick job show|watch|list|stop` (and `rerun`, in [`crate::rollout::commands`]).

use std::io::Write;

use orchestrator_client::{JobsQuery, strip_marker};
use orchestrator_types::NodeState;
use serde_json::json;

use crate::Context;
use crate::cli::{Format, JobCommand, JobIdArgs, JobListArgs, JobStopArgs};
use crate::error::Error;
use crate::render::table::{self, Column, left, right};

/// Runs `kick job ...`.
pub async fn run(ctx: &mut Context, cmd: JobCommand) -> Result<u8, Error> {
    match cmd {
        JobCommand::Show(a) => look(ctx, a, super::Look::Show).await,
        JobCommand::Watch(a) => look(ctx, a, super::Look::Reattach).await,
        JobCommand::List(a) => list(ctx, a).await,
        JobCommand::Stop(a) => stop(ctx, a).await,
        JobCommand::Rerun(a) => {
            check_id(&a.id)?;
            crate::rollout::commands::rerun(ctx, *a).await
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
async fn look(ctx: &mut Context, a: JobIdArgs, look: super::Look) -> Result<u8, Error> {
    check_id(&a.id)?;
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    let io = ctx.take_streams();
    super::watch_job(ctx, &client, &a.id, &a.output, &a.reports, io, look).await
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
