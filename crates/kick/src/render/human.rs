//! Human output: a line per node as it ends, the output of the nodes picked
//! by `--show-output`, a closing summary. Progress and notices go to stderr;
//! a progress bar only when stderr is a terminal.

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::style::{self, paint};
use super::{Reporter, show_output_selects};
use crate::Streams;
use crate::cli::{OutputArgs, ShowOutput};
use crate::drift::Drift;
use crate::outcome::{NodeReport, Outcome};
use crate::summary::Summary;
use crate::time;
use crate::watch::{JobInfo, Notice, Progress, WatchEvent};

/// Node names are padded to this width so columns line up in the common case.
const NAME_WIDTH: usize = 28;

/// The human reporter.
pub struct Human {
    streams: Streams,
    /// Colour stdout.
    color: bool,
    show: Vec<ShowOutput>,
    quiet: bool,
    bar: Option<ProgressBar>,
    /// The nodes' changes, for the drift section.
    drift: Drift,
}

impl Human {
    /// A reporter writing to `io`.
    pub fn new(streams: Streams, color: bool, output: &OutputArgs) -> Self {
        Self {
            streams,
            color,
            show: output.show_output.clone(),
            quiet: output.quiet,
            bar: None,
            drift: Drift::default(),
        }
    }

    fn write_out(&mut self, text: &str) -> std::io::Result<()> {
        let out = &mut self.streams.out;
        match &self.bar {
            Some(bar) => bar.suspend(|| out.write_all(text.as_bytes()).and_then(|()| out.flush())),
            None => out.write_all(text.as_bytes()).and_then(|()| out.flush()),
        }
    }

    fn write_err(&mut self, text: &str) -> std::io::Result<()> {
        let err = &mut self.streams.err;
        match &self.bar {
            Some(bar) => bar.suspend(|| err.write_all(text.as_bytes())),
            None => err.write_all(text.as_bytes()),
        }
    }

    fn output_block(&self, node: &NodeReport) -> Option<String> {
        if !show_output_selects(&self.show, node.outcome) {
            return None;
        }
        let body = match (&node.output, &node.result) {
            (Some(out), _) if !out.trim().is_empty() => out.clone(),
            (_, Some(result)) => readable_result(result)?,
            _ => node.error_line()?,
        };
        let c = self.color;
        let mut s = format!(
            "\n{} {}\n",
            paint(c, style::bold(), &node.name),
            paint(
                c,
                style::outcome(node.outcome),
                &format!("({})", node.outcome.as_str())
            )
        );
        for line in body.trim_end().lines() {
            s.push_str("  ");
            s.push_str(line.trim_end());
            s.push('\n');
        }
        Some(s)
    }
}

/// A node's line: name, outcome, resource counts or error, duration.
pub fn node_line(node: &NodeReport, color: bool) -> String {
    let name = format!("{:<NAME_WIDTH$}", node.name);
    // A job shown while it runs has nodes without an outcome yet.
    let label = if node.state.is_terminal() {
        node.outcome.as_str()
    } else {
        node.state.as_str()
    };
    let outcome = paint(color, style::outcome(node.outcome), &format!("{label:<9}"));
    let mut detail = String::new();
    if let Some(r) = &node.resources {
        detail = resources_text(r, node.result.as_ref());
    }
    if node.outcome.is_bad()
        && let Some(e) = node.error_line()
    {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(&e);
    }
    let mut line = format!("{name}  {outcome}");
    if !detail.is_empty() {
        line.push_str("  ");
        line.push_str(&detail);
    }
    if let Some(d) = node.duration {
        line.push_str("  ");
        line.push_str(&paint(color, style::dim(), &time::human(d)));
    }
    line.push('\n');
    line
}

fn resources_text(r: &Value, result: Option<&Value>) -> String {
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    let noop = result
        .and_then(|r| r.get("noop"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if noop {
        format!(
            "{} pending (noop), {} failed, {} total",
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

/// A generic task result without `_output`, as `key: value` lines.
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
        s.push_str(&format!(
            "error: {}\n",
            e.get("msg").and_then(Value::as_str).unwrap_or("")
        ));
    }
    (!s.is_empty()).then_some(s)
}

/// The closing summary line.
pub fn summary_line(job: &JobInfo, summary: &Summary, color: bool) -> String {
    let counts: Vec<String> = Outcome::ALL
        .iter()
        .filter(|o| summary.get(**o) > 0)
        .map(|o| {
            paint(
                color,
                style::outcome(*o),
                &format!("{} {}", summary.get(*o), o.as_str()),
            )
        })
        .collect();
    let nodes = if summary.total == 1 { "node" } else { "nodes" };
    let mut s = format!("Job {} {}: {} {nodes}", job.name, job.state, summary.total);
    if !counts.is_empty() {
        s.push_str(": ");
        s.push_str(&counts.join(", "));
    }
    if let Some(d) = job.duration {
        s.push_str(&format!(" in {}", time::human(d)));
    }
    s.push('\n');
    s
}

impl Reporter for Human {
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()> {
        match event {
            WatchEvent::Started(job) => self.started(job),
            WatchEvent::Progress(p) => {
                self.progress(p);
                Ok(())
            }
            WatchEvent::NodeDone(node) => self.node_done(node),
            WatchEvent::Notice(n) => self.notice(n),
            WatchEvent::ResultsBegin(_) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                Ok(())
            }
            WatchEvent::Result { node, seen_live } => self.result(node, seen_live),
            WatchEvent::Finished { job, summary, .. } => self.finish(job, summary),
        }
    }
}

impl Human {
    fn started(&mut self, job: &JobInfo) -> std::io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        let noop = if job.noop { " (noop)" } else { "" };
        let nodes = if job.node_count == 1 { "node" } else { "nodes" };
        self.write_err(&format!(
            "Job {}: {}{noop} on {} {nodes}\n",
            job.name,
            job.what(),
            job.node_count
        ))?;
        if self.streams.err_tty && job.node_count > 0 {
            let bar =
                ProgressBar::with_draw_target(Some(job.node_count), ProgressDrawTarget::stderr());
            let st = ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} done, {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(st);
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            self.bar = Some(bar);
        }
        Ok(())
    }

    fn progress(&mut self, p: &Progress) {
        if let Some(bar) = &self.bar {
            if bar.length() != Some(p.total) && p.total > 0 {
                bar.set_length(p.total);
            }
            bar.set_position(p.done);
            bar.set_message(format!("{} running, {} failed", p.running, p.failed));
        }
    }

    fn node_done(&mut self, node: &NodeReport) -> std::io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        let line = node_line(node, self.color);
        self.write_out(&line)
    }

    fn notice(&mut self, notice: &Notice) -> std::io::Result<()> {
        self.write_err(&format!("{}\n", super::notice::text(notice)))
    }

    fn result(&mut self, node: NodeReport, seen_live: bool) -> std::io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        self.drift
            .add(&node.name, &node.changes, node.changes_truncated);
        let mut text = String::new();
        if !seen_live {
            text.push_str(&node_line(&node, self.color));
        }
        if let Some(block) = self.output_block(&node) {
            text.push_str(&block);
        }
        if text.is_empty() {
            return Ok(());
        }
        self.write_out(&text)
    }

    fn finish(&mut self, job: &JobInfo, summary: &Summary) -> std::io::Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let sep = if self.quiet { "" } else { "\n" };
        let drift = super::drift::section(&self.drift, self.color);
        let line = summary_line(job, summary, self.color);
        self.write_out(&format!("{drift}{sep}{line}"))
    }
}
