//! The rollout flags of `kick agent` and `kick task run`, and the `kick rollout` and
//! `kick job rerun` commands.

use clap::{Args, Subcommand};

use super::{ConnArgs, OutputArgs};

/// Waves, budget, retries and the pre-flight.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Rollout")]
pub struct RolloutArgs {
    /// Run in waves of N nodes, or P% of the target, each its own job.
    #[arg(long, value_name = "N|P%")]
    pub batch: Option<String>,
    /// A first wave of N nodes that must all succeed before any other starts.
    #[arg(long, value_name = "N")]
    pub canary: Option<u64>,
    /// Failures tolerated over the whole rollout; one more stops the running wave and
    /// starts no other (0: the first failure stops it).
    #[arg(long, value_name = "N|P%")]
    pub max_failures: Option<String>,
    /// Wait between waves, e.g. 30s or 2m.
    #[arg(long, value_name = "DURATION")]
    pub batch_pause: Option<String>,
    /// Mix the nodes before cutting waves (default: the order given; PQL answers by certname).
    #[arg(long)]
    pub shuffle: bool,
    /// Resubmit nodes that failed for a transient reason (agent locked, no connection to
    /// the Puppet server, not connected to the orchestrator), up to N times, each in a
    /// follow-up job; resource failures and catalog errors never are.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retry: Option<u32>,
    /// Wait before each retry [default: 10s].
    #[arg(long, value_name = "DURATION", requires = "retry")]
    pub retry_delay: Option<String>,
    /// Resolve the target, check which nodes are connected, print the plan and exit 0
    /// without starting anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave out nodes the orchestrator reports as not connected (and list them).
    #[arg(long)]
    pub skip_disconnected: bool,
}

/// `kick rollout ...`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// List the rollouts kept on this host, newest first.
    List(RolloutListArgs),
    /// Show a rollout's plan and what each wave became.
    Show(RolloutIdArgs),
    /// Continue a rollout: the waves not yet run (a wave already on the server is never
    /// submitted again).
    Resume(RolloutIdArgs),
}

/// `kick rollout list`.
#[derive(Debug, Args)]
pub struct RolloutListArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A rollout id plus connection and output flags.
#[derive(Debug, Args)]
pub struct RolloutIdArgs {
    /// The rollout id kick printed when it started the rollout.
    pub id: String,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `kick job rerun`.
#[derive(Debug, Args)]
pub struct JobRerunArgs {
    /// The job whose task (with the same parameters) runs again.
    pub id: String,
    /// Which of its nodes: outcomes failed, errored, skipped, stopped, changed, unchanged
    /// [default: failed,errored,skipped,stopped].
    #[arg(long, value_name = "OUTCOME,...")]
    pub only: Option<String>,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub run: super::RunArgs,
}
