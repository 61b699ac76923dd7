//! Wire types of the Puppet Enterprise Orchestrator API v1, shared by the
//! orchestrator, the client, the `kick` CLI and the node-side task.
//!
//! The shapes follow what real PE servers send (captures beat docs where they
//! disagree) and deserialise leniently: unknown fields are ignored, ids may be
//! strings or numbers, free-form objects (`details`, `result`, `options`) stay
//! [`serde_json::Value`], and unknown states or event types map to an
//! `Unknown` variant instead of failing a whole page.
//!
//! # Layout
//! - [`command`]: request and response bodies of `POST /command/*`.
//! - [`job`]: `GET /jobs` and `GET /jobs/:id`, job states.
//! - [`node`]: `GET /jobs/:id/nodes`, node states.
//! - [`event`]: `GET /jobs/:id/events`.
//! - [`inventory`], [`task`], [`report`]: the other read endpoints.
//! - [`connection`]: PE's Node Inventory API v1 (connection entries of
//!   agentless nodes).
//! - [`error`]: the `{kind, msg, details}` error body and the known kinds.
//! - [`psick`]: the psick tasks' results, error kinds and the typed
//!   `psick::puppet_agent` parameters ([`psick::params`]).
//! - [`psick_tasks`]: results of the pxp-agent module mode, system_update and
//!   puppet_install.
//! - [`plan`]: plan jobs; [`schedule`]: scheduled jobs; [`usage`]: node
//!   counts per day; [`task_target`]: task targets.
#![warn(missing_docs)]

/// A wire enum of states, written once for jobs, nodes and plan jobs: its
/// variants with their wire names, `as_str` and `Display` from the same
/// list, and the `Unknown` that a state this version does not know becomes.
macro_rules! states {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant, )*
            /// A state this version does not know.
            #[serde(other, rename = "unknown")]
            Unknown,
        }

        impl $name {
            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Unknown => "unknown",
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// The job states, in their order: all of [`job::JobState`], and the first of
/// [`node::NodeState`], which adds its own after them. A node goes through its job's states,
/// and both sort in this order (PE lists a job's node counts by state in it).
macro_rules! job_states {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($more:tt)* }
    ) => {
        states! {
            $(#[$meta])*
            pub enum $name {
                /// Created, not started yet.
                New = "new",
                /// About to start.
                Ready = "ready",
                /// Running.
                Running = "running",
                /// A stop was asked; what runs is finishing.
                Stopping = "stopping",
                /// Ended by a stop request, before or while running.
                Stopped = "stopped",
                /// Ran and succeeded (a job: every node did).
                Finished = "finished",
                /// Ran and failed (a job: at least one node failed or errored).
                Failed = "failed",
                $($more)*
            }
        }
    };
}

pub mod command;
pub mod connection;
pub mod error;
pub mod event;
pub mod inventory;
pub mod job;
pub mod lenient;
pub mod node;
pub mod plan;
pub mod psick;
pub mod psick_tasks;
pub mod report;
pub mod schedule;
pub mod task;
pub mod task_target;
pub mod usage;

pub use command::{
    DeployRequest, JobCreated, JobRef, Scope, StopRequest, StopResponse, TaskRequest,
};
pub use connection::{
    Connection, ConnectionCreated, ConnectionList, ConnectionsQuery, CreateConnection,
    DeleteConnection, Duplicates, INVENTORY_PREFIX,
};
pub use error::ApiError;
pub use event::{Event, EventDetails, EventList, EventType};
pub use inventory::{InventoryList, InventoryNode, InventoryRequest};
pub use job::{Job, JobList, JobState, Link, Pagination, StatusEntry};
pub use node::{JobNode, NextEvents, NodeList, NodeState};
pub use plan::{
    PlanCreated, PlanEvent, PlanEventList, PlanJob, PlanJobList, PlanState, PlanTaskRequest,
};
pub use report::{JobReport, ReportEntry};
pub use schedule::{Schedule, ScheduleRequest, ScheduledJob, ScheduledJobList};
pub use task::{TaskDetails, TaskFile, TaskList, TaskRef};
pub use task_target::{TaskTarget, TaskTargetList, TaskTargetRequest};
pub use usage::{Usage, UsageDay};

/// The path prefix every Orchestrator API v1 endpoint lives under.
pub const API_PREFIX: &str = "/orchestrator/v1";
