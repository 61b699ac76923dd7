//! Small YAML documents read into JSON values with the same parser as the
//! report walk: `last_run_summary.yaml`, and the few top-level fields
//! pxp-module-puppet takes from a run report. One YAML reader in the task,
//! not two.
//!
//! Only the top-level entries asked for are built; the others are skipped
//! event by event, so a large report's `resource_statuses` and `logs` cost
//! no memory. Tags (Ruby classes) are ignored, `!binary` is decoded, and
//! plain scalars are typed as YAML 1.2's core schema types them: `~`,
//! `null` and nothing are null, `true`/`false` (also `True`, `TRUE`, ...)
//! booleans, `12`, `-3`, `0x1f`, `0o17` integers, `2.5`, `1e3` numbers;
//! anything else, quoted scalars, an integer with a leading zero (`0123`,
//! an octal in YAML 1.1), and `.inf`/`.nan` (which JSON cannot hold) are
//! strings.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, StrInput, Tag};
use serde_json::{Map, Number, Value};

use crate::Problem;

/// The entries of the document's top-level mapping whose key `wanted`
/// accepts; `Ok(None)` when the document is not a mapping (a scalar, a
/// sequence, or nothing). The whole document is read, so a syntax error
/// anywhere in it is an error.
pub fn mapping(
    text: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<Option<Map<String, Value>>, Problem> {
    let mut reader = Reader {
        parser: Parser::new(StrInput::new(text)),
        anchors: HashMap::new(),
    };
    if !matches!(reader.next()?, Event::StreamStart) {
        return Err(Problem::Truncated);
    }
    let map = match reader.next()? {
        Event::StreamEnd => return Ok(None),
        Event::DocumentStart(_) => match reader.next()? {
            Event::MappingStart(..) => {
                let mut map = Map::new();
                loop {
                    let key = match reader.next()? {
                        Event::MappingEnd => break,
                        Event::Scalar(key, style, _, tag) => key_text(&key, style, tag.as_deref()),
                        other => {
                            // A complex key: never one asked for.
                            reader.value(other, false)?;
                            let value = reader.next()?;
                            reader.value(value, false)?;
                            continue;
                        }
                    };
                    let first = reader.next()?;
                    let keep = wanted(&key);
                    let value = reader.value(first, keep)?;
                    if keep {
                        map.insert(key, value);
                    }
                }
                Some(map)
            }
            other => {
                reader.value(other, false)?;
                None
            }
        },
        _ => return Err(Problem::Truncated),
    };
    if !matches!(reader.next()?, Event::DocumentEnd) || !matches!(reader.next()?, Event::StreamEnd)
    {
        return Err(Problem::NotAReport("the file holds more than one document"));
    }
    Ok(map)
}

/// Pulls events and builds values from them.
struct Reader<'a> {
    parser: Parser<'a, StrInput<'a>>,
    /// Anchored values, for aliases (only those built).
    anchors: HashMap<usize, Value>,
}

/// A collection being built.
enum Open {
    Seq(usize, Vec<Value>),
    /// Its entries so far, and the key whose value comes next.
    Map(usize, Map<String, Value>, Option<String>),
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<Event<'a>, Problem> {
        match self.parser.next_event() {
            Some(Ok((event, _))) => Ok(event),
            Some(Err(e)) => Err(Problem::Yaml(e)),
            None => Err(Problem::Truncated),
        }
    }

    /// The node that starts with `first`, as a value when `build` (else
    /// read past, and null). Built without recursion: nesting costs no
    /// stack.
    fn value(&mut self, first: Event<'a>, build: bool) -> Result<Value, Problem> {
        let mut stack: Vec<Open> = Vec::new();
        let mut depth = 0usize;
        let mut event = first;
        loop {
            let done = match event {
                Event::SequenceStart(anchor, _) => {
                    depth += 1;
                    if build {
                        stack.push(Open::Seq(anchor, Vec::new()));
                    }
                    None
                }
                Event::MappingStart(anchor, _) => {
                    depth += 1;
                    if build {
                        stack.push(Open::Map(anchor, Map::new(), None));
                    }
                    None
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    depth = depth.checked_sub(1).ok_or(Problem::Truncated)?;
                    match stack.pop() {
                        Some(Open::Seq(anchor, items)) => Some((anchor, Value::Array(items))),
                        Some(Open::Map(anchor, map, _)) => Some((anchor, Value::Object(map))),
                        None => Some((0, Value::Null)),
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    let in_key = matches!(stack.last(), Some(Open::Map(_, _, None)));
                    let value = if !build {
                        Value::Null
                    } else if in_key {
                        Value::String(key_text(&text, style, tag.as_deref()))
                    } else {
                        scalar(&text, style, tag.as_deref())
                    };
                    Some((anchor, value))
                }
                Event::Alias(id) => Some((0, self.anchors.get(&id).cloned().unwrap_or_default())),
                _ => return Err(Problem::Truncated),
            };
            if let Some((anchor, value)) = done {
                if build && anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                match stack.last_mut() {
                    Some(Open::Seq(_, items)) => items.push(value),
                    Some(Open::Map(_, _, key @ None)) => {
                        *key = Some(match value {
                            Value::String(s) => s,
                            other => other.to_string(),
                        });
                    }
                    Some(Open::Map(_, map, key)) => {
                        map.insert(key.take().unwrap_or_default(), value);
                    }
                    None if depth == 0 => return Ok(value),
                    // Read past, not built.
                    None => {}
                }
            }
            event = self.next()?;
        }
    }
}

/// A mapping key as text (null as the empty string).
fn key_text(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> String {
    crate::walk::scalar_text(text, style, tag).unwrap_or_default()
}

/// A scalar as a value: quoted, tagged `!!str` or `!binary`, a string;
/// plain, typed as the module docs say.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    let typed = style == ScalarStyle::Plain
        && tag.is_none_or(|t| !matches!(t.suffix.as_str(), "str" | "binary"));
    if !typed {
        return Value::String(crate::walk::scalar_text(text, style, tag).unwrap_or_default());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    integer(text)
        .or_else(|| float(text))
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

/// `12`, `+12`, `-3`, `0x1f`, `0o17`; not `0123`.
fn integer(text: &str) -> Option<Value> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = digits.strip_prefix("0o") {
        (8, oct)
    } else {
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        (10, digits)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if !negative {
        return Some(Value::from(magnitude));
    }
    let value = 0i64.checked_sub_unsigned(magnitude)?;
    Some(Value::from(value))
}

/// `2.5`, `-1e3`, `.5`: finite numbers only.
fn float(text: &str) -> Option<Value> {
    let looks_numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !looks_numeric {
        return None;
    }
    let mantissa_digits = text
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .trim_start_matches(['+', '-']);
    if mantissa_digits.len() > 1
        && mantissa_digits.starts_with('0')
        && !mantissa_digits.starts_with("0.")
    {
        return None;
    }
    let f: f64 = text.parse().ok()?;
    Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(text: &str) -> Option<Value> {
        mapping(text, |_| true).unwrap().map(Value::Object)
    }

    #[test]
    fn plain_scalars_are_typed_and_quoted_ones_are_text() {
        let doc = "a: 12\nb: -3\nc: 2.5\nd: 7.23.0\ne: '12'\nf: ~\ng:\nh: true\n\
                   i: 0x1f\nj: 0123\nk: .inf\nl: 1e3\nm: \"x\"\nn: False\no: +4\n";
        assert_eq!(
            all(doc).unwrap(),
            json!({"a": 12, "b": -3, "c": 2.5, "d": "7.23.0", "e": "12", "f": null,
                   "g": null, "h": true, "i": 31, "j": "0123", "k": ".inf", "l": 1000.0,
                   "m": "x", "n": false, "o": 4})
        );
    }

    #[test]
    fn tags_are_ignored_and_nesting_kept() {
        let doc = "--- !ruby/object:Puppet::Transaction::Report\n\
                   metrics:\n  resources: !ruby/object:Puppet::Util::Metric\n    values:\n\
                   \x20   - - total\n      - Total\n      - 9\n\
                   bin: !binary |-\n  aGVsbG8=\n\
                   flow: {x: [1, {y: z}], 3: a}\n\
                   anchored: &a [1, 2]\nalias: *a\n";
        assert_eq!(
            all(doc).unwrap(),
            json!({"metrics": {"resources": {"values": [["total", "Total", 9]]}},
                   "bin": "hello", "flow": {"x": [1, {"y": "z"}], "3": "a"},
                   "anchored": [1, 2], "alias": [1, 2]})
        );
    }

    #[test]
    fn only_the_wanted_entries_are_built() {
        let doc = "keep: 1\nskip: {big: [1, 2, [3]]}\n? [complex, key]\n: v\nalso: x\n";
        let map = mapping(doc, |k| k != "skip").unwrap().unwrap();
        assert_eq!(Value::Object(map), json!({"keep": 1, "also": "x"}));
    }

    #[test]
    fn documents_that_are_not_mappings_and_broken_ones() {
        assert_eq!(all(""), None);
        assert_eq!(all("just text\n"), None);
        assert_eq!(all("- a\n- b\n"), None);
        assert!(mapping("[1, 2", |_| true).is_err());
        assert!(mapping("{unclosed\n", |_| true).is_err());
        assert!(mapping("a: 1\n---\nb: 2\n", |_| true).is_err());
        assert!(mapping("a: 1\nb: [\n", |_| true).is_err());
    }
}
