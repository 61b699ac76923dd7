//! [`Context`]: what a run of kick works with besides its arguments, handed
//! from the command down to the watcher.

use std::path::PathBuf;

use crate::render::Streams;
use crate::watch::{Interrupts, WatchConfig};

/// What a run of kick works with besides its arguments.
#[derive(Debug)]
pub struct Context {
    /// Where output goes.
    pub streams: Streams,
    /// Ctrl-C presses.
    pub interrupts: Interrupts,
    /// Polling knobs.
    pub watch: WatchConfig,
    /// Where rollout state files go; `None`: `$XDG_STATE_HOME/kick/rollouts`.
    pub state_dir: Option<PathBuf>,
}

impl Context {
    /// The given streams and interrupts, and the default polling knobs
    /// (`--give-up`, from `KICK_WATCH_GIVE_UP` too, is applied by the
    /// command).
    pub fn new(streams: Streams, interrupts: Interrupts) -> Self {
        Self {
            streams,
            interrupts,
            watch: WatchConfig::default(),
            state_dir: None,
        }
    }

    /// Hands the streams to a reporter (leaving sinks behind).
    pub fn take_streams(&mut self) -> Streams {
        std::mem::replace(&mut self.streams, Streams::null())
    }
}
