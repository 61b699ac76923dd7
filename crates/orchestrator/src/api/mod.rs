//! The HTTP API under `/orchestrator/v1`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orchestrator_types::error::kind;
use orchestrator_types::{API_PREFIX, JobCreated, JobRef};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::app::App;
use crate::config::TokenSpec;
use crate::error::Failure;
use crate::job::JobHandle;
use crate::job::JobRecord;
use crate::modules;
use crate::query::Params;
use crate::runner::{self, Plan};

mod checks;
pub(crate) use commands::{Origin, submit_deploy, submit_task};
mod commands;
mod inventory;
mod jobs;
mod node_inventory;
mod plans;
mod schedules;
pub(crate) use schedules::tick as schedules_tick;
mod task_targets;
mod tasks;
mod usage;

pub(crate) type Shared = State<Arc<App>>;

/// Path segments, answering a bad one (such as `%FF`, not UTF-8) with PE's
/// JSON validation error instead of axum's plain text.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Failure> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| Self(t))
            .map_err(|e| Failure::validation(format!("The URL is not valid: {}", e.body_text())))
    }
}
pub(crate) type ApiResult<T> = Result<T, Failure>;

pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/", get(root))
        // Advertised by PE's root document but undocumented; answered here
        // like the Status API so that the link leads somewhere.
        .route("/status", get(status))
        .route("/command/task", post(commands::task))
        .route("/command/deploy", post(commands::deploy))
        .route("/command/stop", post(commands::stop))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::one))
        .route("/jobs/{id}/nodes", get(jobs::nodes))
        .route("/jobs/{id}/events", get(jobs::events))
        .route("/jobs/{id}/report", get(jobs::report))
        .route("/inventory", get(inventory::list).post(inventory::lookup))
        .route("/inventory/{node}", get(inventory::one))
        .route("/command/task_target", post(task_targets::create))
        .route("/command/plan_run", post(plans::plan_run))
        .route("/command/plan_start", post(plans::plan_start))
        .route("/command/plan_task", post(plans::plan_task))
        .route("/command/plan_finish", post(plans::plan_finish))
        .route("/command/stop_plan", post(plans::stop_plan))
        .route(
            "/scheduled_jobs/environment_jobs",
            get(schedules::list).post(schedules::create),
        )
        .route(
            "/scheduled_jobs/environment_jobs/{id}",
            get(schedules::one)
                .put(schedules::edit)
                .delete(schedules::remove),
        )
        .route("/plan_jobs", get(plans::list))
        .route("/plan_jobs/{id}", get(plans::one))
        .route("/plan_jobs/{id}/events", get(plans::events))
        .route("/plan_jobs/{id}/events/{event}", get(plans::event))
        .route("/plan_jobs/{id}/event/{event}", get(plans::event))
        .route("/scopes/task_targets", get(task_targets::list))
        .route("/scopes/task_targets/{id}", get(task_targets::one))
        .route("/usage", get(usage::get))
        .route("/tasks", get(tasks::list))
        .route("/tasks/{module}/{task}", get(tasks::one))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(app.clone(), auth));
    // The root document answers with a trailing slash too.
    let root_slash = get(root)
        .fallback(wrong_method)
        .layer(middleware::from_fn_with_state(app.clone(), auth));
    Router::new()
        .nest(API_PREFIX, api)
        .nest(
            orchestrator_types::INVENTORY_PREFIX,
            node_inventory::router(app.clone()),
        )
        .route(&format!("{API_PREFIX}/"), root_slash)
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

/// PE answers every error as `{kind, msg, details}`, a wrong method too.
async fn wrong_method(
    method: axum::http::Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "puppetlabs.orchestrator/method-not-allowed",
        format!(
            "{method} is not allowed on {}; see the root document at /orchestrator/v1",
            uri.path()
        ),
    )
    .details(json!({ "method": method.as_str(), "path": uri.path() }))
}

async fn status() -> impl IntoResponse {
    axum::Json(
        json!({ "service_version": env!("CARGO_PKG_VERSION"), "service_status_version": 1,
        "detail_level": "info", "state": "running", "status": {} }),
    )
}

/// RBAC like PE: `X-Authentication` or `?token=` (an empty header counts as
/// none); the token itself is never logged.
async fn auth(State(app): Shared, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get("x-authentication")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|t| !t.is_empty());
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
    let Some(spec) = app.config.token(&token).cloned() else {
        return Failure::new(
            StatusCode::UNAUTHORIZED,
            kind::INVALID_TOKEN,
            "The provided token is invalid; get a new one (puppet access login) or check the orchestrator's tokens file",
        )
        .into_response();
    };
    req.extensions_mut().insert(spec);
    next.run(req).await
}

pub(crate) fn token(req_ext: &axum::http::Extensions) -> TokenSpec {
    req_ext
        .get::<TokenSpec>()
        .cloned()
        .unwrap_or_else(|| TokenSpec::new(""))
}

async fn root(State(app): Shared) -> impl IntoResponse {
    let b = format!("{}{API_PREFIX}", app.base);
    axum::Json(json!({
        "info": {
            "title": "Orchestrator API (Kick orchestrator)",
            "description": "Kick's implementation of the Puppet Enterprise Orchestrator API v1, running tasks on local and SSH nodes",
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

/// The `limit` and `offset` of a listing request.
pub(crate) struct Page {
    pub limit: Option<u64>,
    pub offset: u64,
}

impl Page {
    pub fn parse(p: &Params) -> ApiResult<Page> {
        Ok(Page {
            limit: p.uint("limit")?,
            offset: p.uint("offset")?.unwrap_or(0),
        })
    }

    /// The requested window of `rows`.
    pub fn of<I: Iterator>(&self, rows: I) -> impl Iterator<Item = I::Item> {
        rows.skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
            .take(
                self.limit
                    .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)),
            )
    }
}

/// The `order_by` keys of `GET /jobs` and `GET /plan_jobs`.
pub(crate) const JOB_ORDER_BY: &[&str] = &["owner", "timestamp", "environment", "name", "state"];

/// What every listing reads before its own parameters: the page, `order_by` and `order`.
pub(crate) struct Listing {
    pub page: Page,
    pub order_by: String,
    /// `asc` or `desc`, as the pagination echoes it.
    pub order: String,
    pub desc: bool,
}

impl Listing {
    /// `order_by` is one of `keys`, `default` when absent. Read in the order the listings
    /// always read them: the first bad one is the error.
    pub fn parse(p: &Params, keys: &[&str], default: &str) -> ApiResult<Listing> {
        let page = Page::parse(p)?;
        let order_by = p
            .one_of("order_by", keys)?
            .unwrap_or_else(|| default.to_owned());
        let order = p.one_of("order", &["asc", "desc", "ASC", "DESC"])?;
        let order = order.unwrap_or_else(|| "asc".into()).to_lowercase();
        let desc = order == "desc";
        Ok(Listing {
            page,
            order_by,
            order,
            desc,
        })
    }

    /// `pagination` of a listing: the request's window, the total, the order.
    pub fn pagination(
        self,
        total: u64,
        job_type: Option<String>,
    ) -> orchestrator_types::Pagination {
        orchestrator_types::Pagination {
            limit: self.page.limit,
            offset: Some(self.page.offset),
            total: Some(total),
            order: Some(self.order),
            order_by: Some(self.order_by),
            job_type,
        }
    }
}

/// Reads a JSON body within the size limit.
pub(crate) async fn body<T: DeserializeOwned>(app: &App, body: Body) -> ApiResult<T> {
    parse(&body_bytes(app, body).await?)
}

/// A JSON body parsed as `T`.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::invalid_body(format!("The request body is not valid: {e}")))
}

/// The files of a task with their sha256 (hashing reads them: off the
/// async workers).
pub(crate) async fn task_files(
    app: &Arc<App>,
    task: &modules::ResolvedTask,
) -> ApiResult<Vec<crate::cache::TaskFile>> {
    let (app, task) = (app.clone(), task.clone());
    tokio::task::spawn_blocking(move || crate::cache::task_files(&app.config, &task))
        .await
        .map_err(|e| Failure::internal(e.to_string()))?
}

/// A body within the size limit.
pub(crate) async fn body_bytes(app: &App, body: Body) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, app.config.max_body_bytes)
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
        })
}

pub(crate) fn check_environment(app: &App, env: &str) -> ApiResult<()> {
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

pub(crate) fn created(app: &App, name: u64) -> Response {
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

/// Saves a new job and starts running it. The job is committed before its
/// id is given out, so an id once answered is never handed out again.
pub(crate) async fn start(app: &Arc<App>, mut rec: JobRecord, mut plan: Plan) -> ApiResult<u64> {
    let name = rec.name;
    plan.nodes = rec.nodes.iter().map(|n| app.target(&n.name)).collect();
    app.store.create(&mut rec);
    app.store.flush().await.map_err(Failure::internal)?;
    let job = Arc::new(JobHandle::new(rec, app.store.clone()));
    app.insert(job.clone());
    runner::spawn(app.clone(), job, plan);
    Ok(name)
}
