//! Running a job: nodes start in order under the global concurrency limit
//! (and the job's own, for deploys), each node's process result becomes its
//! `result` by PE's rules, and events are recorded as things happen.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use orchestrator_types::error::kind;
use orchestrator_types::{EventType, JobState, NodeState};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::app::App;
use crate::cache::TaskFile;
use crate::exec::{Ending, Outcome, StopLevel};
use crate::job::JobHandle;
use crate::job::{Command, Detail};
use crate::time;
use crate::transport::{self, Target, TaskRun};

/// Kind of the `_error` pxp-agent reports when it cannot run a task.
pub const EXECUTION_ERROR: &str = "puppetlabs.pxp-agent/execution-error";
/// Kind of the `_error` of nodes killed by a force stop.
pub use orchestrator_types::error::kind::JOB_STOPPED;

/// Everything a job needs to run.
#[derive(Debug)]
pub struct Plan {
    pub command: Command,
    pub task_name: String,
    /// The executable first, then the files of a multi-file task.
    pub files: Vec<TaskFile>,
    pub input_method: String,
    /// Parameters in the request's order, then `_noop` when the job is a
    /// noop one; each run appends `_installdir` (multi-file tasks) and
    /// `_task`, as pxp-agent does.
    pub input: Vec<(String, Value)>,
    pub noop: bool,
    pub timeout: Option<Duration>,
    /// Deploy's `concurrency`.
    pub job_concurrency: Option<usize>,
    /// How each node is reached, in the job's node order (`None`: unknown
    /// node).
    pub nodes: Vec<Option<Target>>,
    /// Public base URL, for links in results.
    pub base: String,
    /// Output cap per stream.
    pub max_output: usize,
}

fn what(command: Command, task: &str) -> String {
    match command {
        Command::Deploy => "puppet".to_owned(),
        Command::Task | Command::PlanTask => format!("task {task}"),
    }
}

/// Runs a job in the background. Whatever happens in the runner, the job
/// ends: a panic fails it, saying so.
pub fn spawn(app: Arc<App>, job: Arc<JobHandle>, plan: Plan) {
    app.job_started();
    tokio::spawn(async move {
        let run = tokio::spawn(run_job(app.clone(), job.clone(), plan)).await;
        if let Err(e) = run {
            let reason = format!(
                "the orchestrator's job runner failed ({}); this is a bug, please report it",
                panic_text(e.into_panic().as_ref())
            );
            tracing::error!(job = job.name, "{reason}");
            // Its node tasks were dropped with it; end their processes too.
            job.stop.send_replace(StopLevel::Force);
            job.lock().finish_interrupted(&reason);
        }
        end(&app, &job).await;
        app.job_ended();
    });
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// Once its last change is committed, an ended job leaves memory: from then
/// on it is read from the store.
async fn end(app: &App, job: &JobHandle) {
    match app.store.flush().await {
        Ok(()) => app.evict(job.name),
        Err(e) => tracing::error!(job = job.name, "job kept in memory only: {e}"),
    }
}

/// Runs the job to its last event.
async fn run_job(app: Arc<App>, job: Arc<JobHandle>, plan: Plan) {
    {
        let mut rec = job.lock();
        // A stop can arrive before the job got going; it then stays `stopping`.
        if rec.state == JobState::New {
            rec.set_state(JobState::Ready);
            rec.set_state(JobState::Running);
        }
    }
    let plan = Arc::new(plan);
    let stdin = Arc::new(transport::stdin_of(&transport::input_of(
        &plan.input,
        None,
        &plan.task_name,
    )));
    let job_slots = plan
        .job_concurrency
        .map(|n| Arc::new(Semaphore::new(n.max(1))));
    let mut stop_rx = job.stop.subscribe();
    let mut running = JoinSet::new();
    let what = what(plan.command, &plan.task_name);

    for (idx, spec) in plan.nodes.iter().enumerate() {
        if *stop_rx.borrow() != StopLevel::None {
            skip_rest(&job, idx, &what);
            break;
        }
        let Some(spec) = spec.as_ref().filter(|t| match t {
            Target::Local(n) => n.connected,
            Target::Ssh(_) | Target::Unusable(_) => true,
        }) else {
            let mut rec = job.lock();
            let name = rec.nodes[idx].name.clone();
            let msg = if spec.is_some() {
                // A simulated node marked disconnected: PE's words.
                format!("Error running {what} on {name}: {name} is not connected to the PCP broker")
            } else {
                format!(
                    "Error running {what} on {name}: {name} has no connection entry (none was \
                     created, or it was deleted), so Kick cannot reach it; add one with `kick \
                     inventory add {name} --user USER ...` or POST \
                     /inventory/v1/command/create-connection"
                )
            };
            let now = time::now();
            let n = &mut rec.nodes[idx];
            n.state = NodeState::Errored;
            n.timestamp = now;
            n.details = Some(json!({ "message": msg.clone() }));
            rec.push_event(
                EventType::NodeErrored,
                Some(idx),
                Detail::Value(json!({ "message": msg.clone() })),
                msg,
            );
            continue;
        };
        // Wait for a slot, unless the job is stopped meanwhile.
        let permits = tokio::select! {
            p = acquire(&app.slots, job_slots.as_ref()) => p,
            _ = stop_rx.wait_for(|l| *l != StopLevel::None) => None,
        };
        let Some(permits) = permits else {
            skip_rest(&job, idx, &what);
            break;
        };
        {
            let mut rec = job.lock();
            let now = time::now();
            let name = rec.nodes[idx].name.clone();
            let n = &mut rec.nodes[idx];
            n.state = NodeState::Running;
            n.start = Some(now);
            n.timestamp = now;
            let msg = match plan.command {
                Command::Deploy => format!("Started puppet run on {name} ..."),
                Command::Task | Command::PlanTask => format!("Started {what} on {name} ..."),
            };
            rec.push_event(
                EventType::NodeRunning,
                Some(idx),
                Detail::Noop(plan.noop),
                msg,
            );
        }
        let (app2, job2, plan2, stdin2, spec2) = (
            app.clone(),
            job.clone(),
            plan.clone(),
            stdin.clone(),
            spec.clone(),
        );
        running.spawn(async move {
            let ran = AssertUnwindSafe(async {
                let task = TaskRun {
                    task_name: &plan2.task_name,
                    files: &plan2.files,
                    input: &plan2.input,
                    input_method: &plan2.input_method,
                    timeout: plan2.timeout,
                    kill_grace: app2.kill_grace,
                    max_output: plan2.max_output,
                    stdin: &stdin2,
                    record: Some(crate::transport::ssh::recover::record_path(
                        &app2, job2.name, idx,
                    )),
                };
                let outcome = spec2.run(&app2, &task, job2.stop.subscribe()).await;
                record(&job2, &plan2, idx, outcome);
            })
            .catch_unwind()
            .await;
            if let Err(p) = ran {
                node_broke(&job2, idx, &panic_text(p.as_ref()));
            }
            drop(permits);
        });
        // Reap finished nodes as we go so the set stays small.
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
    // Every node's end is committed before the job is seen to end.
    if let Err(e) = app.store.flush().await {
        tracing::error!(job = job.name, "{e}");
    }

    {
        let mut rec = job.lock();
        let level = *job.stop.borrow();
        let state = match level {
            StopLevel::Shutdown => JobState::Failed,
            StopLevel::Graceful | StopLevel::Force => JobState::Stopped,
            StopLevel::None if rec.has_failures() => JobState::Failed,
            StopLevel::None => JobState::Finished,
        };
        rec.set_state(state);
        let states = rec.node_states();
        let mut detail = json!({ "state": state, "node_states": states });
        let message = if level == StopLevel::Shutdown {
            detail["reason"] = json!(crate::store::INTERRUPTED);
            format!(
                "Job failed: {} while it was running",
                crate::store::INTERRUPTED
            )
        } else {
            format!("Job {} {state}", rec.name)
        };
        rec.push_event(EventType::JobFinished, None, Detail::Value(detail), message);
    }
}

/// A node whose handling panicked fails with the reason, the job goes on.
fn node_broke(job: &JobHandle, idx: usize, why: &str) {
    let mut rec = job.lock();
    let name = rec.nodes[idx].name.clone();
    tracing::error!(job = job.name, node = %name, "node runner failed: {why}");
    let msg = format!(
        "The orchestrator failed while running the task on {name} ({why}); this is a bug, please report it"
    );
    let now = time::now();
    let n = &mut rec.nodes[idx];
    if n.state.is_terminal() {
        return;
    }
    n.state = NodeState::Failed;
    n.finish = Some(now);
    n.timestamp = now;
    n.details = Some(json!({ "message": msg.clone() }));
    n.result = Some(json!({ "_error": {
        "kind": orchestrator_types::error::kind::EXECUTION_FAILURE,
        "msg": msg.clone(),
        "details": { "node": name },
    }}));
    rec.push_event(EventType::NodeFailed, Some(idx), Detail::NodeResult, msg);
}

async fn acquire(
    global: &Arc<Semaphore>,
    job: Option<&Arc<Semaphore>>,
) -> Option<(
    tokio::sync::OwnedSemaphorePermit,
    Option<tokio::sync::OwnedSemaphorePermit>,
)> {
    let j = match job {
        Some(s) => Some(s.clone().acquire_owned().await.ok()?),
        None => None,
    };
    let g = global.clone().acquire_owned().await.ok()?;
    Some((g, j))
}

fn skip_rest(job: &JobHandle, from: usize, what: &str) {
    let mut rec = job.lock();
    let now = time::now();
    for idx in from..rec.nodes.len() {
        if rec.nodes[idx].state != NodeState::New {
            continue;
        }
        let name = rec.nodes[idx].name.clone();
        let msg = format!("Skipped {what} on {name}: the job was stopped before it started");
        let n = &mut rec.nodes[idx];
        n.state = NodeState::Skipped;
        n.timestamp = now;
        n.details = Some(json!({ "message": msg.clone() }));
        rec.push_event(
            EventType::NodeSkipped,
            Some(idx),
            Detail::Value(json!({ "message": msg.clone() })),
            msg,
        );
    }
}

/// PE's result rules for one process outcome: `(state, result)`.
pub fn task_result(outcome: &Outcome, max_output: usize) -> (NodeState, Value) {
    let error = |kind: &str, msg: String, details: Value| {
        json!({ "_error": {
        "kind": kind, "msg": msg, "details": details } })
    };
    if let Ending::Failed(e) = &outcome.ending {
        let mut details = e.details.clone();
        if let Some(d) = details.as_object_mut() {
            d.insert("issue_code".into(), json!(e.issue_code));
        }
        return (
            NodeState::Failed,
            json!({ "_error": {
                "kind": e.kind, "issue_code": e.issue_code, "msg": e.msg, "details": details } }),
        );
    }
    if let Ending::SpawnFailed(msg) = &outcome.ending {
        return (
            NodeState::Failed,
            error(
                EXECUTION_ERROR,
                format!("The task could not be started: {msg}"),
                json!({}),
            ),
        );
    }
    if outcome.overflow {
        return (
            NodeState::Failed,
            error(
                EXECUTION_ERROR,
                format!(
                    "The task's output exceeded the {} byte limit; the rest was discarded",
                    max_output
                ),
                json!({ "max_output_bytes": max_output }),
            ),
        );
    }
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let mut result = match serde_json::from_str::<Value>(stdout.trim()) {
        Ok(Value::Object(o)) => Value::Object(o),
        _ => json!({ "_output": stdout }),
    };
    normalise_error(&mut result);
    let has_error = result.get("_error").is_some();
    let generated = match &outcome.ending {
        Ending::Exited(0) => None,
        Ending::Exited(code) => Some((
            format!("The task errored with a code {code}"),
            json!({ "exitcode": code, "exit_code": code }),
        )),
        Ending::Signaled(sig) => Some((
            format!(
                "The task was killed by signal {sig} ({})",
                signal_name(*sig)
            ),
            json!({ "exitcode": null, "signal": sig, "signal_name": signal_name(*sig) }),
        )),
        Ending::TimedOut(t) => Some((
            format!(
                "The task timed out after {} seconds and was killed",
                t.as_secs()
            ),
            json!({ "exitcode": null, "timeout": t.as_secs() }),
        )),
        Ending::Killed(_) => Some((
            "The task was killed because its job was force-stopped".to_owned(),
            json!({ "exitcode": null }),
        )),
        Ending::SpawnFailed(_) | Ending::Failed(_) => None,
    };
    let mut state = if has_error {
        NodeState::Failed
    } else {
        NodeState::Finished
    };
    if let (false, Some((mut msg, details))) = (has_error, generated) {
        if stdout.trim().is_empty() && !stderr.trim().is_empty() {
            msg = format!("{msg}:\n{}", stderr.trim_end());
        }
        let kind = match outcome.ending {
            Ending::Killed(_) => JOB_STOPPED,
            _ => kind::TASK_ERROR,
        };
        let mut details = details;
        if let (Some(d), Some(stop)) = (details.as_object_mut(), &outcome.stop) {
            d.extend(stop.clone());
        }
        if let Some(o) = result.as_object_mut() {
            o.insert(
                "_error".into(),
                json!({ "kind": kind, "msg": msg, "details": details }),
            );
        }
        state = NodeState::Failed;
    }
    if matches!(outcome.ending, Ending::Killed(_)) {
        state = NodeState::Stopped;
    }
    (state, result)
}

/// The name of a Linux signal (`SIGTERM`), or `SIG<n>` for others.
fn signal_name(sig: i32) -> String {
    let name = match sig {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        10 => "USR1",
        11 => "SEGV",
        12 => "USR2",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        24 => "XCPU",
        25 => "XFSZ",
        _ => return format!("SIG{sig}"),
    };
    format!("SIG{name}")
}

/// Bolt's normalisation of a task-supplied `_error`.
fn normalise_error(result: &mut Value) {
    let Some(o) = result.as_object_mut() else {
        return;
    };
    match o.get_mut("_error") {
        None => {}
        Some(Value::Object(e)) => {
            e.entry("kind").or_insert_with(|| json!(kind::TASK_ERROR));
            e.entry("msg").or_insert_with(|| json!(""));
            match e.get("details") {
                None | Some(Value::Null) => {
                    e.insert("details".into(), json!({}));
                }
                Some(Value::Object(_)) => {}
                Some(other) => {
                    let other = other.clone();
                    e.insert("details".into(), json!({ "msg": other }));
                }
            }
        }
        Some(other) => {
            let msg = match &*other {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            *other = json!({ "kind": kind::TASK_ERROR, "msg": msg, "details": {} });
        }
    }
}

/// The run summary of a deploy node, in the shape PE's node_finished events
/// carry, from the psick::puppet_agent result.
fn deploy_summary(result: &Value, base_url: &str, job: u64, node: &str) -> Value {
    use sha2::Digest;
    let res = result.get("resources").cloned().unwrap_or(Value::Null);
    let count = |k: &str| res.get(k).and_then(Value::as_u64).unwrap_or(0);
    let hash = hex::encode(sha2::Sha256::digest(
        format!(
            "{job}/{node}/{}",
            result.get("config_version").unwrap_or(&Value::Null)
        )
        .as_bytes(),
    ))[..40]
        .to_owned();
    let config_version = match result.get("config_version") {
        Some(Value::String(s)) => json!(s),
        Some(Value::Number(n)) => json!(n.to_string()),
        _ => Value::Null,
    };
    let mut summary = json!({
        "hash": hash,
        "noop": result.get("noop").and_then(Value::as_bool).unwrap_or(false),
        "status": result.get("status").cloned().unwrap_or(json!("failed")),
        "metrics": {
            "corrective_change": 0,
            "out_of_sync": count("out_of_sync"),
            "restarted": 0,
            "skipped": count("skipped"),
            "total": count("total"),
            "changed": count("changed"),
            "scheduled": 0,
            "failed_to_restart": 0,
            "failed": count("failed"),
            "noop_pending": count("noop_pending"),
        },
        "report-url": format!("{base_url}{}/jobs/{job}/report", orchestrator_types::API_PREFIX),
        "environment": result.get("environment").cloned().unwrap_or(Value::Null),
        "configuration_version": config_version,
    });
    if res.is_null() {
        summary["metrics"] = json!({});
    }
    for k in ["exitcode", "_output", "_error"] {
        if let Some(v) = result.get(k) {
            summary[k] = v.clone();
        }
    }
    summary
}

fn record(job: &JobHandle, plan: &Plan, idx: usize, outcome: Outcome) {
    let now = time::now();
    let (mut state, mut result) = task_result(&outcome, plan.max_output);
    let mut rec = job.lock();
    let name = rec.nodes[idx].name.clone();
    if plan.command == Command::Deploy
        && state != NodeState::Stopped
        && result.get("status").is_some()
    {
        result = deploy_summary(&result, &plan.base, rec.name, &name);
        if result.get("status").and_then(Value::as_str) == Some("failed") {
            state = NodeState::Failed;
        }
    }
    let err_msg = result
        .get("_error")
        .and_then(|e| e.get("msg"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (kind, message, details) = match (state, plan.command) {
        (NodeState::Finished, Command::Deploy) => (
            EventType::NodeFinished,
            format!("Finished puppet run on {name} - Success! "),
            json!({ "message": format!("Finished puppet run on {name} - Success! "),
                    "report-url": result.get("report-url").cloned().unwrap_or(Value::Null) }),
        ),
        (NodeState::Finished, Command::Task | Command::PlanTask) => (
            EventType::NodeFinished,
            format!("Finished task {} on {name}", plan.task_name),
            json!({}),
        ),
        (NodeState::Stopped, _) => {
            let m = format!(
                "Stopped {} on {name}: the job was force-stopped",
                what(plan.command, &plan.task_name)
            );
            (EventType::NodeErrored, m.clone(), json!({ "message": m }))
        }
        (_, Command::Deploy) => {
            let m = format!(
                "Finished puppet run on {name} - Failed! {}",
                err_msg.clone().unwrap_or_default()
            );
            (EventType::NodeFailed, m.clone(), json!({ "message": m }))
        }
        (_, Command::Task | Command::PlanTask) => {
            let m = format!(
                "Task {} failed on {name}: {}",
                plan.task_name,
                err_msg.clone().unwrap_or_default()
            );
            (EventType::NodeFailed, m.clone(), json!({ "message": m }))
        }
    };
    let n = &mut rec.nodes[idx];
    n.state = state;
    n.finish = Some(now);
    n.timestamp = now;
    n.details = Some(details);
    n.result = Some(result);
    rec.push_event(kind, Some(idx), Detail::NodeResult, message);
}
