//! `kick`: trigger Puppet agent runs and tasks through the Puppet Enterprise
//! Orchestrator API, watch them live and collect the results.
//!
//! The binary is a thin shell around [`run`]; everything here is callable
//! from tests, with the output streams, Ctrl-C presses and polling knobs
//! injected through [`Context`].
//!
//! # Layout
//! In layers: each module imports only from the layers below it, and
//! [`cli`] (arguments only) imports nothing of kick's.
//! - [`cli`]: the clap definition (also the source of the man page and the
//!   completions).
//! - [`commands`]: one module per subcommand; they connect, then hand over.
//! - [`rollout`]: waves, canary and failure budget over several jobs, each
//!   run as [`job`] runs one.
//! - [`job`]: one job's whole path: target resolved, submitted once,
//!   followed, reported. A plain `kick agent` goes no other way.
//! - [`context`], [`target`], [`params`]: what a run works with, TARGET
//!   flags (and the nodes they come to), task parameters.
//! - [`ci`]: JUnit XML and Markdown reports for CI systems.
//! - [`render`]: the reporters (human, JSON and JSON lines) that put
//!   watch events in words, and the listings' tables.
//! - [`watch`]: following jobs ([`watch::Follower`], one job at a time,
//!   several in turn) through their events and collecting results; what it
//!   learns is a [`watch::WatchEvent`], handed to a [`watch::Reporter`].
//! - [`outcome`], [`summary`], [`drift`], [`api`]: what each node amounted
//!   to, the exit code, the same change grouped across nodes, the
//!   orchestrator calls the watcher makes (a trait).
//! - [`error`], [`input`], [`time`]: kick's errors, `@FILE` and `-`
//!   arguments, timestamps.

pub mod api;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod context;
pub mod drift;
pub mod error;
pub mod input;
pub mod job;
pub mod outcome;
pub mod params;
pub mod render;
pub mod rollout;
pub mod summary;
pub mod target;
pub mod time;
pub mod watch;

use std::io::IsTerminal;

pub use cli::Cli;
pub use context::Context;
pub use error::Error;
pub use render::Streams;
pub use watch::{Interrupts, WatchConfig};

use cli::Command;

/// Runs one kick command; returns the exit code.
pub async fn run(cli: Cli, ctx: &mut Context) -> Result<u8, Error> {
    match cli.command {
        Command::Agent(a) => commands::agent::run(ctx, a).await,
        Command::Task(cli::TaskCommand::Run(a)) => commands::task::run(ctx, a).await,
        Command::Deploy(a) => commands::deploy::run(ctx, a).await,
        Command::Job(c) => commands::job::run(ctx, c).await,
        Command::Schedule(c) => commands::schedule::run(ctx, c).await,
        Command::Inventory(a) => commands::inventory::run(ctx, a).await,
        Command::Rollout(c) => commands::rollout::run(ctx, c).await,
        Command::Tasks(c) => commands::tasks::run(ctx, c).await,
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "kick", &mut ctx.streams.out);
            Ok(0)
        }
        Command::Man(a) => commands::man::run(ctx, a),
    }
}

/// The `-v` count of whichever subcommand was given.
pub fn verbosity(cli: &Cli) -> u8 {
    match &cli.command {
        Command::Agent(a) => a.job.run.follow.output.verbose,
        Command::Task(cli::TaskCommand::Run(a)) => a.job.run.follow.output.verbose,
        Command::Deploy(a) => a.run.follow.output.verbose,
        Command::Job(cli::JobCommand::Show(a) | cli::JobCommand::Watch(a)) => {
            a.follow.output.verbose
        }
        Command::Job(cli::JobCommand::List(a)) => a.output.verbose,
        Command::Job(cli::JobCommand::Stop(a)) => a.output.verbose,
        Command::Job(cli::JobCommand::Rerun(a)) => a.run.follow.output.verbose,
        Command::Rollout(cli::RolloutCommand::List(a)) => a.output.verbose,
        Command::Rollout(cli::RolloutCommand::Show(a) | cli::RolloutCommand::Resume(a)) => {
            a.output.verbose
        }
        Command::Schedule(c) => c.output().verbose,
        Command::Inventory(a) => a
            .command
            .as_ref()
            .map_or(a.output.verbose, |c| c.output().verbose),
        Command::Tasks(cli::TasksCommand::List(a)) => a.output.verbose,
        Command::Tasks(cli::TasksCommand::Show(a)) => a.tasks.output.verbose,
        Command::Completions { .. } | Command::Man(_) => 0,
    }
}

/// Sends `tracing` to stderr: warnings by default, `-v` debug for kick and
/// the client, `-vv` everything; `RUST_LOG` wins when set.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,kick=debug,orchestrator_client=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: piped logs stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(|| render::human::LogWriter)
        .with_target(false)
        .try_init();
}
