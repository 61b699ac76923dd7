//! Puppet agent run reports (`lastrunreport`, `last_run_report.yaml`): the
//! resource events of a run, as the `changes` of the psick::puppet_agent
//! result.
//!
//! Puppet writes the report with Ruby's Psych: Ruby-tagged YAML
//! (`--- !ruby/object:Puppet::Transaction::Report`; older agents also tag
//! every `Puppet::Resource::Status` and `Puppet::Transaction::Event`, and
//! symbols as `!ruby/sym`), strings that are not UTF-8 as `!binary` base64.
//! Tags name Ruby classes, so they are ignored and fields are read by name.
//! Reports reach tens of MiB (logs, metrics, every resource of the catalog),
//! so no document tree is ever built: the YAML is read as a stream of
//! events (saphyr-parser), only the fields used are kept and everything
//! else is skipped event by event. Most of what is never read (`logs`,
//! `metrics`, the tags, times and counts of each resource, the history of
//! each event) is dropped line by line before parsing, which leaves the
//! parser a quarter of the file. A report up to [`MAX_IN_MEMORY_BYTES`] is
//! filtered in chunks into memory and parsed there (several times faster);
//! a larger one is streamed from the file, so memory stays bounded.
//!
//! A crate of its own so that the task's size-optimised build can compile
//! this one hot loop for speed.

pub mod yaml;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use orchestrator_types::psick::{Change, ChangeStatus, CorrectiveCounts, shorten};
use saphyr_parser::{BufferedInput, Event, Input, Parser, ScalarStyle, ScanError, StrInput, Tag};

/// Values (and messages, titles) are cut at this many bytes.
pub const MAX_VALUE_BYTES: usize = 1024;

/// Reports larger than this are not read: no agent run writes one.
pub const MAX_REPORT_BYTES: u64 = 512 * 1024 * 1024;

/// Reports up to this size have their kept lines (about a quarter of them)
/// gathered in memory and parsed in place, which is several times faster;
/// larger ones are streamed, so memory stays bounded whatever the size.
pub const MAX_IN_MEMORY_BYTES: u64 = 24 * 1024 * 1024;

/// How many anchored values are remembered for aliases (Psych anchors an
/// object the report holds twice; Puppet's reports hardly ever do).
const MAX_ANCHORS: usize = 4096;

/// The report fields that become part of the task result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// `transaction_uuid`.
    pub transaction_uuid: Option<String>,
    /// The first `limit` resource events, in the report's order.
    pub changes: Vec<Change>,
    /// Events left out by the limit.
    pub changes_truncated: u64,
    /// Resources with applied or pending changes, by whether the change was
    /// corrective.
    pub corrective_change: CorrectiveCounts,
}

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be opened or read.
    #[error("could not read the run's report {}: {source}", path.display())]
    Io {
        /// The report file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is implausibly large.
    #[error(
        "the run's report {} is {size} bytes, more than the {MAX_REPORT_BYTES} this task reads",
        path.display()
    )]
    TooLarge {
        /// The report file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file could not be understood.
    #[error("the run's report {} {problem}", path.display())]
    Unreadable {
        /// The report file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// What is wrong with a report's content.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The YAML does not parse.
    #[error("is not valid YAML ({0}); it may have been cut short")]
    Yaml(#[from] ScanError),
    /// The document ends before the report does.
    #[error("ends early: it was cut short while being written or copied")]
    Truncated,
    /// The YAML is not a Puppet run report.
    #[error("is not a Puppet run report ({0})")]
    NotAReport(&'static str),
    /// Reading failed part way.
    #[error("could not be read to the end: {0}")]
    Io(#[from] io::Error),
}

/// Reads the report at `path`, keeping at most `limit` changes.
pub fn read(path: &Path, limit: usize) -> Result<Report, ReportError> {
    read_with(path, limit, MAX_IN_MEMORY_BYTES)
}

/// [`read`], streaming reports larger than `in_memory` bytes.
fn read_with(path: &Path, limit: usize, in_memory: u64) -> Result<Report, ReportError> {
    let io_error = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    if size > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let unreadable = |problem| ReportError::Unreadable {
        path: path.to_path_buf(),
        problem,
    };
    if size <= in_memory {
        // A file that grew past the limit since its size was taken reads as
        // truncated, as does one that does not end with a line break.
        let filtered = prefilter(file, in_memory).map_err(io_error)?;
        if !filtered.complete {
            return Err(unreadable(Problem::Truncated));
        }
        let text = match String::from_utf8(filtered.kept) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        return parse(&text, limit).map_err(unreadable);
    }
    let lines = Prefilter::new(io::BufReader::with_capacity(64 * 1024, file));
    let mut chars = Utf8Chars::new(lines);
    let parsed = parse_chars(&mut chars, limit);
    match (chars.error.take(), parsed) {
        (Some(e), _) => Err(Problem::Io(e)),
        (None, Ok(_)) if !chars.reader.complete => Err(Problem::Truncated),
        (None, r) => r,
    }
    .map_err(unreadable)
}

/// Top-level keys of the report that are never read: their lines are
/// dropped before parsing (they are a fifth of a noop run's report).
const SKIPPED_SECTIONS: &[&[u8]] = &[b"logs:", b"metrics:"];

/// The fields of a resource status that are read; the others (tags,
/// containment path, times, counts: most of each status) are dropped before
/// parsing. So are `resource` and `title`: Puppet writes each status under
/// its `resource` (`Type[title]`) as key, so they repeat it. Not so
/// `resource_type`: Puppet writes it as the type's name capitalised, which
/// need not spell the type as the key does.
const KEPT_STATUS_FIELDS: &[&[u8]] = &[b"resource_type:", b"corrective_change:", b"events:"];

/// The fields of a resource event that are read; the others (`audited`,
/// `historical_value`, `name`, `time`, `redacted`) are dropped before
/// parsing, all but an event's first (on its `- ` line, and short).
const KEPT_EVENT_FIELDS: &[&[u8]] = &[
    b"property:",
    b"previous_value:",
    b"desired_value:",
    b"message:",
    b"status:",
    b"corrective_change:",
];

/// Where in the report a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// A top-level key that is read.
    Kept,
    /// One of [`SKIPPED_SECTIONS`].
    Skipped,
    /// `resource_statuses`.
    Statuses,
}

/// Decides, line by line, what of the report is never read: the
/// [`SKIPPED_SECTIONS`], the fields of each resource status other than
/// [`KEPT_STATUS_FIELDS`], and those of each event other than
/// [`KEPT_EVENT_FIELDS`]. This relies on the layout Psych writes:
/// top-level keys at column 0 with their content indented (a sequence's
/// `- ` items at column 0), resource statuses at 2 spaces, their fields at
/// 4 and the fields of their events at 6 (a sequence's items at the
/// indentation of its key); a value's continuation lines are always
/// indented deeper. So an entry ends at the next line that starts at its
/// own indentation with a key. A status whose key is long or spans lines is
/// written as a complex key (`  ? 'Exec[...` with its continuation lines at
/// 4 spaces, then `  : title: ...`): its key's lines are all kept. Dropping
/// whole entries keeps the YAML valid. The layout is Psych's since Puppet 4
/// at least; a report laid out otherwise can lose the statuses or their
/// fields (never more), which the report's own end (`corrective_change`
/// after the statuses) does not reveal.
#[derive(Debug, Clone, Copy)]
struct LineFilter {
    section: Section,
    /// Inside a status field that is dropped.
    dropping_field: bool,
    /// Inside a status's `events`.
    in_events: bool,
    /// Inside an event field that is dropped.
    dropping_event_field: bool,
    /// Inside a status's complex key (`? `), up to its `: `.
    in_complex_key: bool,
}

impl LineFilter {
    fn new() -> Self {
        LineFilter {
            section: Section::Kept,
            dropping_field: false,
            in_events: false,
            dropping_event_field: false,
            in_complex_key: false,
        }
    }

    /// A line at a status's own indentation or less ends whatever field,
    /// event or key was open.
    fn leave_status_fields(&mut self) {
        self.dropping_field = false;
        self.in_events = false;
        self.dropping_event_field = false;
        self.in_complex_key = false;
    }

    /// Whether `line` (with its line break) is kept.
    fn keep(&mut self, line: &[u8]) -> bool {
        let indent = line.iter().take_while(|b| **b == b' ').count();
        let rest = &line[indent..];
        let blank = matches!(rest.first(), None | Some(b'\n' | b'\r'));
        if blank {
            // Part of whatever value is open (a block scalar's empty line).
            return match self.section {
                Section::Skipped => false,
                Section::Kept => true,
                Section::Statuses => {
                    self.in_complex_key || (!self.dropping_field && !self.dropping_event_field)
                }
            };
        }
        let item = rest.starts_with(b"- ") || rest == b"-\n" || rest == b"-\r\n";
        if indent == 0 {
            // A new top-level key, unless a sequence item of the current one.
            if item {
                return self.section != Section::Skipped;
            }
            self.section = if SKIPPED_SECTIONS.iter().any(|k| rest.starts_with(k)) {
                Section::Skipped
            } else if rest.starts_with(b"resource_statuses:") {
                Section::Statuses
            } else {
                Section::Kept
            };
            self.leave_status_fields();
            return self.section != Section::Skipped;
        }
        match self.section {
            Section::Skipped => false,
            Section::Kept => true,
            Section::Statuses => {
                if indent < 4 {
                    self.leave_status_fields();
                    self.in_complex_key =
                        rest.starts_with(b"? ") || rest == b"?\n" || rest == b"?\r\n";
                } else if self.in_complex_key {
                    return true;
                } else if indent == 4 {
                    if item {
                        // A new event (or item of another field).
                        self.dropping_event_field = false;
                    } else {
                        self.dropping_field =
                            !KEPT_STATUS_FIELDS.iter().any(|k| rest.starts_with(k));
                        self.in_events = rest.starts_with(b"events:");
                        self.dropping_event_field = false;
                    }
                } else if indent == 6 && self.in_events && !item {
                    self.dropping_event_field =
                        !KEPT_EVENT_FIELDS.iter().any(|k| rest.starts_with(k));
                }
                !self.dropping_field && !self.dropping_event_field
            }
        }
    }
}

/// A report's kept lines, read whole.
struct Filtered {
    kept: Vec<u8>,
    /// Whether the input ended with a line break, as every file Psych
    /// writes does, within the size allowed.
    complete: bool,
}

/// Reads at most `max` bytes of `reader`, keeping the lines
/// [`LineFilter`] keeps. The input is read in chunks rather than whole, so
/// only what is kept is ever held.
fn prefilter(mut reader: impl Read, max: u64) -> io::Result<Filtered> {
    let mut kept = Vec::new();
    let mut filter = LineFilter::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes of an unfinished line at the start of `buf`.
    let mut carried = 0;
    let mut total = 0u64;
    loop {
        if carried == buf.len() {
            // One line longer than the buffer (a long diff or content).
            buf.resize(buf.len() * 2, 0);
        }
        let n = match reader.read(&mut buf[carried..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > max {
            return Ok(Filtered {
                kept,
                complete: false,
            });
        }
        if n == 0 {
            // The last line, without a line break: the file was cut.
            if carried > 0 && filter.keep(&buf[..carried]) {
                kept.extend_from_slice(&buf[..carried]);
            }
            return Ok(Filtered {
                kept,
                complete: carried == 0 && total > 0,
            });
        }
        let filled = carried + n;
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &buf[start..filled]) {
            let line = &buf[start..=start + i];
            if filter.keep(line) {
                kept.extend_from_slice(line);
            }
            start += i + 1;
        }
        buf.copy_within(start..filled, 0);
        carried = filled - start;
    }
}

/// [`prefilter`] over a stream, for reports too large to hold in memory.
struct Prefilter<R> {
    inner: R,
    line: Vec<u8>,
    pos: usize,
    filter: LineFilter,
    /// Whether the input's last line ended with a line break, as every
    /// file Psych writes does.
    complete: bool,
}

impl<R: io::BufRead> Prefilter<R> {
    fn new(inner: R) -> Self {
        Prefilter {
            inner,
            line: Vec::new(),
            pos: 0,
            filter: LineFilter::new(),
            complete: false,
        }
    }
}

impl<R: io::BufRead> Read for Prefilter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.line.len() {
            self.line.clear();
            self.pos = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            self.complete = self.line.ends_with(b"\n");
            if !self.filter.keep(&self.line) {
                self.line.clear();
            }
        }
        let n = buf.len().min(self.line.len() - self.pos);
        buf[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Parses report text, keeping at most `limit` changes.
pub fn parse(text: &str, limit: usize) -> Result<Report, Problem> {
    if !text.ends_with('\n') {
        return Err(Problem::Truncated);
    }
    walk(StrInput::new(text), limit)
}

fn parse_chars<I: Iterator<Item = char>>(chars: I, limit: usize) -> Result<Report, Problem> {
    walk(BufferedInput::new(chars), limit)
}

fn walk<T: Input>(input: T, limit: usize) -> Result<Report, Problem> {
    let mut walker = Walker {
        parser: Parser::new(input),
        anchors: HashMap::new(),
    };
    walker.report(limit)
}

/// Pulls YAML events and reads the report's shape from them.
struct Walker<'a, T: Input> {
    parser: Parser<'a, T>,
    anchors: HashMap<usize, Option<String>>,
}

/// The fields of one resource status, while its events are read.
#[derive(Default)]
struct Status {
    resource: Option<String>,
    resource_type: Option<String>,
    title: Option<String>,
    corrective: bool,
}

/// Collects changes across resources.
struct Collector {
    limit: usize,
    report: Report,
}

impl Collector {
    fn push(&mut self, change: Change) {
        if self.report.changes.len() < self.limit {
            self.report.changes.push(change);
        } else {
            self.report.changes_truncated += 1;
        }
    }
}

impl<'a, T: Input> Walker<'a, T> {
    fn next(&mut self) -> Result<Event<'a>, Problem> {
        match self.parser.next_event() {
            Some(Ok((event, _))) => Ok(event),
            Some(Err(e)) => Err(Problem::Yaml(e)),
            None => Err(Problem::Truncated),
        }
    }

    /// The next key of a mapping whose start was read, with the first event
    /// of its value; `None` at the mapping's end. Entries whose key is not
    /// a scalar are skipped.
    fn field(&mut self) -> Result<Option<(Cow<'a, str>, Event<'a>)>, Problem> {
        loop {
            match self.next()? {
                Event::MappingEnd => return Ok(None),
                Event::Scalar(key, ..) => return Ok(Some((key, self.next()?))),
                other => {
                    self.skip(other)?;
                    let value = self.next()?;
                    self.skip(value)?;
                }
            }
        }
    }

    fn report(&mut self, limit: usize) -> Result<Report, Problem> {
        let not_a_report = Problem::NotAReport("the document is not a mapping");
        if !matches!(self.next()?, Event::StreamStart) {
            return Err(not_a_report);
        }
        match self.next()? {
            Event::DocumentStart(_) => {}
            Event::StreamEnd => return Err(Problem::NotAReport("the file is empty")),
            _ => return Err(not_a_report),
        }
        if !matches!(self.next()?, Event::MappingStart(..)) {
            return Err(not_a_report);
        }
        let mut collector = Collector {
            limit,
            report: Report::default(),
        };
        let mut format = None;
        let mut statuses = false;
        let mut closing_key = false;
        while let Some((key, value)) = self.field()? {
            match &*key {
                "transaction_uuid" => collector.report.transaction_uuid = self.value(value)?,
                "report_format" => {
                    format = self.value(value)?.and_then(|f| f.parse::<u32>().ok());
                }
                "resource_statuses" => {
                    statuses = true;
                    self.statuses(value, &mut collector)?;
                }
                "corrective_change" => {
                    closing_key = true;
                    self.skip(value)?;
                }
                _ => self.skip(value)?,
            }
        }
        match self.next()? {
            Event::DocumentEnd | Event::StreamEnd => {}
            _ => return Err(Problem::NotAReport("the document does not end")),
        }
        if !statuses {
            // Every report has them; one with a report_format but none was
            // cut before them.
            return Err(if format.is_some() {
                Problem::Truncated
            } else {
                Problem::NotAReport("it has no resource_statuses")
            });
        }
        // Since report format 6 (Puppet 4.6) `corrective_change` follows
        // resource_statuses: without it the file was cut at a line end.
        if format.is_some_and(|f| f >= 6) && !closing_key {
            return Err(Problem::Truncated);
        }
        Ok(collector.report)
    }

    /// `resource_statuses`: a mapping of `Type[title]` to a status.
    fn statuses(&mut self, first: Event<'a>, out: &mut Collector) -> Result<(), Problem> {
        match first {
            Event::MappingStart(..) => {}
            // `resource_statuses: {}` written as null, or an alias.
            other => return self.skip(other),
        }
        loop {
            let key = match self.next()? {
                Event::MappingEnd => return Ok(()),
                other => self.value(other)?,
            };
            match self.next()? {
                Event::MappingStart(..) => self.status(key, out)?,
                other => self.skip(other)?,
            }
        }
    }

    /// One resource status, its mapping start already read.
    fn status(&mut self, key: Option<String>, out: &mut Collector) -> Result<(), Problem> {
        let mut status = Status::default();
        let mut pending: Vec<Change> = Vec::new();
        let room = out.limit.saturating_sub(out.report.changes.len());
        while let Some((field, value)) = self.field()? {
            match &*field {
                "resource" => status.resource = self.value(value)?,
                "resource_type" => status.resource_type = self.value(value)?,
                "title" => status.title = self.value(value)?,
                "corrective_change" => status.corrective = is_true(self.value(value)?),
                "events" => self.events(value, &mut pending, room)?,
                _ => self.skip(value)?,
            }
        }
        let resource = status.resource.or(key).unwrap_or_default();
        let (key_type, key_title) = split_resource(&resource);
        let resource_type = status.resource_type.unwrap_or(key_type);
        let title = status.title.unwrap_or(key_title);
        let mut changed = false;
        let mut corrective = status.corrective;
        for mut change in pending {
            changed |= matches!(change.status, ChangeStatus::Noop | ChangeStatus::Success);
            corrective |= change.corrective;
            if out.report.changes.len() < out.limit {
                change.resource.clone_from(&resource);
                change.resource_type.clone_from(&resource_type);
                change.title.clone_from(&title);
            }
            out.push(change);
        }
        if changed {
            let counts = &mut out.report.corrective_change;
            if corrective {
                counts.corrective += 1;
            } else {
                counts.intentional += 1;
            }
        }
        Ok(())
    }

    /// A status's `events`: a sequence of event mappings. Past the first
    /// `room`, which the limit leaves out, only their status and whether
    /// they are corrective are read.
    fn events(
        &mut self,
        first: Event<'a>,
        out: &mut Vec<Change>,
        room: usize,
    ) -> Result<(), Problem> {
        match first {
            Event::SequenceStart(..) => {}
            other => return self.skip(other),
        }
        loop {
            match self.next()? {
                Event::SequenceEnd => return Ok(()),
                Event::MappingStart(..) => {
                    if let Some(change) = self.event(out.len() < room)? {
                        out.push(change);
                    }
                }
                other => self.skip(other)?,
            }
        }
    }

    /// One event, its mapping start already read; `None` for an event
    /// without a known status. Without `whole`, only its status and
    /// `corrective_change` are read: it is only counted.
    fn event(&mut self, whole: bool) -> Result<Option<Change>, Problem> {
        let mut change = Change {
            resource: String::new(),
            resource_type: String::new(),
            title: String::new(),
            property: None,
            previous: None,
            desired: None,
            message: String::new(),
            status: ChangeStatus::Failure,
            corrective: false,
        };
        let mut status = None;
        while let Some((field, value)) = self.field()? {
            match &*field {
                "status" => status = self.value(value)?,
                "corrective_change" => change.corrective = is_true(self.value(value)?),
                _ if !whole => self.skip(value)?,
                "property" => change.property = self.value(value)?,
                "previous_value" => change.previous = self.value(value)?,
                "desired_value" => change.desired = self.value(value)?,
                "message" => change.message = self.value(value)?.unwrap_or_default(),
                _ => self.skip(value)?,
            }
        }
        change.status = match status.as_deref() {
            Some("noop") => ChangeStatus::Noop,
            Some("success") => ChangeStatus::Success,
            Some("failure") => ChangeStatus::Failure,
            Some("audit") => ChangeStatus::Audit,
            _ => return Ok(None),
        };
        // Puppet 7 stringifies a Binary desired value (file content's
        // checksum) as base64; show it as the checksum the message names.
        for value in [&mut change.previous, &mut change.desired] {
            if let Some(checksum) = value.as_deref().and_then(checksum_from_base64) {
                *value = Some(checksum);
            }
        }
        Ok(Some(change))
    }

    /// A value as text: a scalar's text (decoded when `!binary`), `None`
    /// for null, a sequence or mapping as compact JSON; cut at
    /// [`MAX_VALUE_BYTES`].
    fn value(&mut self, first: Event<'a>) -> Result<Option<String>, Problem> {
        let (anchor, text) = match first {
            Event::Scalar(text, style, anchor, tag) => {
                (anchor, scalar_text(&text, style, tag.as_deref()))
            }
            Event::Alias(id) => return Ok(self.anchors.get(&id).cloned().flatten()),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                (anchor, Some(self.render(first)?))
            }
            _ => return Err(Problem::Truncated),
        };
        let text = text.map(|mut t| {
            shorten(&mut t, MAX_VALUE_BYTES);
            t
        });
        self.remember(anchor, &text);
        Ok(text)
    }

    fn remember(&mut self, anchor: usize, text: &Option<String>) {
        if anchor > 0 && self.anchors.len() < MAX_ANCHORS {
            self.anchors.insert(anchor, text.clone());
        }
    }

    /// A sequence or mapping as compact JSON, stopping to write (but not to
    /// read) once past the size budget.
    fn render(&mut self, first: Event<'a>) -> Result<String, Problem> {
        /// An open collection: whether it is a mapping, and how many keys
        /// and values (or items) it has had.
        struct Open {
            map: bool,
            items: usize,
        }
        let budget = MAX_VALUE_BYTES + 4;
        let mut out = String::new();
        let mut stack: Vec<Open> = Vec::new();
        let mut event = first;
        loop {
            let is_key = stack.last().is_some_and(|o| o.map && o.items % 2 == 0);
            let separator = match stack.last_mut() {
                Some(o) if !matches!(event, Event::SequenceEnd | Event::MappingEnd) => {
                    let sep = match (o.map, o.items) {
                        (_, 0) => "",
                        (true, n) if n % 2 == 1 => ":",
                        _ => ",",
                    };
                    o.items += 1;
                    sep
                }
                _ => "",
            };
            let mut piece = String::from(separator);
            match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    let map = matches!(event, Event::MappingStart(..));
                    piece.push(if map { '{' } else { '[' });
                    stack.push(Open { map, items: 0 });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let open = stack.pop().ok_or(Problem::Truncated)?;
                    piece.push(if open.map { '}' } else { ']' });
                }
                Event::Scalar(text, style, anchor, tag) => {
                    let value = scalar_text(&text, style, tag.as_deref());
                    piece.push_str(&json_scalar(value.as_deref(), style, is_key));
                    self.remember(anchor, &value);
                }
                Event::Alias(id) => {
                    let value = self.anchors.get(&id).cloned().flatten();
                    piece.push_str(&json_scalar(
                        value.as_deref(),
                        ScalarStyle::SingleQuoted,
                        is_key,
                    ));
                }
                _ => return Err(Problem::Truncated),
            }
            if out.len() <= budget {
                out.push_str(&piece);
            }
            if stack.is_empty() {
                return Ok(out);
            }
            event = self.next()?;
        }
    }

    /// Skips the node that starts with `first`, remembering anchored
    /// scalars on the way.
    fn skip(&mut self, first: Event<'a>) -> Result<(), Problem> {
        let mut depth = 0usize;
        let mut event = first;
        loop {
            match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
                Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
                Event::Scalar(text, style, anchor, tag) => {
                    if anchor > 0 {
                        let mut value = scalar_text(&text, style, tag.as_deref());
                        if let Some(v) = &mut value {
                            shorten(v, MAX_VALUE_BYTES);
                        }
                        self.remember(anchor, &value);
                    }
                }
                Event::Alias(_) => {}
                _ => return Err(Problem::Truncated),
            }
            if depth == 0 {
                return Ok(());
            }
            event = self.next()?;
        }
    }
}

/// A scalar's text: `None` for YAML null, decoded for `!binary`.
fn scalar_text(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Option<String> {
    if let Some(tag) = tag
        && tag.suffix == "binary"
    {
        let compact: String = text.split_ascii_whitespace().collect();
        return Some(
            match base64::engine::general_purpose::STANDARD.decode(compact) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(_) => text.to_owned(),
            },
        );
    }
    if style == ScalarStyle::Plain && tag.is_none() && is_null(text) {
        return None;
    }
    Some(text.to_owned())
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn is_true(value: Option<String>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A scalar inside a rendered collection: plain numbers, booleans and null
/// as JSON literals, everything else (and keys) as JSON strings.
fn json_scalar(value: Option<&str>, style: ScalarStyle, is_key: bool) -> String {
    let Some(value) = value else {
        return if is_key { "\"\"".into() } else { "null".into() };
    };
    if !is_key && style == ScalarStyle::Plain {
        if matches!(value, "true" | "false") {
            return value.to_owned();
        }
        if serde_json::from_str::<serde_json::Number>(value).is_ok() {
            return value.to_owned();
        }
    }
    serde_json::Value::String(value.to_owned()).to_string()
}

/// `File[/etc/motd]` → (`File`, `/etc/motd`).
fn split_resource(resource: &str) -> (String, String) {
    match resource.split_once('[') {
        Some((ty, rest)) if rest.ends_with(']') => {
            (ty.to_owned(), rest[..rest.len() - 1].to_owned())
        }
        _ => (String::new(), resource.to_owned()),
    }
}

/// The checksum a base64 value encodes, when it encodes one
/// (`e3NoYTI1Nn1h...` → `{sha256}a...`).
fn checksum_from_base64(value: &str) -> Option<String> {
    if value.len() < 12 || !value.len().is_multiple_of(4) || value.starts_with('{') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (algo, digest) = text.strip_prefix('{')?.split_once('}')?;
    let known = [
        "md5",
        "md5lite",
        "sha1",
        "sha1lite",
        "sha224",
        "sha256",
        "sha256lite",
        "sha384",
        "sha512",
        "mtime",
        "ctime",
    ];
    (known.contains(&algo) && !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_graphic()))
        .then_some(text)
}

/// The characters of a UTF-8 byte stream, invalid sequences replaced by
/// U+FFFD; a read error ends the stream and is kept in `error`.
struct Utf8Chars<R> {
    reader: R,
    buffer: String,
    pos: usize,
    carry: Vec<u8>,
    done: bool,
    error: Option<io::Error>,
}

impl<R: Read> Utf8Chars<R> {
    fn new(reader: R) -> Self {
        Utf8Chars {
            reader,
            buffer: String::new(),
            pos: 0,
            carry: Vec::new(),
            done: false,
            error: None,
        }
    }

    /// Reads the next chunk into `buffer`; false at the end.
    fn refill(&mut self) -> bool {
        let mut chunk = std::mem::take(&mut self.carry);
        let start = chunk.len();
        chunk.resize(start + 64 * 1024, 0);
        let n = loop {
            match self.reader.read(&mut chunk[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    self.done = true;
                    return false;
                }
            }
        };
        chunk.truncate(start + n);
        let at_end = n == 0;
        if at_end {
            self.done = true;
            if chunk.is_empty() {
                return false;
            }
        }
        self.buffer.clear();
        self.pos = 0;
        let mut rest = &chunk[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    self.buffer.push_str(valid);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // Checked valid just above.
                    self.buffer
                        .push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            self.buffer.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        // A character split across chunks.
                        None if !at_end => {
                            self.carry = after.to_vec();
                            break;
                        }
                        None => {
                            self.buffer.push(char::REPLACEMENT_CHARACTER);
                            break;
                        }
                    }
                }
            }
        }
        true
    }
}

impl<R: Read> Iterator for Utf8Chars<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        loop {
            if let Some(c) = self.buffer[self.pos..].chars().next() {
                self.pos += c.len_utf8();
                return Some(c);
            }
            if self.done || !self.refill() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/reports/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A report of `n` file resources each with a pending content change,
    /// in the shape of the real noop report (its header, one of its
    /// resource statuses repeated, its tail).
    pub fn generated(n: usize) -> String {
        let real = fixture("puppet-7.23-noop.yaml");
        let (head, rest) = real.split_once("resource_statuses:\n").unwrap();
        let tail = &rest[rest.find("\ncorrective_change: false\n").unwrap() + 1..];
        let start = rest
            .find("  File[/tmp/kick-e2e/node1.example.com/managed.txt]:\n")
            .unwrap();
        let end = start + rest[start..].find("\n  Schedule[puppet]:").unwrap() + 1;
        let block = &rest[start..end];
        let mut text = String::with_capacity(head.len() + n * (block.len() + 8) + tail.len());
        text.push_str(head);
        text.push_str("resource_statuses:\n");
        for i in 0..n {
            text.push_str(&block.replace("managed.txt", &format!("managed-{i}.txt")));
        }
        text.push_str(tail);
        text
    }

    #[test]
    fn a_real_noop_report_lists_each_pending_change() {
        let r = parse(&fixture("puppet-7.23-noop.yaml"), 100).unwrap();
        assert_eq!(
            r.transaction_uuid.as_deref(),
            Some("30daa2f6-30a0-4568-8e0c-48817dcb21bc")
        );
        assert_eq!(r.changes.len(), 3);
        assert_eq!(r.changes_truncated, 0);
        let c = &r.changes[2];
        assert_eq!(
            c.resource,
            "File[/tmp/kick-e2e/node1.example.com/managed.txt]"
        );
        assert_eq!(c.resource_type, "File");
        assert_eq!(c.title, "/tmp/kick-e2e/node1.example.com/managed.txt");
        assert_eq!(c.property.as_deref(), Some("ensure"));
        assert_eq!(c.previous.as_deref(), Some("absent"));
        assert_eq!(c.desired.as_deref(), Some("file"));
        assert_eq!(c.message, "current_value 'absent', should be 'file' (noop)");
        assert_eq!(c.status, ChangeStatus::Noop);
        assert!(!c.corrective);
        assert_eq!(
            r.corrective_change,
            CorrectiveCounts {
                corrective: 0,
                intentional: 3
            }
        );
    }

    #[test]
    fn a_real_corrective_run_decodes_puppets_base64_checksum() {
        let r = parse(&fixture("puppet-7.23-corrective.yaml"), 100).unwrap();
        let content = r
            .changes
            .iter()
            .find(|c| c.property.as_deref() == Some("content"))
            .unwrap();
        assert_eq!(
            content.desired.as_deref(),
            Some("{sha256}aa1e7b7c0a08357466dcf0421c74440665be25f0d121bf11b07356b2a86407da")
        );
        assert!(
            content
                .message
                .contains(content.desired.as_deref().unwrap())
        );
        assert!(content.corrective && content.status == ChangeStatus::Success);
        // Two events on managed.txt (content, mode) count as one resource.
        assert_eq!(
            r.corrective_change,
            CorrectiveCounts {
                corrective: 1,
                intentional: 1
            }
        );
    }

    #[test]
    fn a_real_failed_resource_is_a_failure_and_lists_render_as_json() {
        let r = parse(&fixture("puppet-7.23-failmixed.yaml"), 100).unwrap();
        let exec = r
            .changes
            .iter()
            .find(|c| c.resource == "Exec[always-fails]")
            .unwrap();
        assert_eq!(exec.status, ChangeStatus::Failure);
        assert_eq!(exec.previous.as_deref(), Some("notrun"));
        assert_eq!(exec.desired.as_deref(), Some(r#"["0"]"#));
        // The failed resource does not count as changed.
        assert_eq!(r.corrective_change.intentional, 1);
    }

    #[test]
    fn ruby_tags_binary_strings_and_aliases() {
        let r = parse(&fixture("ruby-tags-binary.yaml"), 100).unwrap();
        assert_eq!(
            r.transaction_uuid.as_deref(),
            Some("4e6f1d7c-6b2a-4c55-9b1e-2b1c0f1c7e11")
        );
        // The event with an unknown status is left out.
        assert_eq!(r.changes.len(), 2, "{:#?}", r.changes);
        let file = &r.changes[0];
        assert_eq!(file.resource, "File[/etc/latin1.conf]");
        assert_eq!(file.message, "content changed in \u{fffd} latin-1 file");
        assert_eq!(file.status, ChangeStatus::Success);
        let user = &r.changes[1];
        assert_eq!(
            (user.resource_type.as_str(), user.title.as_str()),
            ("User", "deploy")
        );
        assert_eq!(user.previous.as_deref(), Some("[\"adm\",\"web-\u{fffd}\"]"));
        assert_eq!(user.desired.as_deref(), Some(r#"["adm","sudo"]"#));
        assert_eq!(user.status, ChangeStatus::Noop);
        assert!(user.corrective);
        assert_eq!(
            r.corrective_change,
            CorrectiveCounts {
                corrective: 1,
                intentional: 1
            }
        );
    }

    #[test]
    fn five_thousand_resources_are_capped_at_the_limit() {
        let text = generated(5000);
        let r = parse(&text, 100).unwrap();
        assert_eq!(r.changes.len(), 100);
        assert_eq!(r.changes_truncated, 4900);
        assert_eq!(r.corrective_change.intentional, 5000);
        assert_eq!(
            r.changes[99].resource,
            "File[/tmp/kick-e2e/node1.example.com/managed-99.txt]"
        );
        let none = parse(&text, 0).unwrap();
        assert!(none.changes.is_empty());
        assert_eq!(none.changes_truncated, 5000);
    }

    #[test]
    fn long_values_are_cut_at_one_kib() {
        let long = "x".repeat(5000);
        let text = fixture("puppet-7.23-noop.yaml")
            .replace("desired_value: file\n", &format!("desired_value: {long}\n"))
            .replace(
                "desired_value: directory\n",
                &format!("desired_value:\n      - {long}\n      - {long}\n"),
            );
        let r = parse(&text, 100).unwrap();
        for c in &r.changes[..] {
            let d = c.desired.as_deref().unwrap();
            assert!(d.len() <= MAX_VALUE_BYTES, "{}", d.len());
        }
        assert!(r.changes[2].desired.as_deref().unwrap().ends_with("xx..."));
        assert!(
            r.changes[0]
                .desired
                .as_deref()
                .unwrap()
                .starts_with("[\"xxx")
        );
    }

    #[test]
    fn a_truncated_report_is_an_error_wherever_it_was_cut() {
        let text = fixture("puppet-7.23-noop.yaml");
        let closing = text.find("\ncorrective_change: false\n").unwrap();
        // At every line end before the closing key, and mid-line.
        let cuts = text[..closing]
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .step_by(3)
            .chain((1..closing).step_by(211));
        for cut in cuts {
            let r = parse(&text[..cut], 100);
            assert!(
                r.is_err(),
                "cut at {cut} parsed: {:?}",
                r.map(|r| r.changes.len())
            );
        }
        assert!(matches!(
            parse(&text[..text.len() - 1], 100),
            Err(Problem::Truncated)
        ));
    }

    #[test]
    fn other_documents_are_not_reports() {
        for text in [
            "\n",
            "- a\n- b\n",
            "host: x\nlogs: []\n",
            "just text\n",
            "a: [1\n",
        ] {
            let e = parse(text, 10).unwrap_err();
            assert!(
                matches!(e, Problem::NotAReport(_) | Problem::Yaml(_)),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_read_or_refused_without_overflowing_the_stack() {
        let nested = |depth: usize| {
            let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            fixture("puppet-7.23-noop.yaml")
                .replace("desired_value: file\n", &format!("desired_value: {deep}\n"))
        };
        let r = parse(&nested(50), 100).unwrap();
        assert!(r.changes[2].desired.as_deref().unwrap().starts_with("[[[["));
        // The parser's own recursion limit refuses absurd nesting cleanly.
        assert!(matches!(
            parse(&nested(100_000), 100),
            Err(Problem::Yaml(_))
        ));
    }

    #[test]
    fn utf8_chars_across_chunks_and_invalid_bytes() {
        // A reader that hands out one byte at a time splits every
        // multi-byte character.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let bytes = b"a\xc3\xa9b\xffc\xe2\x82";
        let text: String = Utf8Chars::new(OneByte(bytes)).collect();
        assert_eq!(text, "a\u{e9}b\u{fffd}c\u{fffd}");
    }

    #[test]
    fn files_read_in_memory_and_streamed_give_the_parsed_result() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "puppet-7.23-noop.yaml",
            "puppet-7.23-corrective.yaml",
            "puppet-7.23-failmixed.yaml",
            "puppet-7.23-complex-keys.yaml",
            "ruby-tags-binary.yaml",
            "generated",
        ] {
            let text = match name {
                "generated" => generated(50),
                _ => fixture(name),
            };
            let path = dir.path().join(name);
            std::fs::write(&path, &text).unwrap();
            let parsed = parse(&text, 100).unwrap();
            assert_eq!(read_with(&path, 100, u64::MAX).unwrap(), parsed, "{name}");
            assert_eq!(read_with(&path, 100, 0).unwrap(), parsed, "{name} streamed");
            std::fs::write(&path, &text[..text.len() / 2]).unwrap();
            for in_memory in [u64::MAX, 0] {
                let e = read_with(&path, 100, in_memory).unwrap_err().to_string();
                assert!(e.contains(path.to_str().unwrap()), "{e}");
            }
        }
        let e = read(&dir.path().join("absent.yaml"), 1).unwrap_err();
        assert!(matches!(e, ReportError::Io { .. }), "{e}");
    }

    fn prefiltered(text: &str) -> String {
        let mut kept = String::new();
        Prefilter::new(text.as_bytes())
            .read_to_string(&mut kept)
            .unwrap();
        kept
    }

    #[test]
    fn logs_and_metrics_are_skipped_and_everything_else_kept() {
        let text = "--- !ruby/object:Puppet::Transaction::Report\nhost: a\nlogs:\n- level: info\n  \
                    message: |-\n    two\n\n    lines\n- level: notice\nmetrics:\n  resources:\n    \
                    name: r\nresource_statuses: {}\nlogs: []\n---\nx: 1\n";
        let kept = prefiltered(text);
        assert_eq!(
            kept,
            "--- !ruby/object:Puppet::Transaction::Report\nhost: a\nresource_statuses: {}\n---\nx: 1\n"
        );
    }

    #[test]
    fn status_and_event_fields_that_are_not_read_are_dropped() {
        let text = "resource_statuses:\n  File[/a]:\n    title: \"/a\"\n    tags:\n    - file\n    \
                    - class\n    line: 3\n    resource_type: File\n    events:\n    \
                    - audited: false\n      property: mode\n      tags:\n      - dropped\n      \
                    message: |-\n        two\n\n        lines\n      historical_value:\n      \
                    - h\n      previous_value:\n      - p\n      name: mode_changed\n      \
                    status: noop\n    - property: owner\n      time: 1\n    \
                    containment_path:\n    - Stage[main]\n    corrective_change: false\n  \
                    Notify[b]: !ruby/object:Puppet::Resource::Status\n    time: 1\n    \
                    resource: Notify[b]\ncorrective_change: false\n";
        let kept = prefiltered(text);
        assert_eq!(
            kept,
            "resource_statuses:\n  File[/a]:\n    resource_type: File\n    events:\n    \
             - audited: false\n      property: mode\n      message: |-\n        two\n\n        \
             lines\n      previous_value:\n      - p\n      status: noop\n    \
             - property: owner\n    corrective_change: false\n  \
             Notify[b]: !ruby/object:Puppet::Resource::Status\ncorrective_change: false\n"
        );
        // What is dropped is never read: the report reads the same without it.
        assert_eq!(parse(&kept, 10).unwrap(), parse(text, 10).unwrap());
    }

    #[test]
    fn statuses_under_complex_keys_keep_their_whole_key() {
        // Puppet 7.23's report of a noop `puppet apply`: a title past 128
        // characters with `: ` in it (a folded single-quoted `? ` key) and one
        // with a line break (a `? |-` key whose second line looks like a field).
        let text = fixture("puppet-7.23-complex-keys.yaml");
        let long = "a very long notify title, with a colon: here, that goes on and on past the one \
                    hundred and twenty eight characters at which Psych writes a complex key instead";
        let r = parse(
            &String::from_utf8(prefilter(text.as_bytes(), u64::MAX).unwrap().kept).unwrap(),
            100,
        )
        .unwrap();
        assert_eq!(r, parse(&text, 100).unwrap());
        let resources: Vec<(&str, &str, &str)> = r
            .changes
            .iter()
            .map(|c| {
                (
                    c.resource.as_str(),
                    c.resource_type.as_str(),
                    c.title.as_str(),
                )
            })
            .collect();
        assert_eq!(
            resources,
            [
                ("Notify[a short one]", "Notify", "a short one"),
                (&format!("Notify[{long}]"), "Notify", long),
                (
                    "Notify[two\nlines: in a title]",
                    "Notify",
                    "two\nlines: in a title"
                ),
                (
                    "File[/tmp/ck/files/plain.conf]",
                    "File",
                    "/tmp/ck/files/plain.conf"
                ),
            ]
        );
    }

    #[test]
    fn both_ways_of_reading_drop_the_same_lines() {
        // Many 64 KiB chunks, and lines longer than one, kept and dropped.
        let long = "x".repeat(200 * 1024);
        let long_lines = generated(3)
            .replacen("    tags:\n", &format!("    tags:\n    - {long}\n"), 1)
            .replacen("      message: ", &format!("      message: {long}"), 1);
        assert_eq!(long_lines.matches(&long).count(), 2);
        for text in [
            fixture("puppet-7.23-noop.yaml"),
            fixture("puppet-7.23-failmixed.yaml"),
            fixture("puppet-7.23-complex-keys.yaml"),
            generated(2000),
            long_lines,
        ] {
            let kept = prefiltered(&text);
            let filtered = prefilter(text.as_bytes(), u64::MAX).unwrap();
            assert!(filtered.complete);
            assert_eq!(String::from_utf8(filtered.kept).unwrap(), kept);
            assert!(
                kept.len() < text.len() / 2,
                "{} of {}",
                kept.len(),
                text.len()
            );
        }
    }

    #[test]
    fn checksums_in_base64_are_decoded_and_nothing_else() {
        assert_eq!(
            checksum_from_base64("e3NoYTI1Nn1hYTFl").as_deref(),
            Some("{sha256}aa1e")
        );
        assert_eq!(checksum_from_base64("aGVsbG8gd29ybGQh"), None); // "hello world!"
        assert_eq!(checksum_from_base64("directory"), None);
        assert_eq!(checksum_from_base64("{sha256}aa1e"), None);
    }

    #[test]
    fn resources_split_into_type_and_title() {
        assert_eq!(
            split_resource("File[/etc/a[1]]"),
            ("File".into(), "/etc/a[1]".into())
        );
        assert_eq!(split_resource("odd"), (String::new(), "odd".into()));
    }
}
