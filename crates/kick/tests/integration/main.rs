//! Integration tests of kick against the in-process orchestrator (and, for
//! faults, scripted servers).

mod harness;

mod agent;
mod agent_flags;
mod bench;
mod doc_examples;
mod docs;
mod drift;
mod faults;
mod interrupts;
mod inventory;
mod jobs;
mod output;
mod rollout;
mod scale;
mod schedules;
mod schema;
mod tasks;
