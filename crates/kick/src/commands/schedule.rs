//! `kick schedule add|list|show|remove|enable|disable`, and `kick agent
//! --at TIME [--every DURATION]`, its short form: jobs the orchestrator
//! starts itself when due (`/scheduled_jobs/environment_jobs`).
//!
//! A scheduled job holds the very task request `kick agent` or `kick task
//! run` would send (built by them), without its `environment`, which the
//! scheduled job carries.

mod show;
mod when;

use std::io::Write;
use std::time::SystemTime;

use orchestrator_client::Client;
use orchestrator_types::{ScheduleRequest, ScheduledJob, Scope, TaskRequest};
use serde_json::{Value, json};

use crate::cli::schedule::{AddCommand, AddTaskArgs, IdArgs, ListArgs, ScheduleCommand};
use crate::cli::{AgentArgs, Format, OutputArgs, TaskJobArgs};
use crate::context::Context;
use crate::error::Error;

/// The environment PE reads tasks from when none is given.
const DEFAULT_ENVIRONMENT: &str = "production";

/// Runs `kick schedule ...`.
pub async fn run(ctx: &mut Context, cmd: ScheduleCommand) -> Result<u8, Error> {
    match cmd {
        ScheduleCommand::Add(AddCommand::Agent(a)) => agent(ctx, a).await,
        ScheduleCommand::Add(AddCommand::Task(a)) => task(ctx, a).await,
        ScheduleCommand::List(a) => list(ctx, a).await,
        ScheduleCommand::Show(a) => show(ctx, a).await,
        ScheduleCommand::Remove(a) => remove(ctx, a).await,
        ScheduleCommand::Enable(a) => set_enabled(ctx, a, true).await,
        ScheduleCommand::Disable(a) => set_enabled(ctx, a, false).await,
    }
}

/// Schedules what `kick agent` with these flags would run now.
pub async fn agent(ctx: &mut Context, a: AgentArgs) -> Result<u8, Error> {
    let scope = one_job(&a.job)?;
    let params = super::agent::params(&a)?;
    let userdata = crate::params::userdata(&a.job.run.userdata)?;
    let schedule = when::schedule(&a.when, SystemTime::now())?;
    let (client, settings) = super::connect(
        &a.job.run.follow.conn,
        Some(&a.job.run.env),
        ctx.streams.err.as_mut(),
    )?;
    let req = TaskRequest {
        scope,
        ..super::agent::request(&a, params, userdata, &settings)
    };
    add(ctx, &client, req, schedule, &a.job.run.follow.output).await
}

async fn task(ctx: &mut Context, a: AddTaskArgs) -> Result<u8, Error> {
    let t = &a.task;
    let params = crate::params::parse(&t.params, t.params_json.as_deref())?;
    let scope = one_job(&t.job)?;
    let userdata = crate::params::userdata(&t.job.run.userdata)?;
    let schedule = when::schedule(&a.when, SystemTime::now())?;
    let (client, settings) = super::connect(
        &t.job.run.follow.conn,
        Some(&t.job.run.env),
        ctx.streams.err.as_mut(),
    )?;
    let req = TaskRequest {
        scope,
        ..super::task::request(t, params, userdata, &settings)
    };
    add(ctx, &client, req, schedule, &t.job.run.follow.output).await
}

/// The scope of the one job a schedule starts each time: its targets are
/// given as the orchestrator resolves them when the job runs, and the
/// rollout flags, which kick carries out itself, cannot be scheduled.
fn one_job(job: &TaskJobArgs) -> Result<Scope, Error> {
    let (target, ra) = (&job.target, &job.rollout);
    if target.nodes_from.is_some() {
        return Err(Error::Usage(
            "--nodes-from cannot be scheduled (it names nodes of a job that has run); give --nodes, --query or --node-group".into(),
        ));
    }
    let rollout = ra.batch.is_some()
        || ra.canary.is_some()
        || ra.max_failures.is_some()
        || ra.batch_pause.is_some()
        || ra.shuffle
        || ra.retry.is_some()
        || ra.retry_delay.is_some()
        || ra.dry_run
        || ra.skip_disconnected;
    if rollout {
        return Err(Error::Usage(
            "a scheduled job is one job: --batch, --canary, --max-failures, --batch-pause, --shuffle, --retry, --dry-run and --skip-disconnected cannot be scheduled".into(),
        ));
    }
    crate::target::scope(target)
}

async fn add(
    ctx: &mut Context,
    client: &Client,
    req: TaskRequest,
    schedule: orchestrator_types::Schedule,
    output: &OutputArgs,
) -> Result<u8, Error> {
    let environment = req
        .environment
        .clone()
        .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
    let mut input = match serde_json::to_value(&req) {
        Ok(Value::Object(m)) => m,
        _ => return Err(Error::Usage("cannot encode the task request".into())),
    };
    input.remove("environment");
    let what = req.task.clone();
    let sreq = ScheduleRequest {
        job_type: Some("task".into()),
        input: Some(input),
        environment: Some(environment),
        schedule: Some(schedule.clone()),
        description: req.description.clone(),
        userdata: None,
        enabled: None,
    };
    let created = client.schedule_job(sreq).await?;
    let id = created.name.clone();
    let mut io = ctx.take_streams();
    match output.format {
        Format::Json | Format::Jsonl => super::write_json_line(
            &mut io.out,
            &json!({"scheduled_job": created, "schedule": schedule}),
        )?,
        Format::Human => {
            writeln!(io.out, "{id}")?;
            if !output.quiet {
                let every = match &schedule.interval {
                    Some(i) => format!(
                        "every {}",
                        humantime::format_duration(std::time::Duration::from_secs(i.value))
                    ),
                    None => "once".to_owned(),
                };
                writeln!(
                    io.err,
                    "Scheduled job {id}: {what}, first run {}, {every}.\nSee it with `kick schedule list`; remove it with `kick schedule remove {id}`.",
                    schedule.start_time
                )?;
            }
        }
    }
    Ok(0)
}

async fn list(ctx: &mut Context, a: ListArgs) -> Result<u8, Error> {
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    let jobs = client.scheduled_jobs().await?;
    let mut io = ctx.take_streams();
    match a.output.format {
        Format::Json => super::write_json_line(&mut io.out, &jobs)?,
        Format::Jsonl => super::write_json_lines(&mut io.out, &jobs)?,
        Format::Human if jobs.is_empty() => writeln!(
            io.err,
            "No scheduled jobs; add one with `kick schedule add` or `kick agent --at TIME`."
        )?,
        Format::Human => show::table(&mut io.out, &jobs)?,
    }
    Ok(0)
}

async fn show(ctx: &mut Context, a: IdArgs) -> Result<u8, Error> {
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    let job = client
        .scheduled_job(&a.id)
        .await
        .map_err(|e| unknown(e, &a.id))?;
    print_one(ctx, &job, &a.output)
}

async fn remove(ctx: &mut Context, a: IdArgs) -> Result<u8, Error> {
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    client
        .delete_scheduled_job(&a.id)
        .await
        .map_err(|e| unknown(e, &a.id))?;
    let mut io = ctx.take_streams();
    match a.output.format {
        Format::Json | Format::Jsonl => super::write_json_line(
            &mut io.out,
            &json!({"scheduled_job": {"name": a.id.trim()}, "removed": true}),
        )?,
        Format::Human => writeln!(
            io.out,
            "Scheduled job {} removed; the jobs it started are kept.",
            a.id.trim()
        )?,
    }
    Ok(0)
}

async fn set_enabled(ctx: &mut Context, a: IdArgs, enabled: bool) -> Result<u8, Error> {
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    let job = client
        .set_scheduled_job_enabled(&a.id, enabled)
        .await
        .map_err(|e| unknown(e, &a.id))?;
    if a.output.format != Format::Human {
        return print_one(ctx, &job, &a.output);
    }
    let mut io = ctx.take_streams();
    let state = if enabled {
        format!(
            "enabled; next run {}",
            job.next_run_time.as_deref().unwrap_or("none (it has run)")
        )
    } else {
        "disabled; it does not run until `kick schedule enable` is given".to_owned()
    };
    writeln!(io.out, "Scheduled job {} {state}.", job.name)?;
    Ok(0)
}

fn print_one(ctx: &mut Context, job: &ScheduledJob, output: &OutputArgs) -> Result<u8, Error> {
    let mut io = ctx.take_streams();
    match output.format {
        Format::Json | Format::Jsonl => super::write_json_line(&mut io.out, job)?,
        Format::Human => show::page(&mut io.out, job)?,
    }
    Ok(0)
}

/// A 404 for an id the user typed is "no such scheduled job".
fn unknown(e: orchestrator_client::Error, id: &str) -> Error {
    match e {
        orchestrator_client::Error::Api { status: 404, .. } => Error::NoSuchSchedule {
            id: id.trim().to_owned(),
        },
        e => e.into(),
    }
}
