//! Checks of request bodies beyond their JSON shape: parameters against the
//! task metadata's Puppet types, and every number from outside in range.

use serde_json::{Map, Value, json};

use crate::error::Failure;
use crate::modules;
use crate::puppet_type;

type ApiResult<T> = Result<T, Failure>;

/// The longest per-node `timeout` accepted: a year, in seconds.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;
/// The largest deploy `concurrency` accepted.
pub const MAX_CONCURRENCY: u64 = 1_000_000;

/// A per-node timeout in seconds: at least 1, at most [`MAX_TIMEOUT_SECS`].
pub fn check_timeout(key: &str, t: Option<u64>) -> ApiResult<()> {
    match t {
        Some(t) if t == 0 || t > MAX_TIMEOUT_SECS => Err(Failure::invalid_body(format!(
            "The '{key}' must be between 1 and {MAX_TIMEOUT_SECS} seconds (a year), got {t}"
        ))
        .details(json!({ "key": key, "value": t }))),
        _ => Ok(()),
    }
}

/// A deploy's concurrency: at least 1, at most [`MAX_CONCURRENCY`].
pub fn check_concurrency(c: Option<u64>) -> ApiResult<()> {
    match c {
        Some(c) if c == 0 || c > MAX_CONCURRENCY => Err(Failure::invalid_body(format!(
            "The 'concurrency' must be between 1 and {MAX_CONCURRENCY}, got {c}"
        ))
        .details(json!({ "key": "concurrency", "value": c }))),
        _ => Ok(()),
    }
}

/// Parameter names and string values must be passable as `PT_*` variables:
/// no NUL anywhere, no `=` in a name.
fn check_text(params: &Map<String, Value>) -> ApiResult<()> {
    fn nul_in(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(nul_in),
            Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || nul_in(v)),
            _ => false,
        }
    }
    for (k, v) in params {
        if k.contains(['\0', '=']) || k.is_empty() {
            return Err(Failure::invalid_body(format!(
                "Parameter name {k:?} cannot be passed to a task (names may not be empty or hold '=' or NUL)"
            )));
        }
        if nul_in(v) {
            return Err(Failure::invalid_body(format!(
                "Parameter '{k}' holds a NUL character, which cannot be passed to a task (as a PT_{k} variable); remove it"
            ))
            .details(json!({ "parameter": k })));
        }
    }
    Ok(())
}

/// Checks parameters against the task metadata's types.
pub fn check_params(task: &modules::ResolvedTask, params: &Map<String, Value>) -> ApiResult<()> {
    let Some(declared) = task.metadata.get("parameters").and_then(Value::as_object) else {
        return Ok(());
    };
    let invalid = |msg: String| Failure::invalid_body(msg).details(json!({ "task": task.name }));
    check_text(params)?;
    for (k, v) in params {
        if k.starts_with('_') {
            continue;
        }
        let Some(decl) = declared.get(k) else {
            return Err(invalid(format!(
                "Task {} does not accept a parameter named '{k}' (it accepts: {})",
                task.name,
                declared.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        let ty = decl.get("type").and_then(Value::as_str).unwrap_or("Any");
        let pt = puppet_type::parse(ty).map_err(|e| {
            invalid(format!(
                "Task {} declares parameter '{k}' with a type this service cannot read ({ty}: {e})",
                task.name
            ))
        })?;
        if !pt.matches(v) {
            return Err(invalid(format!(
                "Task {}: parameter '{k}' expects a value of type {ty}, got {v}",
                task.name
            )));
        }
    }
    for (k, decl) in declared {
        if params.contains_key(k) {
            continue;
        }
        let ty = decl.get("type").and_then(Value::as_str).unwrap_or("Any");
        if puppet_type::parse(ty).is_ok_and(|t| !t.accepts_missing()) {
            return Err(invalid(format!(
                "Task {} requires a value for parameter '{k}' ({ty})",
                task.name
            )));
        }
    }
    Ok(())
}

pub fn sensitive_names(task: &modules::ResolvedTask) -> Vec<String> {
    task.metadata
        .get("parameters")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, d)| d.get("sensitive").and_then(Value::as_bool) == Some(true))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}
