//! `--format json` (one document, written node by node so memory stays
//! bounded) and `--format jsonl` (one object a line, as things happen).
//! Notices go to stderr in both.

use std::io::Write;

use orchestrator_types::NodeState;
use orchestrator_types::psick::Change;
use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::Reporter;
use crate::Streams;
use crate::drift::Drift;
use crate::outcome::{NodeReport, Outcome, RawRead, strip_ansi};
use crate::summary::Summary;
use crate::watch::{JobInfo, Notice, WatchEvent};

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

/// Serializes a node read from a raw result into [`NodeReport::json`],
/// where the results are fetched (off the task that writes them). The
/// result is copied from the server's text, and so is `output` when it
/// holds nothing to strip: parsing a large result into a value and escaping
/// its output twice (as `output` and inside `result`) was most of the cost
/// of `--format json` on large jobs.
pub fn prepare(read: RawRead) -> NodeReport {
    match read {
        RawRead::Members {
            mut report,
            members,
            output,
        } => {
            let output = output
                .and_then(|i| members.get(i))
                .and_then(|(_, raw)| Text::output(raw));
            // Room for the result, the output beside it and the small
            // members: growing the buffer would copy the large ones again.
            let size: usize = members
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum();
            let mut json = Vec::with_capacity(size + output.as_ref().map_or(0, Text::len) + 1024);
            let written = serde_json::to_writer(
                &mut json,
                &RawReport {
                    name: &report.name,
                    state: report.state,
                    outcome: report.outcome,
                    duration: report.duration,
                    exitcode: report.exitcode,
                    resources: report.resources.as_ref(),
                    output,
                    error: report.error.as_ref(),
                    changes: &report.changes,
                    changes_truncated: report.changes_truncated,
                    result: Members(&members),
                },
            );
            if written.is_ok() {
                report.json = Some(json);
            }
            report
        }
        RawRead::Parsed(mut report) => {
            pre_serialize(&mut report);
            report
        }
    }
}

/// Serializes `report` into [`NodeReport::json`] and drops the large
/// fields nothing else needs.
pub fn pre_serialize(report: &mut NodeReport) {
    if let Ok(bytes) = serde_json::to_vec(report) {
        report.json = Some(bytes);
        report.output = None;
        report.result = None;
    }
}

/// An object from its members, each written as its text.
struct Members<'a>(&'a [(String, Box<RawValue>)]);

impl Serialize for Members<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A report serialized from a raw result; the members and their order are
/// those of [`NodeReport`].
#[derive(Serialize)]
struct RawReport<'a> {
    name: &'a str,
    state: NodeState,
    outcome: Outcome,
    duration: Option<f64>,
    exitcode: Option<i64>,
    resources: Option<&'a serde_json::Value>,
    output: Option<Text<'a>>,
    error: Option<&'a serde_json::Value>,
    changes: &'a [Change],
    changes_truncated: u64,
    result: Members<'a>,
}

/// The `output` member: the server's string token when it has nothing to
/// strip, else the cleaned text.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Text<'a> {
    Raw(&'a RawValue),
    Clean(String),
}

impl<'a> Text<'a> {
    /// About the size of its JSON.
    fn len(&self) -> usize {
        match self {
            Self::Raw(token) => token.get().len(),
            Self::Clean(text) => text.len() + text.len() / 8 + 2,
        }
    }

    /// From the `_output` token; none unless it is a string, as for a
    /// parsed result.
    fn output(token: &'a RawValue) -> Option<Self> {
        let s = token.get();
        if !s.starts_with('"') {
            return None;
        }
        if needs_no_stripping(s.as_bytes()) {
            return Some(Self::Raw(token));
        }
        let text: String = serde_json::from_str(s).ok()?;
        Some(Self::Clean(strip_ansi(&text)))
    }
}

/// True when the JSON string token `raw` cannot decode to text holding an
/// ESC or a 0x9b byte, which is when [`strip_ansi`] returns the text as it
/// is. Escapes of ASCII characters other than ESC are safe; any other
/// `\u` escape is left to the decoder (serde_json writes none, and none
/// arise from a valid string without them).
pub(crate) fn needs_no_stripping(raw: &[u8]) -> bool {
    if memchr::memchr2(0x1b, 0x9b, raw).is_some() {
        return false;
    }
    // Output has an escape on every line, `\u` escapes are rare: look for
    // those, then tell escapes from text by the backslashes before them
    // (an even run escapes itself).
    memchr::memmem::find_iter(raw, b"\\u").all(|at| {
        let run = raw
            .get(..at)
            .unwrap_or_default()
            .iter()
            .rev()
            .take_while(|&&c| c == b'\\')
            .count();
        run % 2 == 1
            || raw
                .get(at + 2..at + 6)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u16::from_str_radix(h, 16).ok())
                .is_some_and(|c| c < 0x80 && c != 0x1b)
    })
}
