//! Scheduled jobs: `GET/POST /scheduled_jobs/environment_jobs`,
//! `GET/PUT/DELETE /scheduled_jobs/environment_jobs/:id`, and the ticker
//! that starts them when due.
//!
//! Choices where PE is undocumented: a start time more than a minute in the
//! past is refused (`invalid-time`); a one-off job stays listed after it ran
//! with `next_run_time: null`; runs missed while the service was down are
//! made up once at start-up, not once per missed interval; a run that
//! cannot start (the owner's token gone, a task removed) is recorded in
//! `last_job.error` and the schedule goes on.

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchestrator_types::plan::PlanRunRequest;
use orchestrator_types::schedule::{Interval, ScheduledJobCreated};
use orchestrator_types::{
    API_PREFIX, DeployRequest, JobRef, Schedule, ScheduleRequest, ScheduledJob, ScheduledJobList,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::checks::MAX_TIMEOUT_SECS;
use super::{ApiPath, ApiResult, Listing, Shared, body, token};
use crate::app::App;
use crate::config::TokenSpec;
use crate::error::Failure;
use crate::query::{Params, job_id};
use crate::store::Kind;
use crate::time;

const INVALID_TIME: &str = "puppetlabs.orchestrator/invalid-time";
const UNKNOWN_SCHEDULED_JOB: &str = "puppetlabs.orchestrator/unknown-scheduled-job";
/// How often due jobs are looked for.
const TICK: Duration = Duration::from_secs(1);

/// A scheduled job as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub name: u64,
    pub job_type: String,
    pub input: Map<String, Value>,
    pub environment: String,
    pub description: String,
    pub userdata: Option<Value>,
    pub owner: String,
    pub start: f64,
    /// Seconds between runs; `None` runs once.
    pub interval: Option<u64>,
    pub next_run: Option<f64>,
    pub enabled: bool,
    pub last_job: Option<Value>,
    pub created: f64,
}

impl Record {
    fn render(&self, base: &str) -> ScheduledJob {
        ScheduledJob {
            id: url(base, self.name),
            name: self.name.to_string(),
            job_type: self.job_type.clone(),
            environment: self.environment.clone(),
            owner: crate::job::owner(&self.owner, self.created),
            description: self.description.clone(),
            userdata: self.userdata.clone().unwrap_or_else(|| json!({})),
            input: Value::Object(self.input.clone()),
            schedule: Schedule {
                start_time: time::seconds(self.start),
                interval: self.interval.map(|value| Interval {
                    units: "seconds".into(),
                    value,
                }),
            },
            next_run_time: self.next_run.map(time::seconds),
            enabled: self.enabled,
            last_job: self.last_job.clone(),
        }
    }

    /// The first run time after `now` (recurring jobs), or none.
    fn after(&self, now: f64) -> Option<f64> {
        let every = self.interval? as f64;
        let missed = ((now - self.start) / every).floor().max(0.0) + 1.0;
        Some(self.start + missed * every)
    }
}

fn url(base: &str, name: u64) -> String {
    format!("{base}{API_PREFIX}/scheduled_jobs/environment_jobs/{name}")
}

fn unknown(raw: &str) -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        UNKNOWN_SCHEDULED_JOB,
        format!("No scheduled job exists with id {raw}"),
    )
    .details(json!({ "id": raw }))
}

/// An RFC 3339 time with its offset (`Z`, `+01:00`), or one without any,
/// read as UTC (what PE's examples send).
fn parse_time(s: &str) -> ApiResult<f64> {
    let bad = || {
        Failure::new(
            StatusCode::BAD_REQUEST,
            INVALID_TIME,
            format!(
                "The start_time '{s}' is not an ISO-8601 time such as 2026-12-01T10:00:00Z or 2026-12-01T11:00:00+01:00"
            ),
        )
    };
    let t = match s.parse::<jiff::Timestamp>() {
        Ok(t) => t,
        Err(_) => s
            .parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|dt| jiff::tz::Offset::UTC.to_timestamp(dt).ok())
            .ok_or_else(bad)?,
    };
    Ok(t.as_millisecond() as f64 / 1000.0)
}

fn parse_interval(i: &Option<Interval>) -> ApiResult<Option<u64>> {
    let Some(i) = i else { return Ok(None) };
    if i.units != "seconds" {
        return Err(Failure::invalid_body(format!(
            "The interval's units must be 'seconds', got '{}'",
            i.units
        )));
    }
    if i.value == 0 || i.value > MAX_TIMEOUT_SECS {
        return Err(Failure::invalid_body(format!(
            "The interval must be between 1 and {MAX_TIMEOUT_SECS} seconds, got {}",
            i.value
        )));
    }
    Ok(Some(i.value))
}

/// The request a run sends, with the schedule's environment.
fn request_of(r: &Record) -> Map<String, Value> {
    let mut input = r.input.clone();
    input.insert("environment".into(), json!(r.environment));
    if !r.description.is_empty() && !input.contains_key("description") {
        input.insert("description".into(), json!(r.description));
    }
    if let Some(u) = &r.userdata {
        input.entry("userdata").or_insert(u.clone());
    }
    input
}

/// Checks that a run's request would be read as its type's request.
fn check_input(r: &Record) -> ApiResult<()> {
    let v = Value::Object(request_of(r));
    let bad = |e: serde_json::Error| {
        Failure::invalid_body(format!(
            "The input is not a valid {} request: {e}",
            r.job_type
        ))
    };
    match r.job_type.as_str() {
        "task" => serde_json::from_value::<orchestrator_types::TaskRequest>(v)
            .map(drop)
            .map_err(bad),
        "deploy" => serde_json::from_value::<DeployRequest>(v)
            .map(drop)
            .map_err(bad),
        "plan" => serde_json::from_value::<PlanRunRequest>(v)
            .map(drop)
            .map_err(bad),
        other => Err(Failure::invalid_body(format!(
            "The type must be 'deploy', 'task' or 'plan', got '{other}'"
        ))),
    }
}

async fn save(app: &App, r: &Record) -> ApiResult<()> {
    app.store.put(Kind::Schedule, r.name, r);
    app.store.flush().await.map_err(Failure::internal)
}

async fn load(app: &App, raw: &str) -> ApiResult<Record> {
    app.store
        .get(Kind::Schedule, job_id(raw)?)
        .await?
        .ok_or_else(|| unknown(raw))
}

pub async fn create(State(app): Shared, req: Request) -> ApiResult<Response> {
    let tok = token(req.extensions());
    let r: ScheduleRequest = body(&app, req.into_body()).await?;
    let (Some(job_type), Some(input), Some(environment), Some(schedule)) =
        (r.job_type, r.input, r.environment, r.schedule)
    else {
        return Err(Failure::invalid_body(
            "A scheduled job needs 'type', 'input', 'environment' and 'schedule'",
        ));
    };
    let start = parse_time(&schedule.start_time)?;
    if start < time::now() - 60.0 {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            INVALID_TIME,
            format!("The start_time {} is in the past", schedule.start_time),
        ));
    }
    let rec = Record {
        name: app.next_schedule(),
        job_type,
        input,
        environment,
        description: r.description.unwrap_or_default(),
        userdata: r.userdata.map(Value::Object),
        owner: tok.login.clone(),
        start,
        interval: parse_interval(&schedule.interval)?,
        next_run: Some(start),
        enabled: true,
        last_job: None,
        created: time::now(),
    };
    check_input(&rec)?;
    save(&app, &rec).await?;
    Ok((
        StatusCode::OK,
        axum::Json(ScheduledJobCreated {
            scheduled_job: JobRef {
                id: url(&app.base, rec.name),
                name: rec.name.to_string(),
            },
        }),
    )
        .into_response())
}

pub async fn edit(
    State(app): Shared,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> ApiResult<axum::Json<ScheduledJob>> {
    let r: ScheduleRequest = body(&app, req.into_body()).await?;
    let mut rec = load(&app, &id).await?;
    if let Some(t) = r.job_type {
        rec.job_type = t;
    }
    if let Some(i) = r.input {
        rec.input = i;
    }
    if let Some(e) = r.environment {
        rec.environment = e;
    }
    if let Some(d) = r.description {
        rec.description = d;
    }
    if let Some(u) = r.userdata {
        rec.userdata = Some(Value::Object(u));
    }
    if let Some(s) = r.schedule {
        rec.start = parse_time(&s.start_time)?;
        rec.interval = parse_interval(&s.interval)?;
        let now = time::now();
        rec.next_run = if rec.start >= now - 60.0 {
            Some(rec.start)
        } else {
            rec.after(now)
        };
    }
    if let Some(e) = r.enabled {
        rec.enabled = e;
    }
    check_input(&rec)?;
    save(&app, &rec).await?;
    Ok(axum::Json(rec.render(&app.base)))
}

pub async fn remove(State(app): Shared, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    let rec = load(&app, &id).await?;
    app.store.remove(Kind::Schedule, rec.name);
    app.store.flush().await.map_err(Failure::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn one(
    State(app): Shared,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<ScheduledJob>> {
    Ok(axum::Json(load(&app, &id).await?.render(&app.base)))
}

pub async fn list(
    State(app): Shared,
    RawQuery(q): RawQuery,
) -> ApiResult<axum::Json<ScheduledJobList>> {
    let p = Params::parse(q.as_deref());
    let listing = Listing::parse(
        &p,
        &["next_run_time", "environment", "owner", "name", "type"],
        "next_run_time",
    )?;
    let ty = p.one_of("type", &["deploy", "task", "plan"])?;
    let mut all: Vec<Record> = app.store.all(Kind::Schedule).await?;
    all.retain(|r| ty.as_deref().is_none_or(|t| t == r.job_type));
    let text = |r: &Record| match listing.order_by.as_str() {
        "environment" => r.environment.clone(),
        "owner" => r.owner.clone(),
        "type" => r.job_type.clone(),
        _ => String::new(),
    };
    all.sort_by(|a, b| {
        let by = if listing.order_by == "next_run_time" {
            // Jobs that will not run again sort last.
            let t = |r: &Record| r.next_run.unwrap_or(f64::INFINITY);
            t(a).total_cmp(&t(b))
        } else {
            text(a).cmp(&text(b))
        };
        by.then(a.name.cmp(&b.name))
    });
    if listing.desc {
        all.reverse();
    }
    let total = all.len() as u64;
    let items = listing
        .page
        .of(all.iter())
        .map(|r| r.render(&app.base))
        .collect();
    Ok(axum::Json(ScheduledJobList {
        items,
        pagination: Some(listing.pagination(total, ty)),
    }))
}

/// Starts due scheduled jobs until the service is gone.
pub async fn tick(app: Weak<App>) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        let Some(app) = app.upgrade() else { return };
        if let Err(e) = run_due(&app).await {
            tracing::error!("scheduled jobs: {}", e.body.msg);
        }
    }
}

async fn run_due(app: &Arc<App>) -> ApiResult<()> {
    let now = time::now();
    let all: Vec<Record> = app.store.all(Kind::Schedule).await?;
    for mut rec in all {
        if !rec.enabled || rec.next_run.is_none_or(|t| t > now) {
            continue;
        }
        let started = run(app, &rec).await;
        rec.last_job = Some(match started {
            Ok((kind, name)) => {
                json!({ "type": kind, "name": name.to_string(), "started": time::seconds(now) })
            }
            Err(e) => {
                tracing::warn!(scheduled_job = rec.name, "could not start: {}", e.body.msg);
                json!({ "type": rec.job_type, "started": time::seconds(now), "error": e.body })
            }
        });
        rec.next_run = rec.after(now);
        save(app, &rec).await?;
    }
    Ok(())
}

/// Starts one run as its owner; `(what was started, its name)`.
async fn run(app: &Arc<App>, rec: &Record) -> ApiResult<(&'static str, u64)> {
    let tok: TokenSpec = app
        .config
        .tokens
        .iter()
        .find(|t| t.login == rec.owner)
        .cloned()
        .ok_or_else(|| {
            Failure::new(
                StatusCode::FORBIDDEN,
                orchestrator_types::error::kind::NOT_PERMITTED,
                format!(
                    "No token of the service belongs to {}, who scheduled this job",
                    rec.owner
                ),
            )
        })?;
    let input = Value::Object(request_of(rec));
    let origin = super::Origin {
        plan_job: None,
        scheduled: Some(rec.name),
    };
    match rec.job_type.as_str() {
        "task" => {
            let bytes = serde_json::to_vec(&input).unwrap_or_default();
            Ok(("job", super::submit_task(app, &tok, &bytes, origin).await?))
        }
        "deploy" => {
            let r: DeployRequest =
                serde_json::from_value(input).map_err(|e| Failure::invalid_body(e.to_string()))?;
            Ok((
                "job",
                super::submit_deploy(app, &tok, r, Some(rec.name)).await?,
            ))
        }
        _ => {
            let r: PlanRunRequest =
                serde_json::from_value(input).map_err(|e| Failure::invalid_body(e.to_string()))?;
            Ok(("plan_job", super::plans::start_plan(app, tok, r).await?))
        }
    }
}

#[cfg(test)]
mod time_tests {
    use super::parse_time;

    #[test]
    fn start_times_keep_their_offset() {
        let utc = parse_time("2026-12-01T10:00:00Z").unwrap();
        assert_eq!(parse_time("2026-12-01T11:00:00+01:00").unwrap(), utc);
        assert_eq!(parse_time("2026-12-01T05:30:00-04:30").unwrap(), utc);
        assert_eq!(
            parse_time("2026-12-01T10:00:00").unwrap(),
            utc,
            "no offset: UTC"
        );
        assert_eq!(parse_time("2026-12-01T10:00:00.250Z").unwrap(), utc + 0.25);
        assert!(parse_time("2026-12-01 tomorrow").is_err());
        assert!(parse_time("2026-13-01T10:00:00Z").is_err());
    }
}
