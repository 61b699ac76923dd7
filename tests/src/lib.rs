//! Harness for Kick's end-to-end suite.
//!
//! It drives the real loopback Puppet stack brought up by `tests/scripts/puppet-stack-up.sh`
//! ([`Stack`]), simulates managed nodes that each have their own certname, confdir, vardir and
//! ssldir ([`SimNode`]), and runs the built static psick task binary against them ([`TaskRun`]).
//!
//! Tests that need the stack start with `let Some(stack) = Stack::from_env() else { return };`:
//! without `KICK_PUPPET_STACK` they print a skip note, unless `KICK_REQUIRE_STACK=1` (as in
//! `make test` and CI), where a missing stack fails the suite instead of silently passing.
//!
//! [`Fleet`] is the fleet of real SSH nodes (`tests/scripts/fleet.sh`): sshds in their own
//! namespaces on 127.0.1.N, each with its own filesystem and a bootstrapped puppet agent; tests
//! that need it start with `let Some(fleet) = Fleet::from_env() else { return };`.

mod apt_repo;
mod command;
mod fleet;
mod local_nodes;
mod node;
mod paths;
mod puppetdb;
mod pxp;
pub mod ssh_nodes;
mod stack;
mod task;

pub use apt_repo::AptRepo;
pub use command::run_ok;
pub use fleet::{
    ENV_FLEET, Fleet, FleetNode, HostKeyRotation, NodeLock, SshdStopped, cmdline, shell_quote,
};
pub use local_nodes::LocalNodes;
pub use node::{AgentRun, SimNode, process_alive};
pub use paths::{repo_modulepath, sha256_file, task_bin, task_entry, workspace_root};
pub use puppetdb::{ENV_PUPPETDB, PuppetDb};
pub use pxp::ModuleRun;
pub use stack::{ENV_REQUIRE_STACK, ENV_STACK, Stack};
pub use task::{RunningTask, TaskRun};
