//! Plan jobs over HTTP: `command/plan_run`, the Bolt-driven `plan_start`,
//! `plan_task` and `plan_finish`, `stop_plan`, and `GET /plan_jobs`.

use std::time::Duration;

use axum::extract::{RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchestrator_types::plan::{
    PlanFinishRequest, PlanRunRequest, PlanStartRequest, StopPlanRequest,
};
use orchestrator_types::{PlanCreated, PlanEventList, PlanJob, PlanJobList, PlanState};
use serde_json::{Value, json};

use super::checks::check_timeout;
use super::{
    ApiPath, ApiResult, JOB_ORDER_BY, Listing, Shared, body, body_bytes, check_environment,
    created, parse, token,
};
use crate::error::Failure;
use crate::plans::{self, PlanRecord};
use crate::query::{Params, job_id};
use crate::store::Kind;

/// The most events one `/plan_jobs/:id/events` answer carries.
const EVENTS_PAGE: usize = 1000;

fn named(status: StatusCode, name: u64) -> Response {
    (
        status,
        axum::Json(PlanCreated {
            name: name.to_string(),
        }),
    )
        .into_response()
}

pub async fn plan_run(State(app): Shared, req: Request) -> ApiResult<Response> {
    let tok = token(req.extensions());
    let r: PlanRunRequest = body(&app, req.into_body()).await?;
    let name = start_plan(&app, tok, r).await?;
    Ok(named(StatusCode::ACCEPTED, name))
}

/// Starts a plan job the orchestrator runs itself.
pub async fn start_plan(
    app: &std::sync::Arc<crate::app::App>,
    tok: crate::config::TokenSpec,
    r: PlanRunRequest,
) -> ApiResult<u64> {
    let environment = r.environment.clone().unwrap_or_else(|| "production".into());
    check_environment(app, &environment)?;
    check_timeout("timeout", r.timeout)?;
    let plan = plans::find(app, &r.plan_name, &r.params)?;
    let mut rec = PlanRecord::new(
        app.next_job_name(),
        &r.plan_name,
        Value::Object(r.params.clone()),
        &tok.login,
    );
    rec.description = r.description.clone().unwrap_or_default();
    rec.environment = environment.clone();
    rec.userdata = r.userdata.clone().map(Value::Object);
    rec.run_here = true;
    rec.set_state(PlanState::Running);
    rec.push_event("plan_start", json!({ "plan": r.plan_name }));
    plans::create(app, &rec).await?;
    tokio::spawn(plans::execute(
        app.clone(),
        tok,
        rec.name,
        plan,
        r.params,
        environment,
        r.timeout.map(Duration::from_secs),
    ));
    Ok(rec.name)
}

/// Bolt's PCP transport: a plan job that Bolt itself runs.
pub async fn plan_start(State(app): Shared, req: Request) -> ApiResult<Response> {
    let tok = token(req.extensions());
    let r: PlanStartRequest = body(&app, req.into_body()).await?;
    if r.plan_name.trim().is_empty() {
        return Err(Failure::invalid_body("The 'plan_name' must not be empty"));
    }
    let mut rec = PlanRecord::new(
        app.next_job_name(),
        &r.plan_name,
        Value::Object(r.params),
        &tok.login,
    );
    rec.description = r.description.unwrap_or_default();
    if let Some(env) = r.environment {
        check_environment(&app, &env)?;
        rec.environment = env;
    }
    rec.userdata = r.userdata.map(Value::Object);
    rec.set_state(PlanState::Running);
    rec.push_event("plan_start", json!({ "plan": rec.plan_name }));
    plans::create(&app, &rec).await?;
    Ok(named(StatusCode::ACCEPTED, rec.name))
}

/// A task job of a running plan job (`command/task` plus `plan_job`).
pub async fn plan_task(State(app): Shared, req: Request) -> ApiResult<Response> {
    let tok = token(req.extensions());
    let bytes = body_bytes(&app, req.into_body()).await?;
    let r: orchestrator_types::PlanTaskRequest = parse(&bytes)?;
    let plan = job_id(&r.plan_job)?;
    plans::still_running(&plans::load(&app, plan, &r.plan_job).await?)?;
    let origin = super::Origin {
        plan_job: Some(plan),
        scheduled: None,
    };
    let job = super::submit_task(&app, &tok, &bytes, origin).await?;
    plans::update(&app, plan, &r.plan_job, |rec| {
        rec.jobs.push(job);
        rec.push_event(
            "task_start",
            json!({ "job-id": job.to_string(), "task": r.task.task }),
        );
        Ok(())
    })
    .await?;
    Ok(created(&app, job))
}

/// Bolt's end of a plan it ran; refused once the plan job has ended.
pub async fn plan_finish(State(app): Shared, req: Request) -> ApiResult<Response> {
    let r: PlanFinishRequest = body(&app, req.into_body()).await?;
    if !r.status.is_terminal() {
        return Err(Failure::invalid_body(
            "The 'status' must be 'success' or 'failure'",
        ));
    }
    let name = job_id(&r.plan_job)?;
    plans::update(&app, name, &r.plan_job, |rec| {
        plans::still_running(rec)?;
        rec.finish(r.status, r.result.clone());
        Ok(())
    })
    .await?;
    Ok(named(StatusCode::OK, name))
}

/// Stops a plan job: a plan the orchestrator runs stops before its next step
/// (a running task job finishes, as in PE); a Bolt-driven one ends now.
pub async fn stop_plan(State(app): Shared, req: Request) -> ApiResult<Response> {
    let r: StopPlanRequest = body(&app, req.into_body()).await?;
    let name = job_id(&r.plan_job)?;
    plans::update(&app, name, &r.plan_job, |rec| {
        if rec.state.is_terminal() {
            return Ok(());
        }
        rec.stop_requested = true;
        rec.push_event("plan_interrupt", json!({ "plan-id": name.to_string() }));
        if !rec.run_here {
            // Nothing here runs it: the plan job ends now.
            rec.fail("bolt/plan-stopped", "The plan job was stopped".to_owned());
        }
        Ok(())
    })
    .await?;
    Ok(named(StatusCode::ACCEPTED, name))
}

pub async fn list(State(app): Shared, RawQuery(q): RawQuery) -> ApiResult<axum::Json<PlanJobList>> {
    let p = Params::parse(q.as_deref());
    let listing = Listing::parse(&p, JOB_ORDER_BY, "name")?;
    let with_result = p.one_of("results", &["include", "exclude"])?.as_deref() != Some("exclude");
    let min = p.get("min_finish_timestamp").map(str::to_owned);
    let max = p.get("max_finish_timestamp").map(str::to_owned);
    let mut all: Vec<PlanRecord> = app.store.all(Kind::Plan).await?;
    all.retain(|r| {
        let fin = r.finished.map(crate::time::seconds);
        min.as_ref()
            .is_none_or(|m| fin.as_ref().is_some_and(|f| f >= m))
            && max
                .as_ref()
                .is_none_or(|m| fin.as_ref().is_some_and(|f| f <= m))
    });
    all.sort_by(|a, b| {
        let key = |r: &PlanRecord| match listing.order_by.as_str() {
            "owner" => r.owner.clone(),
            "timestamp" => format!("{:020.3}", r.timestamp),
            "environment" => r.environment.clone(),
            "state" => r.state.as_str().to_owned(),
            _ => String::new(),
        };
        key(a).cmp(&key(b)).then(a.name.cmp(&b.name))
    });
    if listing.desc {
        all.reverse();
    }
    let total = all.len() as u64;
    let items: Vec<PlanJob> = listing
        .page
        .of(all.iter())
        .map(|r| r.render(&app.base, false, with_result))
        .collect();
    Ok(axum::Json(PlanJobList {
        items,
        pagination: Some(listing.pagination(total, None)),
    }))
}

pub async fn one(
    State(app): Shared,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<PlanJob>> {
    let rec = plans::load(&app, job_id(&id)?, &id).await?;
    Ok(axum::Json(rec.render(&app.base, true, true)))
}

pub async fn events(
    State(app): Shared,
    ApiPath(id): ApiPath<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<axum::Json<PlanEventList>> {
    let rec = plans::load(&app, job_id(&id)?, &id).await?;
    let start = Params::parse(q.as_deref()).uint("start")?;
    let from = start.unwrap_or(1).max(1);
    let count = rec.events.len() as u64;
    let to = count.min(from.saturating_add(EVENTS_PAGE as u64 - 1));
    let items: Vec<_> = (from..=to).map(|i| rec.render_event(i)).collect();
    let next = if items.is_empty() {
        start.unwrap_or(count + 1).max(1)
    } else {
        from + items.len() as u64
    };
    Ok(axum::Json(PlanEventList {
        next_events: Some(rec.next_events(&app.base, next)),
        items,
    }))
}

pub async fn event(
    State(app): Shared,
    ApiPath((id, event)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<orchestrator_types::PlanEvent>> {
    let rec = plans::load(&app, job_id(&id)?, &id).await?;
    let n = job_id(&event)?;
    if n == 0 || n > rec.events.len() as u64 {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            "puppetlabs.orchestrator/unknown-event",
            format!("Plan job {id} has no event {event}"),
        )
        .details(json!({ "plan_job": id, "event": event })));
    }
    Ok(axum::Json(rec.render_event(n)))
}
