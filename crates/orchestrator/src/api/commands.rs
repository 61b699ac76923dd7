//! `POST /command/*`: starting and stopping jobs.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchestrator_types::command::StoppedJob;
use orchestrator_types::error::kind;
use orchestrator_types::{DeployRequest, StopRequest, StopResponse, TaskRequest};
use serde_json::{Value, json};

use super::checks::{check_concurrency, check_params, check_timeout, sensitive_names};
use super::{
    ApiResult, Shared, body, body_bytes, check_environment, created, parse, start, task_files,
    token,
};
use std::sync::Arc;

use crate::app::{App, Found};
use crate::config::TokenSpec;
use crate::deploy;
use crate::error::Failure;
use crate::exec::StopLevel;
use crate::job::{Command, JobRecord};
use crate::modules;
use crate::query::job_id;
use crate::runner::Plan;
use crate::scope::resolve_scope;

pub async fn task(State(app): Shared, req: Request) -> ApiResult<Response> {
    let tok = token(req.extensions());
    let bytes = body_bytes(&app, req.into_body()).await?;
    let name = submit_task(&app, &tok, &bytes, Origin::default()).await?;
    Ok(created(&app, name))
}

/// Where a job comes from, when not straight from a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    /// It is a `plan_task` job of this plan job.
    pub plan_job: Option<u64>,
    /// A scheduled job started it (`options.scheduled-job-id`).
    pub scheduled: Option<u64>,
}

/// Starts a task job from a `command/task` body.
pub async fn submit_task(
    app: &Arc<App>,
    tok: &TokenSpec,
    bytes: &[u8],
    origin: Origin,
) -> ApiResult<u64> {
    let plan_job = origin.plan_job;
    let r: TaskRequest = parse(bytes)?;
    let order: ParamOrder = parse(bytes)?;
    let environment = r.environment.clone().unwrap_or_else(|| "production".into());
    check_environment(app, &environment)?;
    let (module, task) = modules::split_name(&r.task)?;
    let resolved = modules::resolve(&app.config, &module, &task)?;
    if !tok.may_run(&resolved.name) {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            kind::NOT_PERMITTED,
            format!("You do not have permission to run task {} (ask for it to be added to your token's tasks)", resolved.name),
        )
        .details(json!({ "task": resolved.name })));
    }
    let noop = r.noop.unwrap_or(false);
    if noop && !resolved.supports_noop() {
        return Err(Failure::invalid_body(format!(
            "Task {} does not support noop",
            resolved.name
        )));
    }
    check_params(&resolved, &r.params)?;
    check_timeout("timeout", r.timeout)?;
    if resolved.executable.is_none() {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            kind::UNKNOWN_TASK,
            format!(
                "Task {} has metadata but no executable file next to it (for psick tasks, build them with `make task`)",
                resolved.name
            ),
        ));
    }
    let files = task_files(app, &resolved).await?;
    let nodes = resolve_scope(app, &r.scope, &environment).await?;
    let nodes = super::task_targets::permitted(app, tok, &resolved.name, nodes).await?;
    let command = match plan_job {
        Some(_) => Command::PlanTask,
        None => Command::Task,
    };

    let sensitive = sensitive_names(&resolved);
    let mut shown = r.params.clone();
    for k in &sensitive {
        if let Some(v) = shown.get_mut(k) {
            *v = json!("Sensitive [value redacted]");
        }
    }
    let options = json!({
        "description": r.description.clone().unwrap_or_default(),
        "transport": "pxp",
        "noop": noop,
        "task": resolved.name,
        "sensitive": sensitive,
        "scheduled-job-id": origin.scheduled.map(|s| s.to_string()),
        "params": shown,
        "scope": r.scope,
        "environment": environment,
    });
    let mut options = options;
    if let Some(t) = r.timeout {
        options["timeout"] = json!(t);
    }
    if let Some(u) = &r.userdata {
        options["userdata"] = json!(u);
    }
    if let Some(p) = plan_job {
        options["plan_job"] = json!(p.to_string());
    }
    let name = app.next_job_name();
    let rec = JobRecord::new(name, command, options, &tok.login, &environment, nodes);
    // The request's order, as pxp-agent passes it on.
    let mut input = order.params.0;
    if noop {
        input.push(("_noop".into(), json!(true)));
    }
    let plan = Plan {
        command,
        task_name: resolved.name.clone(),
        files,
        input_method: resolved.input_method.clone(),
        input,
        noop,
        timeout: r.timeout.map(Duration::from_secs),
        job_concurrency: None,
        nodes: Vec::new(),
        base: app.base.clone(),
        max_output: app.config.max_output_bytes,
    };
    start(app, rec, plan).await
}

pub async fn deploy(State(app): Shared, req: Request) -> ApiResult<Response> {
    let tok = token(req.extensions());
    let r: DeployRequest = body(&app, req.into_body()).await?;
    let name = submit_deploy(&app, &tok, r, None).await?;
    Ok(created(&app, name))
}

/// Starts a Puppet run job from a `command/deploy` request.
pub async fn submit_deploy(
    app: &Arc<App>,
    tok: &TokenSpec,
    r: DeployRequest,
    scheduled: Option<u64>,
) -> ApiResult<u64> {
    let Some(environment) = r.environment.clone() else {
        return Err(Failure::invalid_body("The 'environment' key is required"));
    };
    // PE: "" only when the nodes keep their own environment.
    if environment.is_empty() && r.enforce_environment != Some(false) {
        return Err(Failure::invalid_body(
            "The 'environment' must not be empty (name one, or send enforce_environment: false to let nodes use their own)",
        ));
    }
    check_timeout("timeout", r.timeout)?;
    check_timeout("http_connect_timeout", r.http_connect_timeout)?;
    check_concurrency(r.concurrency)?;
    check_environment(app, &environment)?;
    if r.noop == Some(true) && r.no_noop == Some(true) {
        return Err(Failure::invalid_body(
            "'noop' and 'no_noop' cannot both be true",
        ));
    }
    if !tok.deploy || tok.task_target.is_some() {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            kind::NOT_PERMITTED,
            "You do not have permission to run Puppet on these nodes",
        ));
    }
    let resolved = modules::resolve(&app.config, deploy::TASK.0, deploy::TASK.1).map_err(|_| {
        Failure::internal(
            "Puppet runs need the psick module (psick::puppet_agent) on the orchestrator's modulepath; start it with --module psick=<kick checkout>",
        )
    })?;
    if resolved.executable.is_none() {
        return Err(Failure::internal(
            "psick::puppet_agent has no executable; build it with `make task`",
        ));
    }
    let files = task_files(app, &resolved).await?;
    let nodes = resolve_scope(app, &r.scope, &environment).await?;

    let declared = resolved
        .metadata
        .get("parameters")
        .and_then(Value::as_object);
    let params = deploy::agent_params(&r, &environment, declared)?;
    check_params(&resolved, &params)?;
    let noop = r.noop == Some(true);
    let mut options = serde_json::to_value(&r).unwrap_or_else(|_| json!({}));
    options["transport"] = json!("pxp");
    options["noop"] = json!(noop);
    options["description"] = json!(r.description.clone().unwrap_or_default());
    options["scheduled-job-id"] = json!(scheduled.map(|s| s.to_string()));
    let name = app.next_job_name();
    let rec = JobRecord::new(
        name,
        Command::Deploy,
        options,
        &tok.login,
        &environment,
        nodes,
    );
    let input = params.into_iter().collect();
    let plan = Plan {
        command: Command::Deploy,
        task_name: resolved.name.clone(),
        files,
        input_method: resolved.input_method.clone(),
        input,
        noop,
        // The task gets the timeout as a parameter and reports; the process
        // group is killed only if it overruns by a minute.
        timeout: r.timeout.map(|t| Duration::from_secs(t.saturating_add(60))),
        job_concurrency: r.concurrency.map(|c| c as usize),
        nodes: Vec::new(),
        base: app.base.clone(),
        max_output: app.config.max_output_bytes,
    };
    start(app, rec, plan).await
}

pub async fn stop(State(app): Shared, req: Request) -> ApiResult<Response> {
    let r: StopRequest = body(&app, req.into_body()).await?;
    let name = job_id(&r.job)?;
    let level = if r.force == Some(true) {
        StopLevel::Force
    } else {
        StopLevel::Graceful
    };
    // Stopping an ended job changes nothing (PE: the call is idempotent).
    let (id, states) = match app.find(name, &r.job).await? {
        Found::Active(job) => {
            job.request_stop(level);
            let rec = job.lock();
            (rec.url(&app.base), rec.node_states())
        }
        Found::Stored(head) => (head.url(&app.base), head.node_states.clone()),
    };
    let nodes = states
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), n))
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(StopResponse {
            job: StoppedJob {
                id,
                name: name.to_string(),
                nodes,
            },
        }),
    )
        .into_response())
}

/// The request's `params` with their keys in the order sent (the typed
/// request holds them sorted).
#[derive(Debug, Default, serde::Deserialize)]
struct ParamOrder {
    #[serde(default)]
    params: Ordered,
}

#[derive(Debug, Default)]
struct Ordered(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of task parameters")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Ordered, A::Error> {
                let mut pairs: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    // A repeated key keeps its last value, as the typed map does.
                    pairs.retain(|(x, _)| *x != k);
                    pairs.push((k, v));
                }
                Ok(Ordered(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_keep_the_request_order() {
        let o: super::ParamOrder = serde_json::from_str(
            r#"{"task": "x", "params": {"zeta": 1, "alpha": "a", "zeta": 2}}"#,
        )
        .unwrap();
        let keys: Vec<&str> = o.params.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["alpha", "zeta"]);
        assert_eq!(o.params.0[1].1, 2);
    }
}
