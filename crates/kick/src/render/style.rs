//! Colours, applied only when colour was decided on.

use anstyle::{AnsiColor, Style};

use crate::outcome::Outcome;

/// The style of an outcome.
pub fn outcome(o: Outcome) -> Style {
    let c = match o {
        Outcome::Unchanged => AnsiColor::Green,
        Outcome::Changed => AnsiColor::Yellow,
        Outcome::Failed | Outcome::Errored => AnsiColor::Red,
        Outcome::Skipped | Outcome::Stopped => AnsiColor::Magenta,
        Outcome::Running => AnsiColor::Cyan,
    };
    Style::new().fg_color(Some(c.into())).bold()
}

/// Dimmed text (durations, hints).
pub fn dim() -> Style {
    Style::new().dimmed()
}

/// Bold text (node names in output headers).
pub fn bold() -> Style {
    Style::new().bold()
}

/// `text` in `style` when `color`, else plain.
pub fn paint(color: bool, style: Style, text: &str) -> String {
    if color {
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_owned()
    }
}
