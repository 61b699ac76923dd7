//! `/tasks`: the tasks the modules hold, with their metadata and files.

use axum::extract::{RawQuery, Request, State};
use orchestrator_types::task::{FileUri, TaskEnvironment};
use orchestrator_types::{API_PREFIX, TaskDetails, TaskFile, TaskList, TaskRef};
use serde_json::json;

use super::{ApiPath, ApiResult, Shared, check_environment, token};
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
