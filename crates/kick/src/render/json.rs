//! `--format json` (one document, written node by node so memory stays
//! bounded) and `--format jsonl` (one object a line, as things happen).
//! Notices go to stderr in both.

use std::io::Write;

use serde::Serialize;
use serde_json::json;

use super::Streams;
use crate::drift::Drift;
use crate::outcome::NodeReport;
use crate::summary::Summary;
use crate::watch::{JobInfo, Notice, Reporter, WatchEvent};

/// The JSON and JSON-lines reporter.
pub struct Json {
    streams: Streams,
    lines: bool,
    quiet: bool,
    first_node: bool,
    /// The nodes' changes, grouped for `drift`.
    drift: Drift,
    /// Each node is serialized here first: one write per node instead of
    /// thousands of small ones through the dynamic writer.
    buf: Vec<u8>,
}

impl Json {
    /// `lines` selects `jsonl`.
    pub fn new(streams: Streams, lines: bool, quiet: bool) -> Self {
        Self {
            streams,
            lines,
            quiet,
            first_node: true,
            drift: Drift::default(),
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    fn node_line(&mut self, node: &NodeReport) -> std::io::Result<()> {
        match &node.json {
            Some(bytes) => {
                // `bytes` is an object: its members go in after `type`.
                // Written as they are: copying a large node into `buf`
                // first would cost more than the extra write calls.
                self.streams.out.write_all(b"{\"type\":\"node\",")?;
                self.streams
                    .out
                    .write_all(bytes.get(1..).unwrap_or_default())?;
                self.streams.out.write_all(b"\n")?;
                self.streams.out.flush()
            }
            None => self.line(&Tagged {
                kind: "node",
                inner: node,
            }),
        }
    }

    fn line(&mut self, v: &impl Serialize) -> std::io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, v)?;
        self.buf.push(b'\n');
        self.streams.out.write_all(&self.buf)?;
        self.streams.out.flush()
    }
}

#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    inner: &'a T,
}

impl Reporter for Json {
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()> {
        match event {
            WatchEvent::Started(job) => self.started(job),
            WatchEvent::Progress(_) => Ok(()),
            WatchEvent::NodeDone(node) => self.node_done(node),
            WatchEvent::Notice(n) => self.notice(n),
            WatchEvent::ResultsBegin(job) => self.begin_results(job),
            WatchEvent::Result { node, seen_live } => self.result(node, seen_live),
            WatchEvent::Finished {
                job,
                summary,
                exit_code,
            } => self.finish(job, summary, exit_code),
        }
    }
}

impl Json {
    fn started(&mut self, job: &JobInfo) -> std::io::Result<()> {
        if self.lines {
            let v = json!({"type": "job", "job": job, "node_count": job.node_count});
            self.line(&v)?;
        }
        Ok(())
    }

    fn node_done(&mut self, node: &NodeReport) -> std::io::Result<()> {
        if self.lines {
            self.line(&Tagged {
                kind: "node",
                inner: node,
            })?;
        }
        Ok(())
    }

    fn notice(&mut self, notice: &Notice) -> std::io::Result<()> {
        if !self.quiet {
            writeln!(self.streams.err, "{}", super::notice::text(notice))?;
        }
        Ok(())
    }

    fn begin_results(&mut self, job: &JobInfo) -> std::io::Result<()> {
        if !self.lines {
            self.streams.out.write_all(b"{\"job\":")?;
            serde_json::to_writer(&mut self.streams.out, job)?;
            self.streams.out.write_all(b",\"nodes\":[")?;
        }
        Ok(())
    }

    fn result(&mut self, node: NodeReport, seen_live: bool) -> std::io::Result<()> {
        self.drift
            .add(&node.name, &node.changes, node.changes_truncated);
        if self.lines {
            if !seen_live {
                self.node_line(&node)?;
            }
            return Ok(());
        }
        if !self.first_node {
            self.streams.out.write_all(b",")?;
        }
        self.first_node = false;
        match &node.json {
            Some(bytes) => self.streams.out.write_all(bytes),
            None => {
                self.buf.clear();
                serde_json::to_writer(&mut self.buf, &node)?;
                self.streams.out.write_all(&self.buf)
            }
        }
    }

    fn finish(&mut self, job: &JobInfo, summary: &Summary, exit_code: u8) -> std::io::Result<()> {
        let drift = self.drift.groups();
        if self.lines {
            self.line(&json!({"type": "drift", "drift": drift}))?;
            let v =
                json!({"type": "summary", "job": job, "summary": summary, "exit_code": exit_code});
            return self.line(&v);
        }
        self.streams.out.write_all(b"],\"drift\":")?;
        serde_json::to_writer(&mut self.streams.out, &drift)?;
        self.streams.out.write_all(b",\"summary\":")?;
        serde_json::to_writer(&mut self.streams.out, summary)?;
        writeln!(self.streams.out, ",\"exit_code\":{exit_code}}}")?;
        self.streams.out.flush()
    }
}
