//! Runs the built `psick-task` binary against fake puppet executables
//! (shell scripts in a temp dir) for every path of the three tasks.

mod agent;
mod entry;
mod harness;
mod input;
mod install;
mod layouts;
mod limits;
mod locks;
mod module;
mod packages;
mod report;
mod snapshots;
mod tasks;
