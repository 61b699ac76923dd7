//! Turning a job's progress and results into output: [`human`] lines and a
//! summary, one [`json`] document, or [`json`] lines.

pub mod drift;
pub mod human;
pub mod json;
pub mod notice;
pub mod style;
pub mod table;

use crate::Streams;
use crate::cli::{Format, OutputArgs, ShowOutput};
use crate::outcome::Outcome;
use crate::watch::{ResultMode, WatchEvent};

/// Receives what the watcher learns, in order, and renders it.
pub trait Reporter {
    /// Renders one event. [`WatchEvent::Progress`] should not fail.
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()>;
}

impl<R: Reporter + ?Sized> Reporter for Box<R> {
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()> {
        (**self).report(event)
    }
}

/// Which outcomes' outputs are printed at the end in human format: by
/// default those of failed and changed nodes, and every result of a
/// generic task.
pub fn show_output_selects(show: &[ShowOutput], o: Outcome, generic: bool) -> bool {
    let defaulted = if generic {
        &[ShowOutput::All][..]
    } else {
        &[ShowOutput::Failed, ShowOutput::Changed][..]
    };
    let show = if show.is_empty() { defaulted } else { show };
    show.iter().any(|s| match s {
        ShowOutput::All => true,
        ShowOutput::None => false,
        ShowOutput::Changed => o == Outcome::Changed,
        ShowOutput::Failed => o.is_bad(),
    })
}

/// The reporter for `--format`.
pub fn reporter(output: &OutputArgs, streams: Streams) -> Box<dyn Reporter + Send> {
    match output.format {
        Format::Human => {
            let color = streams.color(output.color);
            Box::new(human::Human::new(streams, color, output))
        }
        Format::Json => Box::new(json::Json::new(streams, false, output.quiet)),
        Format::Jsonl => Box::new(json::Json::new(streams, true, output.quiet)),
    }
}

/// How the results are read for `--format` (and `--show-output`).
pub fn result_mode(output: &OutputArgs) -> ResultMode {
    match output.format {
        Format::Human => {
            ResultMode::parsed(|o, generic| show_output_selects(&output.show_output, o, generic))
        }
        Format::Json | Format::Jsonl => ResultMode::raw(),
    }
}
