//! Kick's end-to-end suite: real puppetserver, real `puppet agent`, the built static psick task
//! binary, the Kick orchestrator and the kick CLI.
//!
//! Real-stack tests need `KICK_PUPPET_STACK` (see `kick_e2e::Stack::from_env`); `make test`
//! starts the stack and sets it, with `KICK_REQUIRE_STACK=1` so that nothing is skipped. The SSH
//! fleet's tests need `KICK_FLEET` (see `kick_e2e::Fleet::from_env`), which `make test` sets too.

mod aarch64;
mod companions;
mod dist;
mod drift;
mod fleet;
mod kick;
mod kick_cli;
mod layouts;
mod lock_paths;
mod module;
mod orchestrator;
mod packages;
mod pxp_module;
mod rollout;
mod setup;
mod ssh_nodes;
mod stops;
mod task;
