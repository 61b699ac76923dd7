//! Serde helpers for the type quirks of the Orchestrator API.
//!
//! Real servers send job names and event ids as strings of digits, job
//! durations as strings (`"256.0"`) and node durations as numbers; other
//! clients send job names as numbers. These helpers accept either form and
//! write the form real PE servers send.

use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

/// Accepts a string or a number, yields the string (`1234` → `"1234"`).
pub fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}

/// Like [`string_or_number`] for optional fields; `null` gives `None`.
pub fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}

/// Accepts a number or a numeric string (`"256.0"`); `null` or an
/// unparsable string gives `None` rather than failing the document.
pub fn opt_f64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Writes an optional number as a string (`Some(256.0)` → `"256.0"`), as
/// PE does for job durations.
pub fn opt_f64_as_string<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => s.serialize_str(&format!("{x:?}")),
        None => s.serialize_none(),
    }
}

/// The `duration` of a job and of a plan job (`#[serde(with = "lenient::job_duration")]`): read
/// as [`opt_f64_lenient`] reads it, written as a string as PE writes it.
pub mod job_duration {
    pub use super::opt_f64_as_string as serialize;
    pub use super::opt_f64_lenient as deserialize;
}

/// Accepts a non-negative integer or a numeric string.
pub fn opt_u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}
