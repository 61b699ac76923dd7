//! Task input: one JSON object on stdin, else the `PT_*` environment
//! variables, and typed accessors that accept what Bolt and pxp-agent send.
//!
//! Runners pass non-string values in `PT_*` variables JSON-encoded
//! (`"true"`, `"5"`, `"null"`, `"[\"a\"]"`), so the accessors accept booleans
//! and integers as strings too, and `null` always means "absent".

use std::ffi::OsString;
use std::io::{IsTerminal, Read};

use orchestrator_types::psick::params::coerce;
use serde_json::{Map, Value};

use crate::error::Failure;

/// Stdin larger than this is rejected rather than buffered.
const MAX_STDIN: u64 = 8 * 1024 * 1024;

/// The parameters a task was given, metaparameters included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    params: Map<String, Value>,
}

impl Input {
    /// Wraps an already parsed parameter object.
    pub fn from_map(params: Map<String, Value>) -> Self {
        Input { params }
    }

    /// Reads the process's stdin (skipped when it is a terminal) and falls
    /// back to the `PT_*` variables of the environment when stdin is empty.
    pub fn from_process() -> Result<Self, Failure> {
        Self::parse(&read_stdin()?, std::env::vars_os())
    }

    /// Parses stdin text, or the `PT_*` variables when it is blank.
    pub fn parse(
        stdin: &str,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Self, Failure> {
        if !stdin.trim().is_empty() {
            let value: Value = serde_json::from_str(stdin).map_err(|e| {
                Failure::InvalidParams(format!(
                    "stdin is not valid JSON ({e}); send one JSON object such as \
                     {{\"noop\": true}}"
                ))
            })?;
            return match value {
                Value::Object(params) => Ok(Input { params }),
                other => Err(Failure::InvalidParams(format!(
                    "stdin must hold a JSON object of parameters, got {}",
                    coerce::json_type(&other)
                ))),
            };
        }
        let mut params = Map::new();
        for (name, value) in env {
            let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
                continue;
            };
            if let Some(param) = name.strip_prefix("PT_").filter(|p| !p.is_empty()) {
                params.insert(param.to_owned(), decode_env_value(value));
            }
        }
        Ok(Input { params })
    }

    /// The full task name from `_task`, if given.
    pub fn task(&self) -> Result<Option<String>, Failure> {
        self.string("_task")
    }

    /// True when the runner asked for a noop run (`_noop: true`).
    pub fn meta_noop(&self) -> Result<bool, Failure> {
        Ok(self.bool("_noop")?.unwrap_or(false))
    }

    /// The parameters as sent, metaparameters included.
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// A noop run: the `noop` parameter or the `_noop` metaparameter.
    pub fn noop(&self) -> Result<bool, Failure> {
        Ok(self.bool("noop")?.unwrap_or(false) || self.meta_noop()?)
    }

    /// Rejects any parameter that is not in `known` and not a metaparameter.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), Failure> {
        Ok(coerce::reject_unknown(
            self.params.keys().map(String::as_str),
            known,
        )?)
    }

    /// An `Optional[Boolean]`; also accepts `"true"`/`"false"`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, Failure> {
        Ok(coerce::boolean(name, self.params.get(name))?)
    }

    /// An `Optional[Integer[min]]` no larger than `max`; also accepts a
    /// string of digits.
    pub fn uint(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, Failure> {
        Ok(coerce::uint(name, self.params.get(name), min, max)?)
    }

    /// An `Optional[String[1]]`.
    pub fn string(&self, name: &str) -> Result<Option<String>, Failure> {
        Ok(coerce::string(name, self.params.get(name))?)
    }

    /// An `Optional[Variant[String[1], Array[String[1]]]]`; a string is split
    /// on commas (psick compatibility).
    pub fn string_list(&self, name: &str) -> Result<Vec<String>, Failure> {
        Ok(coerce::list(name, self.params.get(name))?.unwrap_or_default())
    }
}

/// The process's stdin (empty when it is a terminal), bounded.
pub fn read_stdin() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(String::new());
    }
    read_bounded(stdin.lock())
}

fn read_bounded(r: impl Read) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    // A stdin that cannot be read (closed descriptor) counts as absent.
    if r.take(MAX_STDIN + 1).read_to_end(&mut bytes).is_err() {
        return Ok(String::new());
    }
    if bytes.len() as u64 > MAX_STDIN {
        return Err(Failure::InvalidParams(format!(
            "stdin holds more than {MAX_STDIN} bytes; task parameters are far smaller"
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Failure::InvalidParams("stdin is not valid UTF-8".to_owned()))
}

/// Turns one `PT_*` value into JSON: `null` is absent, JSON arrays and
/// objects are decoded, everything else stays a string.
fn decode_env_value(s: &str) -> Value {
    if s == "null" {
        return Value::Null;
    }
    if (s.starts_with('[') || s.starts_with('{'))
        && let Ok(v) = serde_json::from_str::<Value>(s)
    {
        return v;
    }
    Value::String(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn stdin_json_wins_over_environment() {
        let i = Input::parse(r#"{"noop": true}"#, env(&[("PT_noop", "false")])).unwrap();
        assert_eq!(i.bool("noop").unwrap(), Some(true));
    }

    #[test]
    fn blank_stdin_falls_back_to_pt_variables_with_string_coercion() {
        let i = Input::parse(
            " \n",
            env(&[
                ("PT_noop", "true"),
                ("PT_timeout", "30"),
                ("PT_environment", "null"),
                ("PT_tags", r#"["a","b"]"#),
                ("PT__task", "psick::puppet_agent"),
                ("HOME", "/root"),
                ("PT_", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(i.bool("noop").unwrap(), Some(true));
        assert_eq!(i.uint("timeout", 1, 100).unwrap(), Some(30));
        assert_eq!(i.string("environment").unwrap(), None);
        assert_eq!(i.string_list("tags").unwrap(), vec!["a", "b"]);
        assert_eq!(i.task().unwrap().as_deref(), Some("psick::puppet_agent"));
        assert!(
            i.reject_unknown(&["noop", "timeout", "environment", "tags"])
                .is_ok()
        );
    }

    #[test]
    fn bad_json_and_non_objects_are_invalid_params() {
        for text in ["{", "[1,2]", "\"x\"", "42"] {
            let e = Input::parse(text, env(&[])).unwrap_err();
            assert!(matches!(e, Failure::InvalidParams(_)), "{text}: {e}");
        }
        let e = Input::parse("{nope", env(&[])).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
    }

    #[test]
    fn null_is_absent_and_types_are_checked() {
        let i = Input::parse(
            r#"{"noop": null, "debug": "yes", "timeout": 0, "wait": "-1", "environment": ""}"#,
            env(&[]),
        )
        .unwrap();
        assert_eq!(i.bool("noop").unwrap(), None);
        assert!(
            i.bool("debug")
                .unwrap_err()
                .to_string()
                .contains("`debug` must be a Boolean")
        );
        assert!(i.uint("timeout", 1, 10).is_err());
        assert!(i.uint("wait", 0, 10).is_err());
        assert!(i.string("environment").is_err());
    }

    #[test]
    fn unknown_parameters_are_listed_and_metaparameters_accepted() {
        let i = Input::parse(
            r#"{"bogus": 1, "other": 2, "_noop": true, "_installdir": "/x"}"#,
            env(&[]),
        )
        .unwrap();
        let e = i.reject_unknown(&["noop"]).unwrap_err().to_string();
        assert!(e.contains("unknown parameters bogus, other"), "{e}");
        assert!(i.meta_noop().unwrap());
    }

    #[test]
    fn string_lists_split_on_commas_and_reject_empty_items() {
        let i = Input::parse(r#"{"a": "x,y", "b": "x,,y", "c": [], "d": [1]}"#, env(&[])).unwrap();
        assert_eq!(i.string_list("a").unwrap(), vec!["x", "y"]);
        assert!(i.string_list("b").is_err());
        assert!(i.string_list("c").is_err());
        assert!(i.string_list("d").is_err());
    }
}
