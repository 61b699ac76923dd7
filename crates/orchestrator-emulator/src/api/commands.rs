//! `POST /command/*`: starting and stopping jobs.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchestrator_types::command::StoppedJob;
use orchestrator_types::error::kind;
use orchestrator_types::{DeployRequest, StopRequest, StopResponse, TaskRequest};
use serde_json::{Map, Value, json};

use super::{ApiResult, Shared, body, check_environment, created, start, token};
use crate::app::Found;
use crate::deploy;
use crate::error::Failure;
use crate::exec::StopLevel;
use crate::job::{Command, JobRecord};
use crate::modules;
use crate::puppet_type;
use crate::query::job_id;
use crate::runner::Plan;
use crate::scope::resolve_scope;
/// Checks parameters against the task metadata's types.
fn check_params(task: &modules::ResolvedTask, params: &Map<String, Value>) -> ApiResult<()> {
    let Some(declared) = task.metadata.get("parameters").and_then(Value::as_object) else {
        return Ok(());
    };
    let invalid = |msg: String| Failure::validation(msg).details(json!({ "task": task.name }));
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

fn sensitive_names(task: &modules::ResolvedTask) -> Vec<String> {
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

pub async fn task(State(app): Shared, req: Request) -> ApiResult<Response> {
    let tok = token(req.extensions());
    let r: TaskRequest = body(&app, req.into_body()).await?;
    let environment = r.environment.clone().unwrap_or_else(|| "production".into());
    check_environment(&app, &environment)?;
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
        return Err(Failure::validation(format!(
            "Task {} does not support noop",
            resolved.name
        )));
    }
    check_params(&resolved, &r.params)?;
    if r.timeout == Some(0) {
        return Err(Failure::validation(
            "The 'timeout' must be at least 1 second",
        ));
    }
    let executable = resolved.executable.clone().ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_FOUND,
            kind::UNKNOWN_TASK,
            format!(
                "Task {} has metadata but no executable file next to it (for psick tasks, build them with `make task`)",
                resolved.name
            ),
        )
    })?;
    let nodes = resolve_scope(&app, &r.scope, &environment).await?;

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
        "scheduled-job-id": null,
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
    let name = app.next_job_name();
    let rec = JobRecord::new(
        name,
        Command::Task,
        options,
        &tok.login,
        &environment,
        nodes,
    );
    let mut input = r.params.clone();
    input.insert("_task".into(), json!(resolved.name));
    if noop {
        input.insert("_noop".into(), json!(true));
    }
    let plan = Plan {
        command: Command::Task,
        task_name: resolved.name.clone(),
        executable,
        input_method: resolved.input_method.clone(),
        input,
        noop,
        timeout: r.timeout.map(Duration::from_secs),
        job_concurrency: None,
        nodes: Vec::new(),
        base: app.base.clone(),
        max_output: app.config.max_output_bytes,
    };
    let name = start(&app, rec, plan).await?;
    Ok(created(&app, name))
}

pub async fn deploy(State(app): Shared, req: Request) -> ApiResult<Response> {
    let tok = token(req.extensions());
    let r: DeployRequest = body(&app, req.into_body()).await?;
    let Some(environment) = r.environment.clone() else {
        return Err(Failure::validation("The 'environment' key is required"));
    };
    check_environment(&app, &environment)?;
    if r.noop == Some(true) && r.no_noop == Some(true) {
        return Err(Failure::validation(
            "'noop' and 'no_noop' cannot both be true",
        ));
    }
    if !tok.deploy {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            kind::NOT_PERMITTED,
            "You do not have permission to run Puppet on these nodes",
        ));
    }
    let resolved = modules::resolve(&app.config, deploy::TASK.0, deploy::TASK.1).map_err(|_| {
        Failure::internal(
            "Puppet runs need the psick module (psick::puppet_agent) on the emulator's modulepath; start it with --module psick=<kick checkout>",
        )
    })?;
    let executable = resolved.executable.clone().ok_or_else(|| {
        Failure::internal("psick::puppet_agent has no executable; build it with `make task`")
    })?;
    let nodes = resolve_scope(&app, &r.scope, &environment).await?;

    let declared = resolved
        .metadata
        .get("parameters")
        .and_then(Value::as_object);
    let params = deploy::agent_params(&r, &environment, declared);
    check_params(&resolved, &params)?;
    let noop = r.noop == Some(true);
    let mut options = serde_json::to_value(&r).unwrap_or_else(|_| json!({}));
    options["transport"] = json!("pxp");
    options["noop"] = json!(noop);
    options["description"] = json!(r.description.clone().unwrap_or_default());
    let name = app.next_job_name();
    let rec = JobRecord::new(
        name,
        Command::Deploy,
        options,
        &tok.login,
        &environment,
        nodes,
    );
    let mut input = params;
    input.insert("_task".into(), json!(resolved.name));
    let plan = Plan {
        command: Command::Deploy,
        task_name: resolved.name.clone(),
        executable,
        input_method: resolved.input_method.clone(),
        input,
        noop,
        // The task gets the timeout as a parameter and reports; the process
        // group is killed only if it overruns by a minute.
        timeout: r.timeout.map(|t| Duration::from_secs(t + 60)),
        job_concurrency: r.concurrency.map(|c| c as usize),
        nodes: Vec::new(),
        base: app.base.clone(),
        max_output: app.config.max_output_bytes,
    };
    let name = start(&app, rec, plan).await?;
    Ok(created(&app, name))
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
