//! `--format json` (one document, written node by node so memory stays
//! bounded) and `--format jsonl` (one object a line, as things happen).
//! Notices go to stderr in both.

use std::io::Write;

use serde::Serialize;
use serde_json::json;

use super::{Io, Reporter};
use crate::outcome::NodeReport;
use crate::summary::Summary;
use crate::watch::{JobInfo, Notice, WatchEvent};

/// The JSON and JSON-lines reporter.
pub struct Json {
    io: Io,
    lines: bool,
    quiet: bool,
    first_node: bool,
    /// Each node is serialized here first: one write per node instead of
    /// thousands of small ones through the dynamic writer.
    buf: Vec<u8>,
}

impl Json {
    /// `lines` selects `jsonl`.
    pub fn new(io: Io, lines: bool, quiet: bool) -> Self {
        Self {
            io,
            lines,
            quiet,
            first_node: true,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    fn node_line(&mut self, node: &NodeReport) -> std::io::Result<()> {
        match &node.json {
            Some(bytes) => {
                // `bytes` is an object: its members go in after `type`.
                // Written as they are: copying a large node into `buf`
                // first would cost more than the extra write calls.
                self.io.out.write_all(b"{\"type\":\"node\",")?;
                self.io.out.write_all(bytes.get(1..).unwrap_or_default())?;
                self.io.out.write_all(b"\n")?;
                self.io.out.flush()
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
        self.io.out.write_all(&self.buf)?;
        self.io.out.flush()
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
            writeln!(self.io.err, "{}", super::notice::text(notice))?;
        }
        Ok(())
    }

    fn begin_results(&mut self, job: &JobInfo) -> std::io::Result<()> {
        if !self.lines {
            self.io.out.write_all(b"{\"job\":")?;
            serde_json::to_writer(&mut self.io.out, job)?;
            self.io.out.write_all(b",\"nodes\":[")?;
        }
        Ok(())
    }

    fn result(&mut self, node: NodeReport, seen_live: bool) -> std::io::Result<()> {
        if self.lines {
            if !seen_live {
                self.node_line(&node)?;
            }
            return Ok(());
        }
        if !self.first_node {
            self.io.out.write_all(b",")?;
        }
        self.first_node = false;
        match &node.json {
            Some(bytes) => self.io.out.write_all(bytes),
            None => {
                self.buf.clear();
                serde_json::to_writer(&mut self.buf, &node)?;
                self.io.out.write_all(&self.buf)
            }
        }
    }

    fn finish(&mut self, job: &JobInfo, summary: &Summary, exit_code: u8) -> std::io::Result<()> {
        if self.lines {
            let v =
                json!({"type": "summary", "job": job, "summary": summary, "exit_code": exit_code});
            return self.line(&v);
        }
        self.io.out.write_all(b"],\"summary\":")?;
        serde_json::to_writer(&mut self.io.out, summary)?;
        writeln!(self.io.out, ",\"exit_code\":{exit_code}}}")?;
        self.io.out.flush()
    }
}
