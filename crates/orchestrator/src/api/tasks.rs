//! `/tasks`: the tasks the modules hold, with their metadata and files.

use axum::extract::{RawQuery, Request, State};
use orchestrator_types::task::{FileUri, TaskEnvironment};
use orchestrator_types::{API_PREFIX, TaskDetails, TaskFile, TaskList, TaskRef};
use serde_json::json;

use super::{ApiPath, ApiResult, Shared, check_environment, task_files, token};
use crate::app::App;
use crate::error::Failure;
use crate::modules;
use crate::query::Params;
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

pub async fn list(
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

pub async fn one(
    State(app): Shared,
    ApiPath((module, task)): ApiPath<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<axum::Json<TaskDetails>> {
    let env = task_env(&app, &Params::parse(q.as_deref()))?;
    if !modules::valid_segment(&module) || !modules::valid_segment(&task) {
        return Err(Failure::validation(format!(
            "Invalid task name '{module}::{task}'"
        )));
    }
    let resolved = modules::resolve(&app.config, &module, &task)?;
    let found = task_files(&app, &resolved).await?;
    let files = found
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            // The executable by its name, the other files by their path.
            let (path, filename) = match i {
                0 => (format!("/{module}/tasks/{}", f.filename), f.filename),
                _ => (format!("/{}", f.install), f.install.clone()),
            };
            TaskFile {
                uri: FileUri {
                    path,
                    params: json!({ "environment": env }),
                },
                filename,
                sha256: f.sha256,
                size_bytes: f.size,
            }
        })
        .collect();
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
