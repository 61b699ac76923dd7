//! Finding tasks the way Puppet does: `<module root>/tasks/<task>.json` holds
//! the metadata, the executable sits next to it (`implementations` honoured:
//! the first listed file that exists), `init` is the module's default task.

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use orchestrator_types::error::kind;
use serde_json::Value;

use crate::config::Config;
use crate::error::Failure;

/// A task found on disk.
#[derive(Debug, Clone)]
pub struct ResolvedTask {
    /// `module::task` (`module` for `init`).
    pub name: String,
    /// Contents of `tasks/<task>.json` (`{}` when there is none).
    pub metadata: Value,
    /// The file that runs, if any exists.
    pub executable: Option<PathBuf>,
    /// How the task wants its parameters: `stdin`, `environment` or `both`.
    pub input_method: String,
}

impl ResolvedTask {
    /// The metadata's `files`, then those of the implementation that runs.
    pub fn files(&self) -> Vec<String> {
        let list = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out = list(self.metadata.get("files"));
        let file = self
            .executable
            .as_ref()
            .and_then(|e| e.file_name())
            .and_then(|f| f.to_str());
        if let (Some(file), Some(impls)) = (
            file,
            self.metadata
                .get("implementations")
                .and_then(Value::as_array),
        ) && let Some(i) = impls
            .iter()
            .find(|i| i.get("name").and_then(Value::as_str) == Some(file))
        {
            out.extend(list(i.get("files")));
        }
        out
    }

    /// Whether the metadata says `supports_noop: true`.
    pub fn supports_noop(&self) -> bool {
        self.metadata
            .get("supports_noop")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Module name → root, explicit modules first, then the modulepath in order.
pub fn module_roots(config: &Config) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = config.modules.clone();
    for dir in &config.modulepath {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<(String, PathBuf)> = rd
            .filter_map(Result::ok)
            .filter(|e| e.path().join("tasks").is_dir())
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .filter(|(n, _)| valid_segment(n))
            .collect();
        names.sort();
        for (n, p) in names {
            if !out.iter().any(|(m, _)| *m == n) {
                out.push((n, p));
            }
        }
    }
    out
}

/// `[a-z][a-z0-9_]*`, Puppet's module and task name rule.
pub fn valid_segment(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_')
}

/// All tasks: `(full name, module, task)`, sorted by name.
pub fn list(config: &Config) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (module, root) in module_roots(config) {
        let Ok(rd) = std::fs::read_dir(root.join("tasks")) else {
            continue;
        };
        let mut tasks: Vec<String> = rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|f| {
                let (stem, ext) = f.split_once('.').unwrap_or((f.as_str(), ""));
                (!matches!(ext, "md" | "conf") && valid_segment(stem)).then(|| stem.to_owned())
            })
            .collect();
        tasks.sort();
        tasks.dedup();
        for t in tasks {
            let full = if t == "init" {
                module.clone()
            } else {
                format!("{module}::{t}")
            };
            out.push((full, module.clone(), t));
        }
    }
    out.sort();
    out
}

/// Splits `module::task` (or `module`) after validating it.
pub fn split_name(name: &str) -> Result<(String, String), Failure> {
    let (m, t) = name.split_once("::").unwrap_or((name, "init"));
    if !valid_segment(m) || !valid_segment(t) {
        return Err(Failure::invalid_body(format!(
            "Invalid task name '{name}': use module::task with lowercase letters, digits and underscores"
        )));
    }
    Ok((m.to_owned(), t.to_owned()))
}

/// Finds a task; 404 `unknown-task` when it does not exist.
pub fn resolve(config: &Config, module: &str, task: &str) -> Result<ResolvedTask, Failure> {
    let full = if task == "init" {
        module.to_owned()
    } else {
        format!("{module}::{task}")
    };
    let unknown = || {
        Failure::new(
            StatusCode::NOT_FOUND,
            kind::UNKNOWN_TASK,
            format!("Could not find a task named {full}"),
        )
        .details(serde_json::json!({ "task": full }))
    };
    let root = module_roots(config)
        .into_iter()
        .find(|(m, _)| m == module)
        .map(|(_, r)| r)
        .ok_or_else(unknown)?;
    let dir = root.join("tasks");
    let meta_path = dir.join(format!("{task}.json"));
    let metadata: Value = match std::fs::read(&meta_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Failure::internal(format!(
                "the metadata of task {full} ({}) is not valid JSON: {e}",
                meta_path.display()
            ))
        })?,
        Err(_) => Value::Object(Default::default()),
    };
    let executable = find_executable(&dir, task, &metadata);
    if executable.is_none() && !meta_path.exists() {
        return Err(unknown());
    }
    let mut input_method = metadata
        .get("input_method")
        .and_then(Value::as_str)
        .unwrap_or("both")
        .to_owned();
    if let (Some(exe), Some(impls)) = (
        &executable,
        metadata.get("implementations").and_then(Value::as_array),
    ) {
        let file = exe.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        if let Some(m) = impls
            .iter()
            .find(|i| i.get("name").and_then(Value::as_str) == Some(file))
            .and_then(|i| i.get("input_method"))
            .and_then(Value::as_str)
        {
            input_method = m.to_owned();
        }
    }
    Ok(ResolvedTask {
        name: full,
        metadata,
        executable,
        input_method,
    })
}

fn find_executable(dir: &Path, task: &str, metadata: &Value) -> Option<PathBuf> {
    if let Some(impls) = metadata.get("implementations").and_then(Value::as_array) {
        return impls
            .iter()
            .filter_map(|i| i.get("name").and_then(Value::as_str))
            .filter(|n| !n.contains('/') && !n.starts_with('.'))
            .map(|n| dir.join(n))
            .find(|p| p.is_file());
    }
    let exact = dir.join(task);
    if exact.is_file() {
        return Some(exact);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name().and_then(|f| f.to_str()).is_some_and(|f| {
                    f.split_once('.')
                        .is_some_and(|(s, ext)| s == task && !matches!(ext, "json" | "md"))
                })
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}
