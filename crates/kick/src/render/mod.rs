//! Turning a job's progress and results into output: [`human`] lines and a
//! summary, one [`json`] document, or [`json`] lines.

pub mod drift;
pub mod human;
pub mod json;
pub mod notice;
pub mod style;

use std::io::Write;

use crate::cli::{Format, OutputArgs, ShowOutput};
use crate::outcome::Outcome;
use crate::watch::{ResultMode, WatchEvent};

/// Receives what the watcher learns, in order, and renders it.
pub trait Reporter {
    /// Renders one event. [`WatchEvent::Progress`] should not fail.
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()>;
}

/// Where output goes, decided once at the edge.
pub struct Io {
    /// Results.
    pub out: Box<dyn Write + Send>,
    /// Progress, notices, hints.
    pub err: Box<dyn Write + Send>,
    /// Colour stdout.
    pub color: bool,
    /// stderr is a terminal (progress bar allowed).
    pub err_tty: bool,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("color", &self.color)
            .field("err_tty", &self.err_tty)
            .finish_non_exhaustive()
    }
}

/// Which outcomes' outputs are printed at the end in human format.
pub fn show_output_selects(show: &[ShowOutput], o: Outcome) -> bool {
    let defaulted = [ShowOutput::Failed, ShowOutput::Changed];
    let show = if show.is_empty() {
        &defaulted[..]
    } else {
        show
    };
    show.iter().any(|s| match s {
        ShowOutput::All => true,
        ShowOutput::None => false,
        ShowOutput::Changed => o == Outcome::Changed,
        ShowOutput::Failed => o.is_bad(),
    })
}

/// The reporter for `--format`.
pub fn reporter(output: &OutputArgs, io: Io) -> Box<dyn Reporter + Send> {
    match output.format {
        Format::Human => Box::new(human::Human::new(io, output)),
        Format::Json => Box::new(json::Json::new(io, false, output.quiet)),
        Format::Jsonl => Box::new(json::Json::new(io, true, output.quiet)),
    }
}

/// How the results are read for `--format` (and `--show-output`).
pub fn result_mode(output: &OutputArgs) -> ResultMode {
    match output.format {
        Format::Human => ResultMode::parsed(|o| show_output_selects(&output.show_output, o)),
        Format::Json | Format::Jsonl => ResultMode::raw(),
    }
}
