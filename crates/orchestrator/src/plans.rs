//! Plan jobs: their record, their state changes, and the executor that runs
//! `command/plan_run` plans.
//!
//! The executor runs YAML plans (`<module>/plans/<plan>.yaml`) made only of
//! task steps: each step is a `plan_task` job belonging to the plan job,
//! started when the one before it ended well. A step's `targets` and
//! `parameters` may name a plan parameter or an earlier step's result as a
//! whole value (`$name`); nothing else is evaluated. Other steps (command,
//! script, eval, plan, upload, download, resources, message) and Puppet
//! language plans are refused with a validation error that says so.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use orchestrator_types::error::kind;
use orchestrator_types::{
    API_PREFIX, JobState, Link, NextEvents, PlanEvent, PlanJob, PlanState, Scope, TaskRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::app::{App, Found};
use crate::config::TokenSpec;
use crate::error::Failure;
use crate::exec::StopLevel;
use crate::job::Status;
use crate::store::Kind;
use crate::time;

type ApiResult<T> = Result<T, Failure>;

/// Answered for a plan job that has already ended (Bolt starts a new one).
pub const PLAN_ALREADY_FINISHED: &str = "puppetlabs.orchestrator/plan-already-finished";
/// Answered for a plan that does not exist.
pub const UNKNOWN_PLAN: &str = "puppetlabs.orchestrator/unknown-plan";

/// One event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: f64,
    pub details: Value,
}

/// A plan job as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanRecord {
    pub name: u64,
    pub plan_name: String,
    pub params: Value,
    pub description: String,
    pub environment: String,
    pub owner: String,
    pub userdata: Option<Value>,
    pub state: PlanState,
    pub status: Vec<Status<PlanState>>,
    pub created: f64,
    pub timestamp: f64,
    pub finished: Option<f64>,
    pub result: Option<Value>,
    pub events: Vec<Event>,
    /// Its task jobs.
    pub jobs: Vec<u64>,
    /// Whether a stop was asked.
    pub stop_requested: bool,
    /// Run by the orchestrator (`plan_run`), not by a client (`plan_start`).
    #[serde(default)]
    pub run_here: bool,
}

impl PlanRecord {
    pub fn new(name: u64, plan_name: &str, params: Value, owner: &str) -> Self {
        let now = time::now();
        Self {
            name,
            plan_name: plan_name.to_owned(),
            params,
            description: String::new(),
            environment: "production".to_owned(),
            owner: owner.to_owned(),
            userdata: None,
            state: PlanState::Pending,
            status: Status::start(PlanState::Pending, now),
            created: now,
            timestamp: now,
            finished: None,
            result: None,
            events: Vec::new(),
            jobs: Vec::new(),
            stop_requested: false,
            run_here: false,
        }
    }

    pub fn set_state(&mut self, state: PlanState) {
        if let Some(now) = Status::change(
            &mut self.status,
            &mut self.state,
            &mut self.timestamp,
            state,
        ) && state.is_terminal()
        {
            self.finished = Some(now);
        }
    }

    pub fn push_event(&mut self, kind: &str, details: Value) {
        self.events.push(Event {
            kind: kind.to_owned(),
            ts: time::now(),
            details,
        });
    }

    /// Ends the plan job with `result`.
    pub fn finish(&mut self, state: PlanState, result: Value) {
        let kind = if state == PlanState::Success {
            "plan_finished"
        } else {
            "plan_failed"
        };
        self.push_event(
            kind,
            json!({ "plan-id": self.name.to_string(), "result": result.clone() }),
        );
        self.result = Some(result);
        self.set_state(state);
    }

    /// Fails the plan job with an `_error`-style result.
    pub fn fail(&mut self, kind: &str, msg: String) {
        self.finish(
            PlanState::Failure,
            json!({ "kind": kind, "msg": msg, "details": { "plan_job": self.name.to_string() } }),
        );
    }

    pub fn url(&self, base: &str) -> String {
        format!("{base}{API_PREFIX}/plan_jobs/{}", self.name)
    }

    pub fn render(&self, base: &str, with_status: bool, with_result: bool) -> PlanJob {
        let url = self.url(base);
        PlanJob {
            id: url.clone(),
            name: self.name.to_string(),
            state: self.state,
            options: json!({
                "plan_name": self.plan_name,
                "description": self.description,
                "parameters": self.params,
                "environment": self.environment,
            }),
            owner: crate::job::owner(&self.owner, self.created),
            result: with_result.then(|| self.result.clone().unwrap_or(Value::Null)),
            timestamp: Some(time::seconds(self.timestamp)),
            created_timestamp: Some(time::seconds(self.created)),
            finished_timestamp: self.finished.map(time::seconds),
            duration: Some(time::round_ms(
                self.finished.unwrap_or_else(time::now) - self.created,
            )),
            events: Some(Link {
                id: format!("{url}/events"),
            }),
            userdata: Some(self.userdata.clone().unwrap_or_else(|| json!({}))),
            status: with_status.then(|| Status::render(&self.status)),
        }
    }

    pub fn render_event(&self, id: u64) -> PlanEvent {
        let e = &self.events[id as usize - 1];
        PlanEvent {
            id: id.to_string(),
            event_type: e.kind.clone(),
            timestamp: time::seconds(e.ts),
            details: e.details.clone(),
        }
    }

    pub fn next_events(&self, base: &str, start: u64) -> NextEvents {
        NextEvents {
            id: format!("{}/events?start={start}", self.url(base)),
            event: Some(start.to_string()),
        }
    }
}

/// Reads a plan job; `unknown-job` when there is none.
pub async fn load(app: &App, name: u64, raw: &str) -> ApiResult<PlanRecord> {
    app.store
        .get(Kind::Plan, name)
        .await?
        .ok_or_else(|| Failure::unknown_job(raw))
}

/// Changes a plan job and commits the change before returning. Plan job
/// changes are serialised, so a read-change-write never loses another.
pub async fn update<T>(
    app: &App,
    name: u64,
    raw: &str,
    f: impl FnOnce(&mut PlanRecord) -> ApiResult<T>,
) -> ApiResult<T> {
    let _one_at_a_time = app.plans_lock.lock().await;
    let mut rec = load(app, name, raw).await?;
    let out = f(&mut rec)?;
    app.store.put(Kind::Plan, name, &rec);
    app.store.flush().await.map_err(Failure::internal)?;
    Ok(out)
}

/// Saves a new plan job.
pub async fn create(app: &App, rec: &PlanRecord) -> ApiResult<()> {
    let _one_at_a_time = app.plans_lock.lock().await;
    app.store.put(Kind::Plan, rec.name, rec);
    app.store.flush().await.map_err(Failure::internal)
}

/// Refuses changes to an ended plan job as PE does.
pub fn still_running(rec: &PlanRecord) -> ApiResult<()> {
    if rec.state.is_terminal() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            PLAN_ALREADY_FINISHED,
            format!(
                "Plan job {} has already finished ({}); start a new one",
                rec.name,
                rec.state.as_str()
            ),
        )
        .details(json!({ "plan_job": rec.name.to_string() })));
    }
    Ok(())
}

/// Ends plan jobs left running when the service stopped: nothing runs them
/// any more (PE answers Bolt `plan-already-finished` after a restart too).
pub async fn recover(app: Arc<App>) {
    let all: Vec<PlanRecord> = match app.store.all(Kind::Plan).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("cannot read plan jobs: {}", e.body.msg);
            return;
        }
    };
    // Only those of an earlier life of the service: this runs while new
    // plan jobs may already be starting.
    let earlier = |p: &PlanRecord| p.created < app.started && !p.state.is_terminal();
    for p in all.into_iter().filter(earlier) {
        let raw = p.name.to_string();
        let r = update(&app, p.name, &raw, |rec| {
            if rec.state.is_terminal() {
                return Ok(());
            }
            rec.fail(
                kind::EXECUTION_FAILURE,
                format!(
                    "{} while the plan job was running",
                    crate::store::INTERRUPTED
                ),
            );
            Ok(())
        })
        .await;
        if let Err(e) = r {
            tracing::error!(plan_job = p.name, "cannot end the plan job: {}", e.body.msg);
        }
    }
}

/// A YAML plan's task steps.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: Option<String>,
    pub task: String,
    pub targets: Value,
    pub parameters: Map<String, Value>,
}

/// A plan the executor can run.
#[derive(Debug, Clone)]
pub struct YamlPlan {
    pub steps: Vec<Step>,
    pub returns: Option<Value>,
}

const NOT_TASK_STEPS: &[&str] = &[
    "command",
    "script",
    "eval",
    "plan",
    "upload",
    "download",
    "resources",
    "message",
    "verbose",
];

/// Finds and checks a plan; refuses what the executor cannot run.
pub fn find(app: &App, plan_name: &str, params: &Map<String, Value>) -> ApiResult<YamlPlan> {
    let (module, plan) = plan_name.split_once("::").unwrap_or((plan_name, "init"));
    if !crate::modules::valid_segment(module) || !crate::modules::valid_segment(plan) {
        return Err(Failure::invalid_body(format!(
            "Invalid plan name '{plan_name}': use module::plan with lowercase letters, digits and underscores"
        )));
    }
    let unknown = || {
        Failure::new(
            StatusCode::NOT_FOUND,
            UNKNOWN_PLAN,
            format!("Could not find a plan named {plan_name}"),
        )
        .details(json!({ "plan_name": plan_name }))
    };
    let root = crate::modules::module_roots(&app.config)
        .into_iter()
        .find(|(m, _)| m == module)
        .map(|(_, r)| r)
        .ok_or_else(unknown)?;
    let dir = root.join("plans");
    let yaml = ["yaml", "yml"]
        .iter()
        .map(|e| dir.join(format!("{plan}.{e}")))
        .find(|p| p.is_file());
    let Some(path) = yaml else {
        if dir.join(format!("{plan}.pp")).is_file() {
            return Err(Failure::invalid_body(format!(
                "Plan {plan_name} is written in the Puppet language, which this orchestrator cannot run; it runs YAML plans made of task steps"
            )));
        }
        return Err(unknown());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::internal(format!("cannot read {}: {e}", path.display())))?;
    let doc: Value = yaml_serde::from_str(&text)
        .map_err(|e| Failure::invalid_body(format!("Plan {plan_name} is not valid YAML: {e}")))?;
    let invalid = |msg: String| Failure::invalid_body(format!("Plan {plan_name}: {msg}"));
    let declared = doc.get("parameters").and_then(Value::as_object);
    for k in params.keys() {
        if declared.is_some_and(|d| !d.contains_key(k)) {
            return Err(invalid(format!("it has no parameter named '{k}'")));
        }
    }
    for (k, decl) in declared.into_iter().flatten() {
        let ty = decl.get("type").and_then(Value::as_str).unwrap_or("Any");
        let optional = ty.starts_with("Optional") || decl.get("default").is_some();
        if !params.contains_key(k) && !optional {
            return Err(invalid(format!(
                "it requires a value for parameter '{k}' ({ty})"
            )));
        }
    }
    let steps = doc
        .get("steps")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("it has no 'steps' list".into()))?;
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if let Some(k) = NOT_TASK_STEPS.iter().find(|k| s.get(**k).is_some()) {
            return Err(invalid(format!(
                "step {} is a '{k}' step; this orchestrator runs only task steps",
                i + 1
            )));
        }
        let task = s
            .get("task")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("step {} has no 'task'", i + 1)))?;
        let targets = s
            .get("targets")
            .or_else(|| s.get("target"))
            .cloned()
            .ok_or_else(|| invalid(format!("step {} has no 'targets'", i + 1)))?;
        out.push(Step {
            name: s.get("name").and_then(Value::as_str).map(str::to_owned),
            task: task.to_owned(),
            targets,
            parameters: s
                .get("parameters")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        });
    }
    Ok(YamlPlan {
        steps: out,
        returns: doc.get("return").cloned(),
    })
}

/// `$name` as a whole value is a variable; everything else is literal.
fn substitute(v: &Value, vars: &Map<String, Value>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if s.starts_with('$') => {
            let name = s[1..].trim_start_matches('{').trim_end_matches('}');
            vars.get(name)
                .cloned()
                .ok_or_else(|| format!("'{s}' names no parameter or earlier step"))?
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), substitute(x, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Certnames from a `targets` value: a name, a comma-separated list, a list,
/// or a step result (its node names).
fn targets_of(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Array(a) => a.iter().flat_map(targets_of).collect(),
        Value::Object(o) => o.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Runs a YAML plan's steps for plan job `name`; ends the plan job.
pub async fn execute(
    app: Arc<App>,
    tok: TokenSpec,
    name: u64,
    plan: YamlPlan,
    params: Map<String, Value>,
    environment: String,
    timeout: Option<Duration>,
) {
    let raw = name.to_string();
    let deadline = timeout.and_then(|t| tokio::time::Instant::now().checked_add(t));
    let mut vars = params;
    let outcome = async {
        for (i, step) in plan.steps.iter().enumerate() {
            let targets =
                substitute(&step.targets, &vars).map_err(|e| (kind::EXECUTION_FAILURE, e))?;
            let parameters = substitute(&Value::Object(step.parameters.clone()), &vars)
                .map_err(|e| (kind::EXECUTION_FAILURE, e))?;
            let req = TaskRequest {
                environment: Some(environment.clone()),
                scope: Scope::nodes(targets_of(&targets)),
                task: step.task.clone(),
                params: parameters.as_object().cloned().unwrap_or_default(),
                description: Some(format!("plan job {name}, step {}", i + 1)),
                ..TaskRequest::default()
            };
            let bytes = serde_json::to_vec(&req).unwrap_or_default();
            let origin = crate::api::Origin {
                plan_job: Some(name),
                scheduled: None,
            };
            let job = crate::api::submit_task(&app, &tok, &bytes, origin)
                .await
                .map_err(|e| ("bolt/run-failure", e.body.msg))?;
            update(&app, name, &raw, |rec| {
                rec.jobs.push(job);
                rec.push_event(
                    "task_start",
                    json!({ "job-id": job.to_string(), "task": step.task }),
                );
                Ok(())
            })
            .await
            .map_err(|e| (kind::UNKNOWN_ERROR, e.body.msg))?;
            let result = wait_for(&app, name, job, deadline).await?;
            if let Some(n) = &step.name {
                vars.insert(n.clone(), result);
            }
        }
        match &plan.returns {
            Some(r) => substitute(r, &vars).map_err(|e| (kind::EXECUTION_FAILURE, e)),
            None => Ok(Value::Null),
        }
    }
    .await;
    let r = update(&app, name, &raw, |rec| {
        if !rec.state.is_terminal() {
            match outcome {
                Ok(v) => rec.finish(PlanState::Success, v),
                Err((k, msg)) => rec.fail(k, msg),
            }
        }
        Ok(())
    })
    .await;
    if let Err(e) = r {
        tracing::error!(plan_job = name, "cannot end the plan job: {}", e.body.msg);
    }
}

/// Waits for task job `job` of plan job `plan`; its result per node when it
/// finished, the reason otherwise.
async fn wait_for(
    app: &Arc<App>,
    plan: u64,
    job: u64,
    deadline: Option<tokio::time::Instant>,
) -> Result<Value, (&'static str, String)> {
    let raw = job.to_string();
    loop {
        let state = match app.find(job, &raw).await {
            Ok(Found::Active(h)) => {
                let stopped = app
                    .store
                    .get::<PlanRecord>(Kind::Plan, plan)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|p| p.stop_requested);
                if stopped {
                    // PE: the plan stops, its running task job finishes.
                    return Err((
                        "bolt/plan-stopped",
                        format!("The plan job was stopped while its task job {job} ran"),
                    ));
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    h.request_stop(StopLevel::Force);
                    return Err((
                        "bolt/plan-timeout",
                        format!("The plan job ran out of time in task job {job}"),
                    ));
                }
                None
            }
            Ok(Found::Stored(head)) => Some(head.state),
            Err(e) => return Err((kind::UNKNOWN_ERROR, e.body.msg)),
        };
        match state {
            Some(JobState::Finished) => break,
            Some(s) => {
                return Err((
                    "bolt/run-failure",
                    format!("Task job {job} ended {s}; the plan stops there"),
                ));
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let q = crate::store::NodeQuery {
        state: None,
        order_by: "name".into(),
        desc: false,
        limit: None,
        offset: 0,
    };
    let (nodes, _) = app
        .store
        .nodes(job, q)
        .await
        .map_err(|e| (kind::UNKNOWN_ERROR, e.body.msg))?;
    Ok(Value::Object(
        nodes
            .into_iter()
            .map(|n| (n.name, n.result.unwrap_or(Value::Null)))
            .collect(),
    ))
}
