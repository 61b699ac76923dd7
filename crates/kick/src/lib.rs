//! `kick`: trigger Puppet agent runs and tasks through the Puppet Enterprise
//! Orchestrator API, watch them live and collect the results.
//!
//! The binary is a thin shell around [`run`]; everything here is callable
//! from tests, with the output streams, Ctrl-C presses and polling knobs
//! injected through [`Context`].
//!
//! # Layout
//! - [`cli`]: the clap definition (also the source of the man page and the
//!   completions).
//! - [`commands`]: one module per subcommand.
//! - [`watch`]: following jobs ([`watch::Follower`], one job at a time,
//!   several in turn) through their events and collecting results; what it
//!   learns is a [`watch::WatchEvent`].
//! - [`api`]: the orchestrator calls the watcher makes, as a trait.
//! - [`outcome`], [`summary`]: what each node amounted to, the exit code.
//! - [`drift`]: the same change grouped across nodes.
//! - [`ci`]: JUnit XML and Markdown reports for CI systems.
//! - [`render`]: the reporters (human, JSON and JSON lines) that put
//!   watch events in words, and the listings' tables.
//! - [`params`], [`target`]: task parameters and TARGET flags.
//! - [`rollout`]: waves, canary and failure budget over several jobs.

pub mod api;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod drift;
pub mod error;
pub mod outcome;
pub mod params;
pub mod render;
pub mod rollout;
pub mod summary;
pub mod target;
pub mod time;
pub mod watch;

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;

pub use cli::Cli;
pub use error::Error;
pub use watch::{Interrupts, WatchConfig};

use cli::{ColorWhen, Command};

/// Output streams and whether they are terminals.
pub struct Streams {
    /// stdout.
    pub out: Box<dyn Write + Send>,
    /// stderr.
    pub err: Box<dyn Write + Send>,
    /// stdout is a terminal.
    pub out_tty: bool,
    /// stderr is a terminal.
    pub err_tty: bool,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("out_tty", &self.out_tty)
            .field("err_tty", &self.err_tty)
            .finish_non_exhaustive()
    }
}

impl Streams {
    /// The process's stdout and stderr.
    pub fn stdio() -> Self {
        Self {
            out_tty: std::io::stdout().is_terminal(),
            err_tty: std::io::stderr().is_terminal(),
            // Buffered: serializing a large job makes many small writes.
            // Reporters flush after each line meant to be seen at once. A
            // copy of fd 1 as a plain file, because std's stdout is
            // line-buffered and would search every 64 KiB block for its last
            // newline (a tenth of the CPU of `--format json` on big jobs);
            // nothing in kick writes to stdout any other way.
            out: match std::io::stdout().as_fd().try_clone_to_owned() {
                Ok(fd) => Box::new(std::io::BufWriter::with_capacity(
                    64 * 1024,
                    std::fs::File::from(fd),
                )),
                Err(_) => Box::new(std::io::BufWriter::with_capacity(
                    64 * 1024,
                    std::io::stdout(),
                )),
            },
            err: Box::new(std::io::stderr()),
        }
    }

    /// Streams that discard everything.
    pub fn null() -> Self {
        Self {
            out: Box::new(std::io::sink()),
            err: Box::new(std::io::sink()),
            out_tty: false,
            err_tty: false,
        }
    }

    /// Whether to colour stdout: `always`, `never`, or in `auto` as
    /// anstream decides for a terminal stdout (`NO_COLOR`, `CLICOLOR`,
    /// `CLICOLOR_FORCE`, `TERM`).
    pub fn color(&self, when: ColorWhen) -> bool {
        match when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                self.out_tty
                    && anstream::AutoStream::choice(&std::io::stdout())
                        != anstream::ColorChoice::Never
            }
        }
    }
}

/// What a run of kick works with besides its arguments.
#[derive(Debug)]
pub struct Context {
    /// Where output goes.
    pub streams: Streams,
    /// Ctrl-C presses.
    pub interrupts: Interrupts,
    /// Polling knobs.
    pub watch: WatchConfig,
    /// Where rollout state files go; `None`: `$XDG_STATE_HOME/kick/rollouts`.
    pub state_dir: Option<PathBuf>,
}

impl Context {
    /// The given streams and interrupts, and the default polling knobs
    /// (`--give-up`, from `KICK_WATCH_GIVE_UP` too, is applied by the
    /// command).
    pub fn new(streams: Streams, interrupts: Interrupts) -> Self {
        Self {
            streams,
            interrupts,
            watch: WatchConfig::default(),
            state_dir: None,
        }
    }

    /// Hands the streams to a reporter (leaving sinks behind).
    pub fn take_streams(&mut self) -> Streams {
        std::mem::replace(&mut self.streams, Streams::null())
    }
}

/// Runs one kick command; returns the exit code.
pub async fn run(cli: Cli, ctx: &mut Context) -> Result<u8, Error> {
    match cli.command {
        Command::Agent(a) => commands::agent::run(ctx, a).await,
        Command::Task(cli::TaskCommand::Run(a)) => commands::task::run(ctx, a).await,
        Command::Deploy(a) => commands::deploy::run(ctx, a).await,
        Command::Job(c) => commands::job::run(ctx, c).await,
        Command::Schedule(c) => commands::schedule::run(ctx, c).await,
        Command::Inventory(a) => commands::inventory::run(ctx, a).await,
        Command::Rollout(c) => rollout::commands::run(ctx, c).await,
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
        Command::Agent(a) => a.run.output.verbose,
        Command::Task(cli::TaskCommand::Run(a)) => a.run.output.verbose,
        Command::Deploy(a) => a.run.output.verbose,
        Command::Job(cli::JobCommand::Show(a) | cli::JobCommand::Watch(a)) => a.output.verbose,
        Command::Job(cli::JobCommand::List(a)) => a.output.verbose,
        Command::Job(cli::JobCommand::Stop(a)) => a.output.verbose,
        Command::Job(cli::JobCommand::Rerun(a)) => a.run.output.verbose,
        Command::Rollout(rollout::RolloutCommand::List(a)) => a.output.verbose,
        Command::Rollout(rollout::RolloutCommand::Show(a) | rollout::RolloutCommand::Resume(a)) => {
            a.output.verbose
        }
        Command::Schedule(c) => c.output().verbose,
        Command::Inventory(a) => a
            .command
            .as_ref()
            .map_or(a.output.verbose, |c| c.output().verbose),
        Command::Tasks(cli::TasksCommand::List(a)) => a.output.verbose,
        Command::Tasks(cli::TasksCommand::Show(a)) => a.output.verbose,
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

/// Reads a file named on the command line as `@FILE`.
pub(crate) fn read_arg_file(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: PathBuf::from(path),
        source,
    })
}

/// The most kick reads from standard input (`--nodes -`, `--params -`).
const STDIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads standard input for `flag` given as `-`.
pub(crate) fn read_stdin(flag: &str) -> Result<String, Error> {
    use std::io::Read;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Error::ReadStdin {
            flag: flag.to_owned(),
            reason: "it is a terminal; pipe the input in (e.g. `... | kick agent --nodes -`)"
                .into(),
        });
    }
    let mut text = String::new();
    let read = stdin.lock().take(STDIN_LIMIT + 1).read_to_string(&mut text);
    match read {
        Ok(n) if n as u64 > STDIN_LIMIT => Err(Error::ReadStdin {
            flag: flag.to_owned(),
            reason: format!(
                "it holds more than {} MiB; use a file",
                STDIN_LIMIT / 1024 / 1024
            ),
        }),
        Ok(_) => Ok(text),
        Err(e) => Err(Error::ReadStdin {
            flag: flag.to_owned(),
            reason: e.to_string(),
        }),
    }
}
