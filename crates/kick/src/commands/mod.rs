//! One module per subcommand, plus what the job-starting ones share.

pub mod agent;
pub mod connections;
pub mod deploy;
pub mod in_process;
pub mod inventory;
pub mod job;
pub mod man;
pub mod schedule;
pub mod task;
pub mod tasks;

use std::io::Write;

use orchestrator_client::{Client, Overrides, RetryPolicy, Settings};
use orchestrator_types::JobRef;
use serde::Serialize;
use serde_json::json;

use crate::ci;
use crate::cli::{ConnArgs, EnvArgs, Format, OutputArgs, ReportArgs, RunArgs};
use crate::error::Error;
use crate::render;
use crate::watch::Follower;
use crate::{Context, Streams};

/// Loads the settings (orchestrator.conf files < flags, which clap also
/// reads from the `KICK_*` variables), builds the client and prints its
/// warnings. `environment` is the Puppet environment, for the commands
/// that take one.
///
/// Each request may take `--request-timeout` seconds (default 30). The
/// client retries its requests itself, except those of the watcher, which
/// get [`RetryPolicy::none`] and are retried by [`crate::watch`].
pub fn connect(
    conn: &ConnArgs,
    environment: Option<&EnvArgs>,
    err: &mut dyn Write,
) -> Result<(Client, Settings), Error> {
    if let Some(inventory) = conn
        .inventory
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
    {
        return in_process::connect(inventory, conn, environment, err);
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let user = home.map(|h| h.join(orchestrator_client::USER_CONFIG));
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
    let path = |p: &Option<std::path::PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
    let (mut settings, warnings) = Settings::load_from(
        Some(std::path::Path::new(orchestrator_client::GLOBAL_CONFIG)),
        user.as_deref(),
        // The KICK_* variables came through clap; only HOME is read here,
        // to expand `~` in the files.
        &|name| (name == "HOME").then(|| std::env::var(name).ok()).flatten(),
        Overrides {
            service_url: nonempty(&conn.service_url),
            cacert: path(&conn.cacert),
            token_file: path(&conn.token_file),
            environment: environment.and_then(|e| nonempty(&e.environment)),
            insecure: conn.insecure,
        },
    )?;
    if let Some(secs) = conn.request_timeout {
        settings.request_timeout = std::time::Duration::from_secs_f64(secs);
    }
    let (client, more) = Client::new(&settings)?;
    for w in warnings.iter().chain(&more) {
        writeln!(err, "warning: {w}")?;
    }
    Ok((client, settings))
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
        match run.output.format {
            Format::Human => {
                writeln!(io.out, "{id}")?;
                if !run.output.quiet {
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
    if !run.output.quiet {
        writeln!(
            io.err,
            "Started job {id}; if kick is interrupted, reattach with `kick job watch {id}`."
        )?;
    }
    watch_job(
        ctx,
        client,
        &id,
        &run.output,
        &run.reports,
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
pub async fn watch_job(
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

/// `value` as one line of JSON (`--format json`, and each item of `--format jsonl`).
pub fn write_json_line(out: &mut dyn Write, value: &impl Serialize) -> std::io::Result<()> {
    // The wire types always serialize; an empty line beats a panic should one ever not.
    writeln!(out, "{}", serde_json::to_string(value).unwrap_or_default())
}

/// A listing as `--format jsonl`: one line per item.
pub fn write_json_lines<T: Serialize>(out: &mut dyn Write, items: &[T]) -> std::io::Result<()> {
    items.iter().try_for_each(|i| write_json_line(out, i))
}
