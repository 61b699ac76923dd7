//! `command/deploy` runs `psick::puppet_agent` on each node: the deploy
//! request's agent flags become that task's typed parameters
//! ([`AgentParams`], the one definition the task and kick share).

use orchestrator_types::DeployRequest;
use orchestrator_types::psick::AgentParams;
use serde_json::{Map, Value};

use crate::error::Failure;

/// The task `command/deploy` runs on each node.
pub const TASK: (&str, &str) = ("psick", "puppet_agent");

/// The task parameters for a deploy request, checked by the task's own
/// rules, limited to those the task's metadata declares (`declared`; all
/// when it declares none).
pub fn agent_params(
    r: &DeployRequest,
    environment: &str,
    declared: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, Failure> {
    let tags = |s: &Option<String>| {
        let list: Vec<String> = s
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        (!list.is_empty()).then_some(list)
    };
    let noop = match (r.noop, r.no_noop) {
        (Some(true), _) => Some(true),
        (_, Some(true)) => Some(false),
        _ => None,
    };
    let ordering = match r.ordering.as_deref() {
        None => None,
        Some(o) => Some(
            serde_json::from_value(Value::String(o.to_owned())).map_err(|_| {
                Failure::invalid_body(format!(
                    "The deploy request cannot run Puppet: ordering must be one of {}, not '{o}'",
                    orchestrator_types::psick::params::ORDERINGS.join(", ")
                ))
            })?,
        ),
    };
    // kick's `commands/deploy.rs` maps its flags to these keys: the same names, mapped the
    // other way, in another program (this one also serves PE's own clients).
    let params = AgentParams {
        noop,
        environment: (!environment.is_empty() && r.enforce_environment != Some(false))
            .then(|| environment.to_owned()),
        tags: tags(&r.tags),
        skip_tags: tags(&r.skip_tags),
        debug: r.debug,
        trace: r.trace,
        evaltrace: r.evaltrace,
        http_connect_timeout: r.http_connect_timeout,
        http_keepalive_timeout: r.http_keepalive_timeout,
        http_read_timeout: r.http_read_timeout,
        filetimeout: r.filetimeout,
        ordering,
        use_cached_catalog: r.use_cached_catalog,
        usecacheonfailure: r.usecacheonfailure,
        timeout: r.timeout,
        ..AgentParams::default()
    };
    params
        .validate()
        .map_err(|e| Failure::invalid_body(format!("The deploy request cannot run Puppet: {e}")))?;
    let mut out = params.to_json();
    if let Some(d) = declared {
        // A task declaring only the older name gets the timeout under it.
        if !d.contains_key("http_connect_timeout")
            && let Some(t) = out.remove("http_connect_timeout")
        {
            out.insert("connect_timeout".into(), t);
        }
        out.retain(|k, _| d.contains_key(k));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_deploy_key_reaches_the_task_parameter_of_its_name() {
        let r: DeployRequest = serde_json::from_value(json!({
            "environment": "production", "scope": {"nodes": ["a"]},
            "noop": true, "tags": "a, b", "skip_tags": "c", "debug": true, "trace": true,
            "evaltrace": true, "http_connect_timeout": 5, "http_keepalive_timeout": 6,
            "http_read_timeout": 7, "filetimeout": 15, "ordering": "manifest",
            "use_cached_catalog": false, "usecacheonfailure": true, "timeout": 60
        }))
        .unwrap();
        let p = agent_params(&r, "production", None).unwrap();
        assert_eq!(
            Value::Object(p),
            json!({
                "noop": true, "environment": "production", "tags": ["a", "b"],
                "skip_tags": ["c"], "debug": true, "trace": true, "evaltrace": true,
                "http_connect_timeout": 5, "http_keepalive_timeout": 6, "http_read_timeout": 7,
                "filetimeout": 15, "ordering": "manifest", "use_cached_catalog": false,
                "usecacheonfailure": true, "timeout": 60
            })
        );
    }

    #[test]
    fn an_unknown_ordering_is_refused() {
        let r = DeployRequest {
            ordering: Some("alphabetical".into()),
            ..DeployRequest::default()
        };
        let e = agent_params(&r, "production", None).unwrap_err();
        assert!(e.body.msg.contains("ordering"), "{:?}", e.body);
    }

    #[test]
    fn enforce_environment_false_leaves_the_nodes_environment() {
        let r = DeployRequest {
            enforce_environment: Some(false),
            ..DeployRequest::default()
        };
        let p = agent_params(&r, "production", None).unwrap();
        assert!(!p.contains_key("environment"), "{p:?}");
    }
}
