//! The line filter: what of a report is never read (its logs and metrics, most of each
//! resource status and event) is dropped line by line before parsing, from a file read in
//! chunks ([`prefilter`]) or streamed ([`Prefilter`], with [`Utf8Chars`] decoding it).

use std::io::{self, Read};

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
pub(crate) struct LineFilter {
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
pub(crate) struct Filtered {
    pub(crate) kept: Vec<u8>,
    /// Whether the input ended with a line break, as every file Psych
    /// writes does, within the size allowed.
    pub(crate) complete: bool,
}

/// Reads at most `max` bytes of `reader`, keeping the lines
/// [`LineFilter`] keeps. The input is read in chunks rather than whole, so
/// only what is kept is ever held.
pub(crate) fn prefilter(mut reader: impl Read, max: u64) -> io::Result<Filtered> {
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
pub(crate) struct Prefilter<R> {
    inner: R,
    line: Vec<u8>,
    pos: usize,
    filter: LineFilter,
    /// Whether the input's last line ended with a line break, as every
    /// file Psych writes does.
    pub(crate) complete: bool,
}

impl<R: io::BufRead> Prefilter<R> {
    pub(crate) fn new(inner: R) -> Self {
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

/// The characters of a UTF-8 byte stream, invalid sequences replaced by
/// U+FFFD; a read error ends the stream and is kept in `error`.
pub(crate) struct Utf8Chars<R> {
    pub(crate) reader: R,
    buffer: String,
    pos: usize,
    carry: Vec<u8>,
    done: bool,
    pub(crate) error: Option<io::Error>,
}

impl<R: Read> Utf8Chars<R> {
    pub(crate) fn new(reader: R) -> Self {
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
