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
