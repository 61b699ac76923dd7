//! One job, from its request to its exit code: the target resolved, the job
//! submitted once, followed to its end and reported. This is the whole path
//! of a plain `kick agent` or `kick task run`; the rollout module is a layer
//! above it that only the rollout and pre-flight flags enter.

use std::io::Write;

use orchestrator_client::{Client, RetryPolicy, Settings};
use orchestrator_types::{JobRef, TaskRequest};
use serde_json::json;

use crate::ci;
use crate::cli::{Format, OutputArgs, ReportArgs, RunArgs, TargetArgs};
use crate::context::Context;
use crate::error::Error;
use crate::render::{self, Streams};
use crate::target::resolve::{self, RolloutJobs};
use crate::watch::Follower;

/// Runs `req` as one job on `target`: the target resolved (a `--query`
/// through PuppetDB when one is configured, `--nodes-from` from the jobs'
/// records), the job submitted (the client sends it at most once), then
/// followed and reported as `run` asks.
pub async fn run(
    ctx: &mut Context,
    client: &Client,
    settings: &Settings,
    mut req: TaskRequest,
    target: &TargetArgs,
    run: &RunArgs,
    rollout_jobs: RolloutJobs<'_>,
) -> Result<u8, Error> {
    let puppetdb = resolve::puppetdb(
        target.query.is_some(),
        settings,
        run.puppetdb_url.as_deref(),
        ctx.streams.err.as_mut(),
    )?;
    let resolved = resolve::resolve(target, client, puppetdb.as_ref(), rollout_jobs, false).await?;
    req.scope = resolved.scope();
    submit(ctx, client, req, run).await
}

/// Submits `req` as it is and follows the job it becomes.
pub async fn submit(
    ctx: &mut Context,
    client: &Client,
    req: TaskRequest,
    run: &RunArgs,
) -> Result<u8, Error> {
    let job = client.run_task(req).await?;
    follow_started(ctx, client, job, run).await
}

/// After a job was accepted: print its id and the reattach hint, then
/// either return (`--no-wait`) or follow it to the end.
pub async fn follow_started(
    ctx: &mut Context,
    client: &Client,
    job: JobRef,
    run: &RunArgs,
) -> Result<u8, Error> {
    let id = job.name.clone();
    let streams = ctx.take_streams();
    let mut io = streams;
    if run.no_wait {
        match run.follow.output.format {
            Format::Human => {
                writeln!(io.out, "{id}")?;
                if !run.follow.output.quiet {
                    writeln!(
                        io.err,
                        "Job {id} started; follow it with `kick job watch {id}`."
                    )?;
                }
            }
            Format::Json => writeln!(io.out, "{}", json!({"job": {"name": id, "id": job.id}}))?,
            Format::Jsonl => writeln!(
                io.out,
                "{}",
                json!({"type": "job", "job": {"name": id, "id": job.id}})
            )?,
        }
        return Ok(0);
    }
    if !run.follow.output.quiet {
        writeln!(
            io.err,
            "Started job {id}; if kick is interrupted, reattach with `kick job watch {id}`."
        )?;
    }
    watch(
        ctx,
        client,
        &id,
        &run.follow.output,
        &run.follow.reports,
        io,
        Look::Follow,
    )
    .await
}

/// Whether to follow a job or show it as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Follow a job kick just started to its end; the orchestrator may not
    /// list it at once, so a 404 is retried.
    Follow,
    /// Follow a job whose id the user typed (`kick job watch`).
    Reattach,
    /// Report a job whose id the user typed now (`kick job show`).
    Show,
}

/// Follows (or shows) a job with the reporter `output` asks for, then
/// writes the CI reports `reports` asks for (or `$GITHUB_STEP_SUMMARY`).
pub async fn watch(
    ctx: &mut Context,
    client: &Client,
    id: &str,
    output: &OutputArgs,
    reports: &ReportArgs,
    io: Streams,
    look: Look,
) -> Result<u8, Error> {
    // The follower retries its calls itself.
    let client = client.with_retry(RetryPolicy::none());
    if look != Look::Follow {
        // An id the user typed that names no job is final: say so at once
        // rather than retrying for a job that will never appear.
        match client.job(id).await {
            Err(e) if is_unknown_job(&e) => {
                return Err(Error::NoSuchJob { job: id.to_owned() });
            }
            // Anything else is the follower's to retry or report.
            _ => {}
        }
    }
    if let Some(secs) = output.give_up {
        ctx.watch.give_up = std::time::Duration::from_secs_f64(secs);
    }
    let targets = ci::Targets::from_flags(reports.junit.clone(), reports.summary_md.clone());
    let mut rep = ci::Recorder::new(render::reporter(output, io), targets);
    let mut follower = Follower::new(
        &client,
        &mut rep,
        &mut ctx.interrupts,
        &ctx.watch,
        render::result_mode(output),
    );
    let outcome = match look {
        Look::Follow | Look::Reattach => follower.follow(id).await?,
        Look::Show => follower.show(id).await?,
    };
    rep.write_reports()?;
    Ok(outcome.exit_code)
}

fn is_unknown_job(e: &orchestrator_client::Error) -> bool {
    match e {
        orchestrator_client::Error::Api { status, error, .. } => {
            *status == 404 || error.kind == orchestrator_types::error::kind::UNKNOWN_JOB
        }
        _ => false,
    }
}
