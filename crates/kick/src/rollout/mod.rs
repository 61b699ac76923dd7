//! Fleet rollouts: the target cut into waves, each its own orchestrator job, with a canary
//! and a failure budget over the whole rollout, recorded in a state file so that
//! `kick rollout resume` continues where it stopped without submitting a wave twice.
//!
//! - [`plan`]: flags → waves and budget (pure).
//! - [`state`]: the state file and rollout ids.

pub mod plan;
pub mod state;

pub use plan::{Amount, Plan, PlannedWave, Spec};
pub use state::{RolloutState, RolloutStatus, Store, WaveRecord, WaveState};
