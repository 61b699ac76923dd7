//! `command/deploy` runs `psick::puppet_agent` on each node: the deploy
//! request's agent flags become that task's parameters.

use orchestrator_types::DeployRequest;
use serde_json::{Map, Value, json};

/// The task `command/deploy` runs on each node.
pub const TASK: (&str, &str) = ("psick", "puppet_agent");

/// The task parameters for a deploy request, limited to those the task's
/// metadata declares (`declared`; all when it declares none).
pub fn agent_params(
    r: &DeployRequest,
    environment: &str,
    declared: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut params = Map::new();
    let mut set = |k: &str, v: Value| {
        if declared.as_ref().is_none_or(|d| d.contains_key(k)) {
            params.insert(k.to_owned(), v);
        }
    };
    if r.noop == Some(true) {
        set("noop", json!(true));
    } else if r.no_noop == Some(true) {
        set("noop", json!(false));
    }
    if !environment.is_empty() && r.enforce_environment != Some(false) {
        set("environment", json!(environment));
    }
    let split = |s: &str| -> Value {
        json!(
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        )
    };
    if let Some(t) = r.tags.as_deref().filter(|t| !t.is_empty()) {
        set("tags", split(t));
    }
    if let Some(t) = r.skip_tags.as_deref().filter(|t| !t.is_empty()) {
        set("skip_tags", split(t));
    }
    for (k, v) in [
        ("debug", r.debug),
        ("trace", r.trace),
        ("evaltrace", r.evaltrace),
    ] {
        if let Some(b) = v {
            set(k, json!(b));
        }
    }
    if let Some(t) = r.http_connect_timeout {
        set("connect_timeout", json!(t));
    }
    if let Some(t) = r.timeout {
        set("timeout", json!(t));
    }
    params
}
