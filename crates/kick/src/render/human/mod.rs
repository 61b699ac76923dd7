//! Human output: a line per node as it ends ([`line`](mod@line)), the results of the
//! nodes picked by `--show-output` (by default failed and changed ones, and
//! every result of a generic task), a closing [`summary`] that names the
//! nodes that did not succeed. Progress and notices go to stderr; a
//! progress bar only when stderr is a terminal.

pub mod line;
pub mod summary;

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Streams;
use super::show_output_selects;
use super::style::{self, paint};
use crate::cli::{OutputArgs, ShowOutput};
use crate::drift::Drift;
use crate::outcome::NodeReport;
use crate::summary::Summary;
use crate::watch::Reporter;
use crate::watch::{JobInfo, Notice, Progress, WatchEvent};
use line::{LineStyle, node_line};
use summary::{BadNodes, summary_text};

/// The progress bar on screen, if any: `-v` logs are written around it
/// ([`LogWriter`]) so that they never share its line.
static BAR: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);

fn show_bar(bar: Option<ProgressBar>) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = bar;
    }
}

/// stderr for `tracing`: with the progress bar on screen, its line is
/// cleared before a log line and drawn again after.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = BAR.lock().ok().and_then(|b| b.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The human reporter.
pub struct Human {
    streams: Streams,
    show: Vec<ShowOutput>,
    quiet: bool,
    bar: Option<ProgressBar>,
    style: LineStyle,
    bad: BadNodes,
    /// The nodes' changes, for the drift section.
    drift: Drift,
}

impl Human {
    /// A reporter writing to `streams`, in colour when `color`.
    pub fn new(streams: Streams, color: bool, output: &OutputArgs) -> Self {
        let width = terminal_width(&streams);
        Self {
            streams,
            show: output.show_output.clone(),
            quiet: output.quiet,
            bar: None,
            style: LineStyle {
                color,
                width,
                ..LineStyle::default()
            },
            bad: BadNodes::default(),
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
        // The bar's line is cleared first and drawn again after.
        match &self.bar {
            Some(bar) => bar.suspend(|| err.write_all(text.as_bytes()).and_then(|()| err.flush())),
            None => err.write_all(text.as_bytes()).and_then(|()| err.flush()),
        }
    }

    /// The block under the node lines: the node's output or result, unless
    /// it was short enough for its line.
    fn output_block(&self, node: &NodeReport) -> Option<String> {
        if !show_output_selects(&self.show, node.outcome, self.style.generic) {
            return None;
        }
        // A generic task's short result is in its line already.
        if self.style.generic && !node.outcome.is_bad() && line::short_result(node).is_some() {
            return None;
        }
        let body = line::result_text(node).or_else(|| line::error_text(node))?;
        let c = self.style.color;
        let mut s = format!(
            "\n{} {}\n",
            paint(c, style::bold(), &node.name),
            paint(
                c,
                style::outcome(node.outcome),
                &format!("({})", line::label(node, self.style.noop))
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

/// The width node lines are fitted to: `COLUMNS` when set, else the
/// terminal's when stdout is one; none for a pipe.
fn terminal_width(streams: &Streams) -> Option<usize> {
    if let Some(cols) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| (20..=10_000).contains(c))
    {
        return Some(cols);
    }
    if !streams.out_tty {
        return None;
    }
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(terminal_size::Width(w), _)| usize::from(w))
        .filter(|w| *w >= 20)
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
        // Each job followed gets its own summary.
        self.bad = BadNodes::default();
        self.style.noop = job.noop;
        self.style.generic = job.is_generic_task();
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
            show_bar(Some(bar.clone()));
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
        let line = node_line(node, self.style);
        self.write_out(&line)
    }

    fn notice(&mut self, notice: &Notice) -> std::io::Result<()> {
        self.write_err(&format!("{}\n", super::notice::text(notice)))
    }

    fn result(&mut self, node: NodeReport, seen_live: bool) -> std::io::Result<()> {
        self.bad.add(&node);
        if self.quiet {
            return Ok(());
        }
        self.drift
            .add(&node.name, &node.changes, node.changes_truncated);
        let mut text = String::new();
        if !seen_live {
            text.push_str(&node_line(&node, self.style));
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
            show_bar(None);
            bar.finish_and_clear();
        }
        let sep = if self.quiet { "" } else { "\n" };
        let drift = crate::render::drift::section(&self.drift, self.style.color);
        let line = summary_text(job, summary, &self.bad, self.style.color, self.style.width);
        self.write_out(&format!("{drift}{sep}{line}"))
    }
}
