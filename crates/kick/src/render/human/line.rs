//! A node's line: name, outcome, what it did or why it failed, duration;
//! fitted to the terminal's width by moving the detail to indented lines
//! below, broken between words.

use serde_json::Value;

use super::super::style::{self, paint};
use crate::outcome::{NodeReport, Outcome};
use crate::time;

/// Node names are padded to this width so columns line up in the common case.
const NAME_WIDTH: usize = 28;

/// A result this short, on one line, is shown in the node's line.
pub const INLINE_RESULT: usize = 60;

/// Indent of the detail lines under a node line that did not fit.
const INDENT: &str = "    ";

/// What the job around a node line is.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineStyle {
    /// Colour.
    pub color: bool,
    /// The job runs in noop mode: a change is one that would be made.
    pub noop: bool,
    /// The job runs a generic task: a short result goes in the line.
    pub generic: bool,
    /// The width to fit, when writing to a terminal.
    pub width: Option<usize>,
}

/// The word for a node's outcome: "would change" for a change in noop.
pub fn label(node: &NodeReport, noop: bool) -> &'static str {
    if node.outcome == Outcome::Changed && (noop || result_noop(node)) {
        return "would change";
    }
    // A job shown while it runs has nodes without an outcome yet.
    if node.outcome == Outcome::Running {
        return node.state.as_str();
    }
    node.outcome.as_str()
}

fn result_noop(node: &NodeReport) -> bool {
    node.result
        .as_ref()
        .and_then(|r| r.get("noop"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The line (or lines) of `node`, ending in a newline.
pub fn node_line(node: &NodeReport, st: LineStyle) -> String {
    let name = format!("{:<NAME_WIDTH$}", node.name);
    let label_width = if st.noop { 12 } else { 9 };
    let word = label(node, st.noop);
    let label = format!("{word:<label_width$}");
    let mut detail = String::new();
    if let Some(r) = &node.resources {
        detail = resources_text(r, st.noop || result_noop(node));
    } else if st.generic
        && !node.outcome.is_bad()
        && let Some(short) = short_result(node)
    {
        detail = short;
    }
    if node.outcome.is_bad()
        && let Some(e) = error_text(node)
    {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(&e);
    }
    let duration = node.duration.map(time::human);
    let len = |parts: &[&str]| parts.iter().map(|p| p.chars().count() + 2).sum::<usize>() - 2;
    let dur = duration.as_deref().unwrap_or("");
    let mut head: Vec<&str> = vec![&name, &label];
    let mut tail = String::new();
    let whole: Vec<&str> = [&name, &label, detail.as_str(), dur]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    let fits = st.width.is_none_or(|w| len(&whole) <= w);
    if let Some(w) = st.width.filter(|_| !fits) {
        // Without the padding, then without the duration on the first line.
        if len(&[&name, &label, dur]) > w {
            head = vec![node.name.as_str(), word];
        }
        if len(&[head[0], head[1], dur]) > w && !dur.is_empty() {
            tail = dur.to_owned();
        }
    }
    let c = st.color;
    let mut line = format!(
        "{}  {}",
        head[0],
        paint(c, style::outcome(node.outcome), head[1])
    );
    if fits && !detail.is_empty() {
        line.push_str("  ");
        line.push_str(&detail);
    }
    if !dur.is_empty() && tail.is_empty() {
        line.push_str("  ");
        line.push_str(&paint(c, style::dim(), dur));
    }
    // Trailing padding of the label when nothing follows it.
    let mut line = line.trim_end().to_owned();
    line.push('\n');
    if !fits {
        let mut rest = detail;
        if !tail.is_empty() {
            if !rest.is_empty() {
                rest.push_str("  ");
            }
            rest.push_str(&tail);
        }
        let width = st
            .width
            .unwrap_or(usize::MAX)
            .saturating_sub(INDENT.len())
            .max(20);
        for l in wrap(&rest, width) {
            line.push_str(INDENT);
            line.push_str(&l);
            line.push('\n');
        }
    }
    line
}

/// `text` broken into lines of at most `width` characters between words; a
/// word longer than a line is cut with an ellipsis.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let word: String = if word.chars().count() > width {
            let mut w: String = word.chars().take(width.saturating_sub(1)).collect();
            w.push('…');
            w
        } else {
            word.to_owned()
        };
        let len = cur.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// `text` with a newline, or when wider than `width` broken between words
/// with the lines after the first indented by `indent` spaces.
pub fn fit(text: &str, width: Option<usize>, indent: usize) -> String {
    let Some(width) = width.filter(|w| text.chars().count() > *w) else {
        return format!("{text}\n");
    };
    let lead: String = text.chars().take_while(|c| *c == ' ').collect();
    let mut out = String::new();
    let mut first = true;
    let rest_width = width.saturating_sub(indent).max(20);
    let mut words = wrap(text, width.saturating_sub(lead.len()).max(20)).into_iter();
    if let Some(l) = words.next() {
        out.push_str(&lead);
        out.push_str(&l);
        out.push('\n');
        first = false;
    }
    let rest: Vec<String> = words.collect();
    if !first && !rest.is_empty() {
        for l in wrap(&rest.join(" "), rest_width) {
            out.push_str(&" ".repeat(indent));
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// `2 changed, 0 failed, 9 total`, or in noop `3 would change, ...`.
fn resources_text(r: &Value, noop: bool) -> String {
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    if noop {
        format!(
            "{} would change, {} failed, {} total",
            n("noop_pending"),
            n("failed"),
            n("total")
        )
    } else {
        format!(
            "{} changed, {} failed, {} total",
            n("changed"),
            n("failed"),
            n("total")
        )
    }
}

/// Why a node failed, in the user's words: the error's message (its kind
/// only when it has none), and for a message that ends in a colon (a task's
/// "errored with a code 3:") the first line after it, the task's stderr.
pub fn error_text(node: &NodeReport) -> Option<String> {
    let e = node.error.as_ref()?;
    message_text(e.get("msg").and_then(Value::as_str).unwrap_or("")).or_else(|| {
        e.get("kind")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
    })
}

/// An error message on one line: its first line, and for one that ends in
/// a colon the next, which says what went wrong.
fn message_text(msg: &str) -> Option<String> {
    let mut lines = msg.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    Some(match (first.strip_suffix(':'), lines.next()) {
        (Some(head), Some(next)) => format!("{head}: {next}"),
        (Some(head), None) => head.to_owned(),
        _ => first.to_owned(),
    })
}

/// A generic task's result when it is short enough for the node's line:
/// its output, or its members as `key: value`.
pub fn short_result(node: &NodeReport) -> Option<String> {
    let text = result_text(node)?;
    let text = text.trim();
    (!text.is_empty() && !text.contains('\n') && text.chars().count() <= INLINE_RESULT)
        .then(|| text.to_owned())
}

/// What a generic task's result says: its output, else its other members
/// as `key: value` lines.
pub fn result_text(node: &NodeReport) -> Option<String> {
    if let Some(out) = &node.output
        && !out.trim().is_empty()
    {
        return Some(out.clone());
    }
    readable_result(node.result.as_ref()?)
}

/// A task result without `_output`, as `key: value` lines.
fn readable_result(result: &Value) -> Option<String> {
    let obj = result.as_object()?;
    let mut s = String::new();
    for (k, v) in obj {
        if k == "_output" || k == "_error" {
            continue;
        }
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        s.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(e) = obj.get("_error") {
        let msg = e.get("msg").and_then(Value::as_str).unwrap_or("");
        s.push_str(&format!(
            "error: {}\n",
            message_text(msg).unwrap_or_default()
        ));
    }
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_between_words_and_cut_long_words() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("abcdefghij x", 5), ["abcd…", "x"]);
        assert!(wrap("", 5).is_empty());
    }
}
