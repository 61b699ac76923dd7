//! Task targets: `POST /command/task_target`, `GET /scopes/task_targets[/:id]`,
//! and what a token limited to one may do.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchestrator_types::error::kind;
use orchestrator_types::task_target::TaskTargetCreated;
use orchestrator_types::{API_PREFIX, JobRef, TaskTarget, TaskTargetList, TaskTargetRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiPath, ApiResult, Shared, body};
use crate::app::App;
use crate::config::TokenSpec;
use crate::error::Failure;
use crate::query::job_id;
use crate::store::Kind;

/// Not documented by PE: the kind for a task target that does not exist.
const UNKNOWN_TASK_TARGET: &str = "puppetlabs.orchestrator/unknown-task-target";

/// A task target as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub name: u64,
    pub display_name: String,
    pub tasks: Vec<String>,
    pub all_tasks: bool,
    pub nodes: Vec<String>,
    pub node_groups: Vec<String>,
    pub pql_query: Option<String>,
}

impl Record {
    fn render(&self, base: &str) -> TaskTarget {
        TaskTarget {
            id: url(base, self.name),
            name: self.name.to_string(),
            display_name: self.display_name.clone(),
            tasks: self.tasks.clone(),
            all_tasks: self.all_tasks,
            nodes: self.nodes.clone(),
            node_groups: self.node_groups.clone(),
            pql_query: self.pql_query.clone(),
        }
    }
}

fn url(base: &str, name: u64) -> String {
    format!("{base}{API_PREFIX}/scopes/task_targets/{name}")
}

fn unknown(raw: &str) -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        UNKNOWN_TASK_TARGET,
        format!("No task target exists with id {raw}"),
    )
    .details(json!({ "id": raw }))
}

pub async fn create(State(app): Shared, req: Request) -> ApiResult<Response> {
    let r: TaskTargetRequest = body(&app, req.into_body()).await?;
    if r.display_name.trim().is_empty() {
        return Err(Failure::invalid_body(
            "The 'display_name' of a task target must not be empty",
        ));
    }
    let all_tasks = r.all_tasks == Some(true);
    let tasks = if all_tasks {
        Vec::new()
    } else {
        r.tasks.unwrap_or_default()
    };
    if !all_tasks && tasks.is_empty() {
        return Err(Failure::invalid_body(
            "A task target needs 'tasks' (a non-empty list) or 'all_tasks': true",
        ));
    }
    for t in &tasks {
        crate::modules::split_name(t)?;
    }
    let rec = Record {
        name: app.next_task_target(),
        display_name: r.display_name,
        tasks,
        all_tasks,
        nodes: r.nodes,
        node_groups: r.node_groups,
        pql_query: r.pql_query.filter(|q| !q.trim().is_empty()),
    };
    app.store.put(Kind::TaskTarget, rec.name, &rec);
    app.store.flush().await.map_err(Failure::internal)?;
    // PE answers 200 here, not 202.
    Ok((
        StatusCode::OK,
        axum::Json(TaskTargetCreated {
            task_target: JobRef {
                id: url(&app.base, rec.name),
                name: rec.name.to_string(),
            },
        }),
    )
        .into_response())
}

pub async fn list(State(app): Shared) -> ApiResult<axum::Json<TaskTargetList>> {
    let all: Vec<Record> = app.store.all(Kind::TaskTarget).await?;
    Ok(axum::Json(TaskTargetList {
        items: all.iter().map(|r| r.render(&app.base)).collect(),
    }))
}

pub async fn one(
    State(app): Shared,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<TaskTarget>> {
    let name = job_id(&id)?;
    let rec: Record = app
        .store
        .get(Kind::TaskTarget, name)
        .await?
        .ok_or_else(|| unknown(&id))?;
    Ok(axum::Json(rec.render(&app.base)))
}

/// The nodes of `nodes` a token may run `task` on: all of them, unless the
/// token is limited to a task target; then only the target's nodes (PE
/// leaves the others out silently), and the task must be one of the
/// target's.
pub async fn permitted(
    app: &Arc<App>,
    tok: &TokenSpec,
    task: &str,
    nodes: Vec<String>,
) -> ApiResult<Vec<String>> {
    let Some(id) = &tok.task_target else {
        return Ok(nodes);
    };
    let refused = |msg: String| {
        Failure::new(StatusCode::FORBIDDEN, kind::NOT_PERMITTED, msg)
            .details(json!({ "task": task, "task_target": id }))
    };
    let rec: Option<Record> = match job_id(id) {
        Ok(n) => app.store.get(Kind::TaskTarget, n).await?,
        Err(_) => None,
    };
    let Some(rec) = rec else {
        return Err(refused(format!(
            "Your token is limited to task target {id}, which does not exist"
        )));
    };
    if !rec.all_tasks && !rec.tasks.iter().any(|t| t == task) {
        return Err(refused(format!(
            "Task target {id} ({}) does not include task {task}",
            rec.display_name
        )));
    }
    let mut pool: HashSet<String> = rec.nodes.iter().cloned().collect();
    pool.extend(
        app.config
            .inventory
            .nodes
            .iter()
            .filter(|n| n.groups.iter().any(|g| rec.node_groups.contains(g)))
            .map(|n| n.certname.clone()),
    );
    if let Some(q) = &rec.pql_query {
        pool.extend(crate::scope::query_puppetdb(app, &Value::String(q.clone())).await?);
    }
    let kept: Vec<String> = nodes.into_iter().filter(|n| pool.contains(n)).collect();
    if kept.is_empty() {
        return Err(refused(format!(
            "None of the nodes are in task target {id} ({}); you may not run {task} on them",
            rec.display_name
        )));
    }
    Ok(kept)
}
