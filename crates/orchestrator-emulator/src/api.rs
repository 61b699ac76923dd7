//! The HTTP API under `/orchestrator/v1`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orchestrator_types::command::StoppedJob;
use orchestrator_types::error::kind;
use orchestrator_types::inventory::InventoryNode;
use orchestrator_types::task::{FileUri, TaskEnvironment};
use orchestrator_types::{
    API_PREFIX, DeployRequest, EventList, EventType, InventoryList, InventoryRequest, JobCreated,
    JobList, JobRef, JobState, NodeList, NodeState, Pagination, Scope, StopRequest, StopResponse,
    TaskDetails, TaskFile, TaskList, TaskRef, TaskRequest,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::app::{App, JobHandle};
use crate::config::TokenSpec;
use crate::error::Failure;
use crate::exec::StopLevel;
use crate::job::{Command, Detail, JobRecord};
use crate::modules;
use crate::puppet_type;
use crate::query::{Params, job_id};
use crate::runner::{self, Plan};
use crate::time;

type Shared = State<Arc<App>>;
type ApiResult<T> = Result<T, Failure>;

/// The most events one `/events` answer carries; `next-events` continues.
const EVENTS_PAGE: usize = 1000;

pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/", get(root))
        // Advertised by PE's root document but undocumented; answered here
        // like the Status API so that the link leads somewhere.
        .route("/status", get(status))
        .route("/command/task", post(command_task))
        .route("/command/deploy", post(command_deploy))
        .route("/command/stop", post(command_stop))
        .route("/jobs", get(jobs))
        .route("/jobs/{id}", get(job))
        .route("/jobs/{id}/nodes", get(job_nodes))
        .route("/jobs/{id}/events", get(job_events))
        .route("/jobs/{id}/report", get(job_report))
        .route("/inventory", get(inventory).post(inventory_post))
        .route("/inventory/{node}", get(inventory_node))
        .route("/tasks", get(tasks))
        .route("/tasks/{module}/{task}", get(task))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), auth));
    Router::new()
        .nest(API_PREFIX, api)
        .route("/status/v1/services/orchestrator-service", get(status))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found() -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        "puppetlabs.orchestrator/not-found",
        "No such endpoint; see the root document at /orchestrator/v1",
    )
}

async fn status() -> impl IntoResponse {
    axum::Json(
        json!({ "service_version": env!("CARGO_PKG_VERSION"), "service_status_version": 1,
        "detail_level": "info", "state": "running", "status": {} }),
    )
}

/// RBAC like PE: `X-Authentication` or `?token=`; the token itself is never logged.
async fn auth(State(app): Shared, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get("x-authentication")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned());
    let token = header.or_else(|| {
        Params::parse(req.uri().query())
            .get("token")
            .map(str::to_owned)
    });
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Failure::new(
            StatusCode::UNAUTHORIZED,
            kind::USER_UNAUTHENTICATED,
            "Route requires authentication",
        )
        .into_response();
    };
    let Some(spec) = app.config.tokens.iter().find(|t| t.token == token).cloned() else {
        return Failure::new(
            StatusCode::UNAUTHORIZED,
            kind::INVALID_TOKEN,
            "The provided token is invalid; get a new one (puppet access login) or check the emulator's tokens file",
        )
        .into_response();
    };
    req.extensions_mut().insert(spec);
    next.run(req).await
}

fn token(req_ext: &axum::http::Extensions) -> TokenSpec {
    req_ext
        .get::<TokenSpec>()
        .cloned()
        .unwrap_or_else(|| TokenSpec::new(""))
}

async fn root(State(app): Shared) -> impl IntoResponse {
    let b = format!("{}{API_PREFIX}", app.base);
    axum::Json(json!({
        "info": {
            "title": "Orchestrator API (Kick emulator)",
            "description": "A local emulation of the Puppet Enterprise Orchestrator API v1 that runs tasks on simulated nodes",
            "warning": "For trying, developing and testing only; fleets use Puppet Enterprise's orchestrator",
            "version": "0.1",
            "license": { "name": "Apache License, Version 2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0" }
        },
        "status": { "name": "status", "id": format!("{b}/status") },
        "collections": [
            { "name": "environments", "id": format!("{b}/environments") },
            { "name": "jobs", "id": format!("{b}/jobs") }
        ],
        "commands": [
            { "name": "deploy", "id": format!("{b}/command/deploy") },
            { "name": "stop", "id": format!("{b}/command/stop") },
            { "name": "task", "id": format!("{b}/command/task") }
        ]
    }))
}

/// Reads a JSON body within the size limit.
async fn body<T: DeserializeOwned>(app: &App, body: Body) -> ApiResult<T> {
    let bytes: Bytes = axum::body::to_bytes(body, app.config.max_body_bytes)
        .await
        .map_err(|_| {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                kind::VALIDATION_ERROR,
                format!(
                    "The request body is larger than the {} byte limit",
                    app.config.max_body_bytes
                ),
            )
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Failure::validation(format!("The request body is not valid: {e}")))
}

fn check_environment(app: &App, env: &str) -> ApiResult<()> {
    if env.is_empty() || app.config.environments.iter().any(|e| e == env) {
        return Ok(());
    }
    if !modules::valid_segment(env) {
        return Err(Failure::validation(format!(
            "Invalid environment name '{env}'"
        )));
    }
    Err(Failure::new(
        StatusCode::NOT_FOUND,
        kind::UNKNOWN_ENVIRONMENT,
        format!("Unknown environment {env}"),
    )
    .details(json!({ "environment": env })))
}

/// The certnames a scope names, deduplicated, in request order.
async fn resolve_scope(app: &App, scope: &Scope, environment: &str) -> ApiResult<Vec<String>> {
    if scope.kinds_set() != 1 {
        return Err(Failure::validation(
            "The scope must have exactly one of 'nodes', 'query' or 'node_group'",
        ));
    }
    let (names, target): (Vec<String>, &str) = if let Some(nodes) = &scope.nodes {
        (nodes.clone(), "nodes")
    } else if let Some(group) = &scope.node_group {
        (
            app.config
                .inventory
                .nodes
                .iter()
                .filter(|n| n.groups.iter().any(|g| g == group))
                .map(|n| n.certname.clone())
                .collect(),
            "node_group",
        )
    } else {
        (
            query_puppetdb(app, scope.query.as_ref().unwrap_or(&Value::Null)).await?,
            "query",
        )
    };
    let mut seen = std::collections::HashSet::new();
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| !n.is_empty() && seen.insert(n.clone()))
        .collect();
    if names.is_empty() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            kind::EMPTY_TARGET,
            "No nodes were found for the specified target. Nothing to do.",
        )
        .details(json!({ "environment": environment, "target": target })));
    }
    Ok(names)
}

async fn query_puppetdb(app: &App, query: &Value) -> ApiResult<Vec<String>> {
    let Some(url) = &app.config.puppetdb_url else {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            kind::QUERY_ERROR,
            "PuppetDB query failed: this emulator has no PuppetDB configured (start it with --puppetdb-url, or use scope.nodes or scope.node_group)",
        ));
    };
    let endpoint = format!("{}/pdb/query/v4", url.trim_end_matches('/'));
    let resp = app
        .http
        .post(&endpoint)
        .json(&json!({ "query": query }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                kind::PUPPETDB_ERROR,
                format!("Could not reach PuppetDB at {endpoint}: {e}"),
            )
        })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            kind::QUERY_ERROR,
            format!("PuppetDB query failed: {text}"),
        ));
    }
    let rows: Vec<Value> = serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            kind::PUPPETDB_ERROR,
            format!("PuppetDB answered something that is not a JSON array: {e}"),
        )
    })?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            r.get("certname")
                .or_else(|| r.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect())
}

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

fn created(app: &App, name: u64) -> Response {
    let id = format!("{}{API_PREFIX}/jobs/{name}", app.base);
    (
        StatusCode::ACCEPTED,
        axum::Json(JobCreated {
            job: JobRef {
                id,
                name: name.to_string(),
            },
        }),
    )
        .into_response()
}

fn start(app: &Arc<App>, rec: JobRecord, mut plan: Plan) -> u64 {
    let name = rec.name;
    plan.nodes = rec
        .nodes
        .iter()
        .map(|n| app.node(&n.name).cloned())
        .collect();
    let job = Arc::new(JobHandle::new(rec));
    app.insert(job.clone());
    tokio::spawn(runner::run_job(app.clone(), job, plan));
    name
}

async fn command_task(State(app): Shared, req: Request) -> ApiResult<Response> {
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
    let name = start(&app, rec, plan);
    Ok(created(&app, name))
}

/// The task `command/deploy` runs on each node.
pub const DEPLOY_TASK: (&str, &str) = ("psick", "puppet_agent");

async fn command_deploy(State(app): Shared, req: Request) -> ApiResult<Response> {
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
    let resolved = modules::resolve(&app.config, DEPLOY_TASK.0, DEPLOY_TASK.1).map_err(|_| {
        Failure::internal(
            "Puppet runs need the psick module (psick::puppet_agent) on the emulator's modulepath; start it with --module psick=<kick checkout>",
        )
    })?;
    let executable = resolved.executable.clone().ok_or_else(|| {
        Failure::internal("psick::puppet_agent has no executable; build it with `make task`")
    })?;
    let nodes = resolve_scope(&app, &r.scope, &environment).await?;

    // Map the deploy flags onto psick::puppet_agent parameters the task declares.
    let declared = resolved
        .metadata
        .get("parameters")
        .and_then(Value::as_object)
        .cloned();
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
    let name = start(&app, rec, plan);
    Ok(created(&app, name))
}

async fn command_stop(State(app): Shared, req: Request) -> ApiResult<Response> {
    let r: StopRequest = body(&app, req.into_body()).await?;
    let name = job_id(&r.job)?;
    let job = app.job(name).ok_or_else(|| Failure::unknown_job(&r.job))?;
    let level = if r.force == Some(true) {
        StopLevel::Force
    } else {
        StopLevel::Graceful
    };
    {
        let mut rec = job.lock();
        if !rec.state.is_terminal() {
            let raised = job.stop.send_if_modified(|l| {
                if *l < level {
                    *l = level;
                    true
                } else {
                    false
                }
            });
            if raised && rec.state != JobState::Stopping {
                rec.set_state(JobState::Stopping);
                let msg = format!(
                    "Stopping job {name}{}",
                    if level == StopLevel::Force {
                        " (force: running nodes are killed)"
                    } else {
                        ": running nodes finish, no new ones start"
                    }
                );
                rec.push_event(
                    EventType::JobStopping,
                    None,
                    Detail::Value(json!({ "force": level == StopLevel::Force })),
                    msg,
                );
            }
        }
    }
    let rec = job.lock();
    let nodes = rec
        .node_states()
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), n))
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(StopResponse {
            job: StoppedJob {
                id: rec.url(&app.base),
                name: name.to_string(),
                nodes,
            },
        }),
    )
        .into_response())
}

fn find_job(app: &App, raw: &str) -> ApiResult<Arc<JobHandle>> {
    let id = job_id(raw)?;
    app.job(id).ok_or_else(|| Failure::unknown_job(raw))
}

/// The `limit` and `offset` of a listing request.
struct Page {
    limit: Option<u64>,
    offset: u64,
}

impl Page {
    fn parse(p: &Params) -> ApiResult<Page> {
        Ok(Page {
            limit: p.uint("limit")?,
            offset: p.uint("offset")?.unwrap_or(0),
        })
    }

    /// The requested window of `rows`.
    fn of<I: Iterator>(&self, rows: I) -> impl Iterator<Item = I::Item> {
        rows.skip(self.offset as usize)
            .take(self.limit.map_or(usize::MAX, |l| l as usize))
    }
}

fn order_desc(p: &Params) -> ApiResult<(String, bool)> {
    let order = p.one_of("order", &["asc", "desc", "ASC", "DESC"])?;
    let order = order.unwrap_or_else(|| "asc".into()).to_lowercase();
    let desc = order == "desc";
    Ok((order, desc))
}

async fn jobs(State(app): Shared, RawQuery(q): RawQuery) -> ApiResult<axum::Json<JobList>> {
    let p = Params::parse(q.as_deref());
    let page = Page::parse(&p)?;
    let order_by = p
        .one_of(
            "order_by",
            &["owner", "timestamp", "environment", "name", "state"],
        )?
        .unwrap_or_else(|| "name".into());
    let (order, desc) = order_desc(&p)?;
    let ty = p.one_of("type", &["deploy", "task", "plan_task"])?;
    let task_filter = p.get("task").map(str::to_owned);
    if task_filter.is_some() && ty.as_deref() == Some("deploy") {
        return Err(Failure::validation(
            "The 'task' filter cannot be used with type=deploy",
        ));
    }
    let min_fin = p.get("min_finish_timestamp").map(str::to_owned);
    let max_fin = p.get("max_finish_timestamp").map(str::to_owned);
    // Sort keys are extracted once, then records are rendered for the page only.
    let mut rows: Vec<(Arc<JobHandle>, String, u64)> = Vec::new();
    for j in app.all_jobs() {
        let rec = j.lock();
        if ty.as_deref().is_some_and(|t| t != rec.command.as_str()) {
            continue;
        }
        if let Some(t) = &task_filter
            && !rec.task().is_some_and(|n| n.contains(t.as_str()))
        {
            continue;
        }
        let fin = rec.finished.map(time::seconds);
        if let Some(m) = &min_fin
            && fin.as_deref().is_none_or(|f| f < m.as_str())
        {
            continue;
        }
        if let Some(m) = &max_fin
            && fin.as_deref().is_none_or(|f| f > m.as_str())
        {
            continue;
        }
        let key = match order_by.as_str() {
            "owner" => rec.owner.clone(),
            "timestamp" => format!("{:020.3}", rec.timestamp),
            "environment" => rec.environment.clone(),
            "state" => rec.state.as_str().to_owned(),
            _ => String::new(),
        };
        let name = rec.name;
        drop(rec);
        rows.push((j, key, name));
    }
    rows.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)));
    if desc {
        rows.reverse();
    }
    let total = rows.len() as u64;
    let items = page
        .of(rows.into_iter())
        .map(|(j, _, _)| j.lock().render(&app.base, false))
        .collect();
    Ok(axum::Json(JobList {
        items,
        pagination: Some(Pagination {
            limit: page.limit,
            offset: Some(page.offset),
            total: Some(total),
            order: Some(order),
            order_by: Some(order_by),
            job_type: ty,
        }),
    }))
}

async fn job(State(app): Shared, Path(id): Path<String>) -> ApiResult<Response> {
    let job = find_job(&app, &id)?;
    let j = job.lock().render(&app.base, true);
    Ok(axum::Json(j).into_response())
}

async fn job_nodes(
    State(app): Shared,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let job = find_job(&app, &id)?;
    let p = Params::parse(q.as_deref());
    let page = Page::parse(&p)?;
    let order_by = p
        .one_of(
            "order_by",
            &[
                "name",
                "duration",
                "state",
                "start_timestamp",
                "finish_timestamp",
            ],
        )?
        .unwrap_or_else(|| "name".into());
    let (_, desc) = order_desc(&p)?;
    let state = match p.get("state") {
        None => None,
        Some(s) => match serde_json::from_value::<NodeState>(json!(s)) {
            Ok(NodeState::Unknown) | Err(_) => {
                return Err(Failure::validation(format!(
                    "The 'state' parameter must be a node state (new, ready, running, stopping, stopped, finished, failed, errored, skipped), got '{s}'"
                )));
            }
            Ok(st) => Some(st),
        },
    };
    let rec = job.lock();
    let now = time::now();
    let mut idx: Vec<usize> = (0..rec.nodes.len())
        .filter(|&i| state.is_none_or(|s| rec.nodes[i].state == s))
        .collect();
    let key_f = |i: &usize| -> f64 {
        let n = &rec.nodes[*i];
        match order_by.as_str() {
            "duration" => n.start.map_or(-1.0, |s| n.finish.unwrap_or(now) - s),
            "start_timestamp" => n.start.unwrap_or(-1.0),
            "finish_timestamp" => n.finish.unwrap_or(-1.0),
            _ => 0.0,
        }
    };
    match order_by.as_str() {
        // Nodes are stored sorted by name.
        "name" => {}
        "state" => idx.sort_by(|a, b| {
            rec.nodes[*a]
                .state
                .as_str()
                .cmp(rec.nodes[*b].state.as_str())
                .then(a.cmp(b))
        }),
        _ => idx.sort_by(|a, b| key_f(a).total_cmp(&key_f(b)).then(a.cmp(b))),
    }
    if desc {
        idx.reverse();
    }
    let total = idx.len() as u64;
    let items = page
        .of(idx.into_iter())
        .map(|i| rec.render_node(&rec.nodes[i]))
        .collect();
    let list = NodeList {
        items,
        next_events: Some(rec.next_events(&app.base, rec.events.len() as u64 + 1)),
        pagination: Some(Pagination {
            limit: page.limit,
            offset: Some(page.offset),
            total: Some(total),
            ..Pagination::default()
        }),
    };
    drop(rec);
    Ok(axum::Json(list).into_response())
}

async fn job_events(
    State(app): Shared,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let job = find_job(&app, &id)?;
    let p = Params::parse(q.as_deref());
    let start = p.uint("start")?;
    let rec = job.lock();
    let from = start.unwrap_or(1).max(1) as usize - 1;
    let to = rec.events.len().min(from.saturating_add(EVENTS_PAGE));
    let items: Vec<_> = (from..to).map(|i| rec.render_event(i)).collect();
    let next = if to > from {
        to as u64 + 1
    } else {
        start.unwrap_or(rec.events.len() as u64 + 1).max(1)
    };
    let list = EventList {
        next_events: Some(rec.next_events(&app.base, next)),
        items,
    };
    drop(rec);
    Ok(axum::Json(list).into_response())
}

async fn job_report(State(app): Shared, Path(id): Path<String>) -> ApiResult<Response> {
    let job = find_job(&app, &id)?;
    let rec = job.lock();
    let report: Vec<Value> = rec
        .nodes
        .iter()
        .map(|n| {
            json!({
                "node": n.name,
                "state": n.state,
                "timestamp": time::seconds(n.timestamp),
                "start_timestamp": n.start.map(time::seconds),
                "finish_timestamp": n.finish.map(time::seconds),
                "events": [],
            })
        })
        .collect();
    drop(rec);
    Ok(axum::Json(json!({ "report": report })).into_response())
}

fn inventory_entry(app: &App, name: &str) -> InventoryNode {
    match app.node(name).filter(|n| n.connected) {
        Some(_) => InventoryNode {
            name: name.to_owned(),
            connected: true,
            broker: Some(format!("pcp://{}/server", broker_host(&app.base))),
            timestamp: Some(time::millis(app.started)),
        },
        None => InventoryNode {
            name: name.to_owned(),
            connected: false,
            broker: None,
            timestamp: None,
        },
    }
}

fn broker_host(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.split(['/', ':']).next().unwrap_or(rest)
}

async fn inventory(State(app): Shared) -> axum::Json<InventoryList> {
    let items = app
        .config
        .inventory
        .nodes
        .iter()
        .filter(|n| n.connected)
        .map(|n| inventory_entry(&app, &n.certname))
        .collect();
    axum::Json(InventoryList { items })
}

async fn inventory_post(State(app): Shared, req: Request) -> ApiResult<axum::Json<InventoryList>> {
    let r: InventoryRequest = body(&app, req.into_body()).await?;
    Ok(axum::Json(InventoryList {
        items: r.nodes.iter().map(|n| inventory_entry(&app, n)).collect(),
    }))
}

async fn inventory_node(State(app): Shared, Path(node): Path<String>) -> axum::Json<InventoryNode> {
    axum::Json(inventory_entry(&app, &node))
}

fn task_env(app: &App, p: &Params) -> ApiResult<String> {
    let env = p.get("environment").unwrap_or("production").to_owned();
    if env.is_empty() {
        return Err(Failure::validation(
            "The 'environment' parameter must not be empty",
        ));
    }
    check_environment(app, &env)?;
    Ok(env)
}

async fn tasks(
    State(app): Shared,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<axum::Json<TaskList>> {
    let tok = token(req.extensions());
    let env = task_env(&app, &Params::parse(q.as_deref()))?;
    let items = modules::list(&app.config)
        .into_iter()
        .map(|(name, module, task)| TaskRef {
            id: format!("{}{API_PREFIX}/tasks/{module}/{task}", app.base),
            permitted: Some(tok.may_run(&name)),
            name,
        })
        .collect();
    Ok(axum::Json(TaskList {
        environment: TaskEnvironment {
            name: env,
            code_id: None,
        },
        items,
    }))
}

async fn task(
    State(app): Shared,
    Path((module, task)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<axum::Json<TaskDetails>> {
    let env = task_env(&app, &Params::parse(q.as_deref()))?;
    if !modules::valid_segment(&module) || !modules::valid_segment(&task) {
        return Err(Failure::validation(format!(
            "Invalid task name '{module}::{task}'"
        )));
    }
    let resolved = modules::resolve(&app.config, &module, &task)?;
    let mut files = Vec::new();
    if let Some(exe) = &resolved.executable {
        let path = exe.clone();
        let digest = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
            use sha2::Digest;
            use std::io::Read;
            let mut f = std::fs::File::open(&path)?;
            let mut h = sha2::Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut size = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                h.update(&buf[..n]);
            }
            Ok((hex::encode(h.finalize()), size))
        })
        .await
        .map_err(|e| Failure::internal(e.to_string()))?
        .map_err(|e| Failure::internal(format!("cannot read the task file: {e}")))?;
        let filename = exe
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_owned();
        files.push(TaskFile {
            uri: FileUri {
                path: format!("/{module}/tasks/{filename}"),
                params: json!({ "environment": env }),
            },
            filename,
            sha256: digest.0,
            size_bytes: digest.1,
        });
    }
    Ok(axum::Json(TaskDetails {
        id: format!("{}{API_PREFIX}/tasks/{module}/{task}", app.base),
        name: resolved.name,
        environment: TaskEnvironment {
            name: env,
            code_id: None,
        },
        metadata: resolved.metadata,
        files,
    }))
}
