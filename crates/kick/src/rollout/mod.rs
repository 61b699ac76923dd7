//! Fleet rollouts: the target cut into waves, each its own orchestrator job, with a canary
//! and a failure budget over the whole rollout, recorded in a state file so that
//! `kick rollout resume` continues where it stopped without submitting a wave twice.
//!
//! - [`plan`]: flags → waves and budget (pure).
//! - [`state`]: the state file and rollout ids.
//! - [`resolve`]: the target as certnames (PuppetDB, a job's records).
//! - [`run`]: submitting and following the waves; [`report`]: their output.
//! - [`preflight`]: `--dry-run`; [`commands`]: `kick rollout` and `kick job rerun`.

pub mod args;
pub mod commands;
pub mod plan;
pub mod preflight;
pub mod report;
pub mod resolve;
pub mod run;
pub mod state;

pub use args::{JobRerunArgs, RolloutArgs, RolloutCommand};
pub use plan::{Amount, Plan, PlannedWave, Spec};
pub use state::{RolloutState, RolloutStatus, Store, WaveRecord, WaveState};
