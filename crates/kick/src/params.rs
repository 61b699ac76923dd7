//! Task parameters from the command line: `KEY=VALUE` words typed like PE's
//! `puppet task run`, or one JSON object given with `--params JSON|@FILE`.

use serde_json::{Map, Value};

use crate::error::Error;

/// Builds the parameter object from `KEY=VALUE` words or `--params`; giving
/// both is an error, as in PE's CLI.
pub fn parse(words: &[String], params_json: Option<&str>) -> Result<Map<String, Value>, Error> {
    match (words.is_empty(), params_json) {
        (false, Some(_)) => Err(Error::Usage(
            "task parameters were given both as KEY=VALUE and with --params; use one or the other"
                .into(),
        )),
        (_, Some(json)) => parse_json(json),
        (_, None) => {
            let mut map = Map::new();
            for w in words {
                let (k, v) = parse_word(w)?;
                if map.insert(k.clone(), v).is_some() {
                    return Err(Error::Usage(format!(
                        "task parameter `{k}` was given twice"
                    )));
                }
            }
            Ok(map)
        }
    }
}

/// One JSON object of parameters: inline, `@FILE` or `-` (stdin).
pub fn parse_json(arg: &str) -> Result<Map<String, Value>, Error> {
    let (text, source) = match arg.strip_prefix('@') {
        Some(path) => (
            crate::input::read_arg_file(path)?,
            format!("the file {path}"),
        ),
        None if arg == "-" => (
            crate::input::read_stdin("--params")?,
            "standard input (--params -)".to_owned(),
        ),
        None => (arg.to_owned(), "--params".to_owned()),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(Error::Usage(format!(
            "{source} must hold a JSON object of task parameters, not {}",
            orchestrator_types::psick::params::coerce::json_type(&other)
        ))),
        Err(e) => Err(Error::Usage(format!(
            "{source} is not valid JSON ({e}); give an object such as '{{\"name\": \"value\"}}'"
        ))),
    }
}

/// `KEY=VALUE` → (key, typed value).
pub fn parse_word(word: &str) -> Result<(String, Value), Error> {
    let Some((k, v)) = word.split_once('=') else {
        return Err(Error::Usage(format!(
            "`{word}` is not a task parameter: KEY=VALUE is expected (e.g. {}=VALUE)",
            if word.is_empty() { "noop" } else { word }
        )));
    };
    let valid_key = !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && k.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
    if !valid_key {
        return Err(Error::Usage(format!(
            "`{k}` is not a valid task parameter name (lowercase letters, digits and _, starting with a letter)"
        )));
    }
    Ok((k.to_owned(), type_value(v)))
}

/// Types a value the way PE's CLI does: booleans, integers and floats become
/// JSON scalars, JSON arrays and objects are parsed, anything else (including
/// `null`, which PE does not special-case) stays a string.
pub fn type_value(v: &str) -> Value {
    match v {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    if looks_like_float(v)
        && let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    if (v.starts_with('[') || v.starts_with('{'))
        && let Ok(j @ (Value::Array(_) | Value::Object(_))) = serde_json::from_str::<Value>(v)
    {
        return j;
    }
    Value::String(v.to_owned())
}

/// Refuses reading standard input twice.
pub fn check_stdin(nodes: Option<&str>, params: Option<&str>) -> Result<(), Error> {
    if nodes == Some("-") && params == Some("-") {
        return Err(Error::Usage(
            "--nodes - and --params - both read standard input; put one of them in a file (@FILE)"
                .into(),
        ));
    }
    Ok(())
}

/// `--userdata KEY=VALUE` words → the job's `userdata` (values typed like
/// task parameters); `None` when there are none. kick's own marker key is
/// refused: kick sets it to find a job whose submission answer was lost.
pub fn userdata(words: &[String]) -> Result<Option<Map<String, Value>>, Error> {
    let mut map = Map::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(Error::Usage(format!(
                "--userdata `{w}` is not KEY=VALUE (e.g. --userdata ticket=CHG-1234)"
            )));
        };
        let valid_key = !k.is_empty()
            && k.len() <= 128
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_key {
            return Err(Error::Usage(format!(
                "--userdata key `{k}` is not valid; use letters, digits, _, - and . (at most 128)"
            )));
        }
        // kick_marker, and a rollout's kick_rollout, kick_wave, ...
        if k.starts_with("kick_") || k == orchestrator_client::MARKER_KEY {
            return Err(Error::Usage(format!(
                "--userdata key `{k}` is kick's own (kick_*); choose another name"
            )));
        }
        if map.insert(k.to_owned(), type_value(v)).is_some() {
            return Err(Error::Usage(format!("--userdata `{k}` was given twice")));
        }
    }
    Ok((!map.is_empty()).then_some(map))
}

// Rust's f64 parser also takes "inf", "NaN" and "1e5"; PE only types plain
// decimals, so "nan" stays a string.
fn looks_like_float(v: &str) -> bool {
    let v = v.strip_prefix('-').unwrap_or(v);
    let Some((int, frac)) = v.split_once('.') else {
        return false;
    };
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_typed_like_pe() {
        assert_eq!(type_value("true"), json!(true));
        assert_eq!(type_value("false"), json!(false));
        assert_eq!(type_value("42"), json!(42));
        assert_eq!(type_value("-7"), json!(-7));
        assert_eq!(type_value("1.5"), json!(1.5));
        assert_eq!(type_value("[1,\"a\"]"), json!([1, "a"]));
        assert_eq!(type_value("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(type_value("[not json"), json!("[not json"));
        assert_eq!(type_value("nan"), json!("nan"));
        assert_eq!(type_value("1e5"), json!("1e5"));
        assert_eq!(type_value("True"), json!("True"));
        assert_eq!(type_value(""), json!(""));
        assert_eq!(type_value("a=b"), json!("a=b"));
    }

    #[test]
    fn words_build_an_object_and_keep_equals_in_values() {
        let m = parse(&["noop=true".into(), "msg=a=b".into()], None).unwrap();
        assert_eq!(Value::Object(m), json!({"noop": true, "msg": "a=b"}));
    }

    #[test]
    fn mixing_words_and_params_is_refused() {
        let e = parse(&["a=1".into()], Some("{}")).unwrap_err();
        assert!(e.to_string().contains("one or the other"));
    }

    #[test]
    fn stdin_is_read_once() {
        assert!(check_stdin(Some("-"), Some("-")).is_err());
        assert!(check_stdin(Some("-"), Some("{}")).is_ok());
        assert!(check_stdin(None, Some("-")).is_ok());
    }

    #[test]
    fn userdata_is_typed_and_keeps_clear_of_the_marker() {
        let u = userdata(&["ticket=CHG-1".into(), "attempt=2".into()])
            .unwrap()
            .unwrap();
        assert_eq!(Value::Object(u), json!({"ticket": "CHG-1", "attempt": 2}));
        assert_eq!(userdata(&[]).unwrap(), None);
        for bad in ["novalue", "=x", "a b=1", "kick_marker=x", "kick_wave=2"] {
            assert!(userdata(&[bad.into()]).is_err(), "{bad}");
        }
        let e = userdata(&["a=1".into(), "a=2".into()]).unwrap_err();
        assert!(e.to_string().contains("twice"));
    }

    #[test]
    fn bad_words_and_json_are_usage_errors() {
        assert!(parse(&["novalue".into()], None).is_err());
        assert!(parse(&["Bad-Key=1".into()], None).is_err());
        assert!(parse(&["a=1".into(), "a=2".into()], None).is_err());
        assert!(
            parse(&[], Some("[1]"))
                .unwrap_err()
                .to_string()
                .contains("an array")
        );
        assert!(
            parse(&[], Some("{"))
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
        let m = parse(&[], Some(r#"{"x": [1]}"#)).unwrap();
        assert_eq!(m["x"], json!([1]));
    }
}
