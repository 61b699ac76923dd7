//! A service killed mid-job leaves nothing running unseen. While a task
//! runs on an SSH node, a small record in `<state-dir>/remote-runs/` names
//! the node and the task's PID there; it is removed when the run ends. On
//! the next start, the store has already failed the interrupted nodes
//! ("interrupted: the Kick orchestrator stopped"); for each record left,
//! Kick connects to the node again, ends the task's whole tree there, and
//! adds to the node's stored result what it found: `details.remote.state`
//! `ended` (with the stop's report) or `unknown` (why).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{connect, scripts};
use crate::app::App;
use crate::store::NodeQuery;
use crate::transport::Target;

const DIR: &str = "remote-runs";

/// What is noted about a run in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteRun {
    pub certname: String,
    /// The task's process on the node (the run script, its process group).
    pub pid: u32,
    pub run_id: String,
}

/// Where the record of node `idx` of job `job` goes.
pub fn record_path(app: &App, job: u64, idx: usize) -> PathBuf {
    app.store.dir().join(DIR).join(format!("{job}-{idx}.json"))
}

/// Notes `run` at `path` (atomically: a crash leaves the old file or the
/// new one, never half of one).
pub fn write(path: &Path, run: &RemoteRun) {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| serde_json::to_vec(run).map_err(std::io::Error::other))
        .and_then(|bytes| crate::atomic::write(path, &bytes));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), "cannot note the remote run: {e}");
    }
}

/// Ends the runs a killed service left on SSH nodes and records what it
/// found in their jobs.
pub async fn recover(app: Arc<App>) {
    let dir = app.store.dir().join(DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut tasks = tokio::task::JoinSet::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let at = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.split_once('-'))
            .and_then(|(j, n)| Some((j.parse::<u64>().ok()?, n.parse::<usize>().ok()?)));
        let run = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<RemoteRun>(&b).ok());
        let (Some(run), Some((job, node))) = (run, at) else {
            tracing::warn!(path = %path.display(), "unreadable remote-run record removed");
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let app = app.clone();
        tasks.spawn(async move {
            let remote = end(&app, &run).await;
            tracing::warn!(
                job, node = %run.certname, state = %remote["state"],
                "a run left by the previous service: {}", remote["msg"]
            );
            amend(&app, job, node, &run, remote).await;
            let _ = std::fs::remove_file(&path);
        });
    }
    while tasks.join_next().await.is_some() {}
    let _ = app.store.flush().await;
}

async fn end(app: &App, run: &RemoteRun) -> Value {
    let Some(Target::Ssh(t)) = app.target(&run.certname) else {
        return json!({
            "state": "unknown",
            "msg": format!(
                "after its restart Kick could not end the task (PID {}) on {}: the node has no SSH connection entry any more",
                run.pid, run.certname
            ),
        });
    };
    let session = match connect::open(&t, app.ssh.known_hosts.clone()).await {
        Ok(s) => s,
        Err(e) => {
            return json!({
                "state": "unknown",
                "msg": format!(
                    "after its restart Kick could not connect to {} to end the task (PID {}): {}",
                    run.certname, run.pid, e.msg
                ),
            });
        }
    };
    let report = super::stop_with(&session, &t, run.pid, &run.run_id, app.kill_grace).await;
    let _ = session
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    match report {
        Some(text) if text.contains(scripts::STOPPED) => json!({
            "state": "ended",
            "msg": format!(
                "after its restart Kick connected to {} again and ended the task's processes (PID {} and all it started)",
                run.certname, run.pid
            ),
            "report": text.trim(),
        }),
        other => json!({
            "state": "unknown",
            "msg": format!(
                "after its restart Kick connected to {} again but could not end every process of the task (PID {})",
                run.certname, run.pid
            ),
            "report": other.unwrap_or_default().trim(),
        }),
    }
}

/// Adds `remote` to the stored node's result.
async fn amend(app: &App, job: u64, idx: usize, run: &RemoteRun, remote: Value) {
    let q = NodeQuery {
        state: None,
        order_by: String::new(),
        desc: false,
        limit: Some(1),
        offset: idx as u64,
    };
    let Ok((nodes, _)) = app.store.nodes(job, q).await else {
        return;
    };
    let Some(mut node) = nodes.into_iter().next() else {
        return;
    };
    if node.name != run.certname {
        return;
    }
    let msg = remote["msg"].as_str().unwrap_or_default().to_owned();
    if let Some(err) = node
        .result
        .as_mut()
        .and_then(|r| r.get_mut("_error"))
        .and_then(Value::as_object_mut)
    {
        if let Some(Value::String(m)) = err.get_mut("msg") {
            m.push_str("; ");
            m.push_str(&msg);
        }
        let details = err.entry("details").or_insert_with(|| json!({}));
        if let Some(d) = details.as_object_mut() {
            d.insert("remote".into(), remote);
        }
    }
    app.store.put_node(job, idx, &node);
}
