//! One module per subcommand, plus what the job-starting ones share.

pub mod agent;
pub mod connections;
pub mod deploy;
pub mod in_process;
pub mod inventory;
pub mod job;
pub mod man;
pub mod rollout;
pub mod schedule;
pub mod task;
pub mod tasks;

use std::io::Write;

use orchestrator_client::{Client, Overrides, Settings};
use orchestrator_types::TaskRequest;
use serde_json::{Map, Value};

use crate::cli::{ConnArgs, EnvArgs, TaskJobArgs};
use crate::context::Context;
use crate::error::Error;
use crate::rollout::run::Submission;

pub use crate::render::{write_json_line, write_json_lines};

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

/// The end `kick agent` and `kick task run` share: the `--userdata` flags and the connection,
/// then the request `build` makes of them, started as [`start_connected`] starts it.
pub async fn start(
    ctx: &mut Context,
    job: &TaskJobArgs,
    command: &str,
    build: impl FnOnce(Option<Map<String, Value>>, &Settings) -> TaskRequest,
) -> Result<u8, Error> {
    let run = &job.run;
    let userdata = crate::params::userdata(&run.userdata)?;
    let (client, settings) = connect(&run.follow.conn, Some(&run.env), ctx.streams.err.as_mut())?;
    let sub = Submission {
        request: build(userdata, &settings),
        target: &job.target,
        rollout: &job.rollout,
        run,
        command,
    };
    start_connected(ctx, &client, &settings, sub).await
}

/// A task request from the point where it is built: one job on its own path
/// ([`crate::job::run`]), or, with rollout or pre-flight flags, a rollout
/// ([`crate::rollout::run::run`]).
pub async fn start_connected(
    ctx: &mut Context,
    client: &Client,
    settings: &Settings,
    sub: Submission<'_>,
) -> Result<u8, Error> {
    if crate::rollout::run::wanted(sub.rollout)? {
        return crate::rollout::run::run(ctx, client, settings, sub).await;
    }
    // `--nodes-from rollout:ID` reads the rollout's state file only then.
    let state_dir = ctx.state_dir.clone();
    let rollout_jobs =
        move |id: &str| crate::rollout::Store::in_dir(state_dir.as_deref())?.jobs(id);
    crate::job::run(
        ctx,
        client,
        settings,
        sub.request,
        sub.target,
        sub.run,
        &rollout_jobs,
    )
    .await
}
