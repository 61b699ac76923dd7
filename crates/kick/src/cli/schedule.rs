//! The clap definition of `kick schedule` and of the `--at`/`--every`
//! flags `kick agent` shares.

use clap::{Args, Subcommand};

use super::{AgentArgs, ConnArgs, OutputArgs, TaskRunArgs};

/// `--at TIME [--every DURATION]`: schedule instead of running now.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Schedule")]
pub struct When {
    /// Schedule the job instead of running it: its first run at TIME, in
    /// RFC 3339 (2026-12-01T22:00:00Z, 2026-12-01T23:00:00+01:00) or `now`.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Schedule the job to run again every DURATION (30m, 12h, 1day, 1week;
    /// whole seconds, at most a year); the first run is --at or now.
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
}

impl When {
    /// Whether the job is to be scheduled rather than run now.
    pub fn is_set(&self) -> bool {
        self.at.is_some() || self.every.is_some()
    }
}

/// `kick schedule ...`.
// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Schedule an agent run or a task (once, or repeatedly with --every).
    #[command(subcommand)]
    Add(AddCommand),
    /// List the scheduled jobs, next to run first.
    List(ListArgs),
    /// Show one scheduled job.
    Show(IdArgs),
    /// Delete a scheduled job (the jobs it already started are kept).
    Remove(IdArgs),
    /// Let a disabled scheduled job run again when due.
    Enable(IdArgs),
    /// Keep a scheduled job from running until it is enabled again.
    Disable(IdArgs),
}

/// `kick schedule add ...`.
#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// Schedule `kick agent` (psick::puppet_agent): the same flags.
    Agent(AgentArgs),
    /// Schedule `kick task run`: the same arguments.
    Task(AddTaskArgs),
}

/// `kick schedule add task`.
#[derive(Debug, Args)]
pub struct AddTaskArgs {
    #[command(flatten)]
    pub task: TaskRunArgs,
    #[command(flatten)]
    pub when: When,
}

/// `kick schedule list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A scheduled job id plus connection and output flags.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Scheduled job id (as `kick schedule list` shows it).
    pub id: String,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ScheduleCommand {
    /// The output flags of whichever subcommand was given.
    pub fn output(&self) -> &OutputArgs {
        match self {
            Self::Add(AddCommand::Agent(a)) => &a.job.run.follow.output,
            Self::Add(AddCommand::Task(a)) => &a.task.job.run.follow.output,
            Self::List(a) => &a.output,
            Self::Show(a) | Self::Remove(a) | Self::Enable(a) | Self::Disable(a) => &a.output,
        }
    }
}
