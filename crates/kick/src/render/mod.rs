//! Turning a job's progress and results into output: [`human`] lines and a
//! summary, one [`json`] document, or [`json`] lines.

pub mod drift;
pub mod human;
pub mod json;
pub mod notice;
mod streams;
pub mod style;
pub mod table;

use crate::cli::{Format, OutputArgs, ShowOutput};
use crate::outcome::Outcome;
use crate::watch::{Reporter, ResultMode};
pub use streams::Streams;

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

/// `value` as one line of JSON (`--format json`, and each item of `--format jsonl`).
pub fn write_json_line(
    out: &mut dyn std::io::Write,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    // The wire types always serialize; an empty line beats a panic should one ever not.
    writeln!(out, "{}", serde_json::to_string(value).unwrap_or_default())
}

/// A listing as `--format jsonl`: one line per item.
pub fn write_json_lines<T: serde::Serialize>(
    out: &mut dyn std::io::Write,
    items: &[T],
) -> std::io::Result<()> {
    items.iter().try_for_each(|i| write_json_line(out, i))
}
