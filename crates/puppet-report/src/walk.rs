//! The event walk: the YAML read as a stream of parser events, only the fields used kept
//! (handed to the change model) and everything else skipped event by event.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use orchestrator_types::psick::{Change, shorten};
use saphyr_parser::{BufferedInput, Event, Input, Parser, ScalarStyle, StrInput, Tag};

use crate::change::{self, Collector, Report, Status};
use crate::{MAX_VALUE_BYTES, Problem};

/// How many anchored values are remembered for aliases (Psych anchors an
/// object the report holds twice; Puppet's reports hardly ever do).
const MAX_ANCHORS: usize = 4096;

/// Parses report text, keeping at most `limit` changes.
pub fn parse(text: &str, limit: usize) -> Result<Report, Problem> {
    if !text.ends_with('\n') {
        return Err(Problem::Truncated);
    }
    walk(StrInput::new(text), limit)
}

pub(crate) fn parse_chars<I: Iterator<Item = char>>(
    chars: I,
    limit: usize,
) -> Result<Report, Problem> {
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
        out.add_status(status, key, pending);
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
        let mut change = change::blank();
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
        Ok(change::finish_event(change, status.as_deref()))
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
pub(crate) fn scalar_text(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Option<String> {
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
