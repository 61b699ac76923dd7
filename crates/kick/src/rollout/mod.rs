//! Fleet rollouts: the target cut into waves, each its own orchestrator job, with a canary
//! and a failure budget over the whole rollout, recorded in a state file so that
//! `kick rollout resume` continues where it stopped without submitting a wave twice.
//!
//! - [`plan`]: flags → waves and budget (pure).
//! - [`state`]: the state file and rollout ids.
//! - [`run`]: following the waves and judging them; [`submit`]: sending each at most once;
//!   [`report`]: their output.
//! - [`preflight`]: what `--dry-run` shows.
//!
//! A plain job never comes here: it goes its own way ([`crate::job`]), which the waves use
//! too. The commands that read rollouts (`kick rollout`) are with the other commands.

pub mod plan;
pub mod preflight;
pub mod report;
pub mod run;
pub mod state;
pub mod submit;

pub use plan::{Amount, Plan, PlannedWave, Spec};
pub use state::{RolloutState, RolloutStatus, Store, WaveRecord, WaveState};
