//! A node's report as the JSON `--format json` writes, serialized where the
//! results are fetched (off the task that writes the output).

use orchestrator_types::NodeState;
use orchestrator_types::psick::Change;
use serde::Serialize;
use serde_json::value::RawValue;

use super::{NodeReport, Outcome, RawRead, strip_ansi};

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
pub fn needs_no_stripping(raw: &[u8]) -> bool {
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
