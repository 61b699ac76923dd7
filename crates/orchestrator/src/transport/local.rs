//! The `local` transport: a simulated node is a process on this machine,
//! started the way pxp-agent starts a task (the cached file, or its copy in a
//! per-run install directory, as the only argument; the node's environment
//! plus `PT_*` and nothing of the service's; `/` or the node's `workdir`;
//! only fds 0-2 open).

use std::path::Path;

use tokio::sync::watch;

use super::{SERVICE_PATH, TaskRun, Transport, input_of, pt_env, stdin_of};
use crate::app::App;
use crate::cache;
use crate::config::NodeSpec;
use crate::exec::{self, Ending, Outcome, StopLevel};

/// A simulated node of the service's inventory.
#[derive(Debug)]
pub struct Local<'a> {
    pub app: &'a App,
    pub node: &'a NodeSpec,
}

fn not_started(msg: String) -> Outcome {
    Outcome {
        ending: Ending::SpawnFailed(msg),
        stdout: Vec::new(),
        stderr: Vec::new(),
        overflow: false,
        stop: None,
    }
}

impl Transport for Local<'_> {
    async fn run(&self, task: &TaskRun<'_>, stop: watch::Receiver<StopLevel>) -> Outcome {
        let (app, node) = (self.app, self.node);
        // Prepare: the task's files from the service's cache (one stat on a
        // hit; only the job's first run copies), or an install directory.
        let (program, installdir) = if task.files.len() > 1 {
            let (cache, spool, files) = (
                app.cache_dir.clone(),
                app.spool_dir.clone(),
                task.files.to_vec(),
            );
            match tokio::task::spawn_blocking(move || cache::install(&cache, &spool, &files)).await
            {
                Ok(Ok((dir, exe))) => (exe, Some(dir)),
                Ok(Err(msg)) => return not_started(msg),
                Err(e) => return not_started(e.to_string()),
            }
        } else {
            match task.files.first().map(|f| cache::fetch(&app.cache_dir, f)) {
                Some(Ok(p)) => (p, None),
                Some(Err(msg)) => return not_started(msg),
                None => return not_started("the task has no executable".into()),
            }
        };
        let input = installdir.as_ref().map(|d| {
            input_of(
                task.input,
                Some(&d.path().to_string_lossy()),
                task.task_name,
            )
        });
        let mut env: Vec<(String, String)> = node
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !node.env.contains_key("PATH") {
            env.push(("PATH".into(), SERVICE_PATH.into()));
        }
        if task.input_method != "stdin" {
            let all = input
                .clone()
                .unwrap_or_else(|| input_of(task.input, None, task.task_name));
            env.extend(pt_env(&all));
        }
        let stdin = (task.input_method != "environment").then(|| match &input {
            Some(i) => stdin_of(i),
            None => task.stdin.to_vec(),
        });
        // Run (and stop, on a timeout or a force stop: the whole tree).
        let spec = exec::Spec {
            program: &program,
            stdin,
            env,
            workdir: node.workdir.as_deref().unwrap_or(Path::new("/")),
            timeout: task.timeout,
            kill_grace: task.kill_grace,
            max_output: task.max_output,
            nice: app.config.task_nice,
            spawner: &app.spawner,
        };
        let outcome = exec::run(spec, stop).await;
        // Clean up: the install directory goes with its guard.
        drop(installdir);
        outcome
    }
}
