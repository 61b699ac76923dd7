//! `GET /jobs` and a job's nodes, events and report.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use orchestrator_types::{EventList, JobList, NodeList, NodeState, Pagination};
use serde_json::{Value, json};

use super::{ApiResult, Shared};
use crate::app::App;
use crate::error::Failure;
use crate::job::JobHandle;
use crate::query::{Params, job_id};
use crate::time;
/// The most events one `/events` answer carries; `next-events` continues.
const EVENTS_PAGE: usize = 1000;

fn find_job(app: &App, raw: &str) -> ApiResult<Arc<JobHandle>> {
    let id = job_id(raw)?;
    app.job(id).ok_or_else(|| Failure::unknown_job(raw))
}

/// The `limit` and `offset` of a listing request.
struct Page {
    limit: Option<u64>,
    offset: u64,
}

impl Page {
    fn parse(p: &Params) -> ApiResult<Page> {
        Ok(Page {
            limit: p.uint("limit")?,
            offset: p.uint("offset")?.unwrap_or(0),
        })
    }

    /// The requested window of `rows`.
    fn of<I: Iterator>(&self, rows: I) -> impl Iterator<Item = I::Item> {
        rows.skip(self.offset as usize)
            .take(self.limit.map_or(usize::MAX, |l| l as usize))
    }
}

fn order_desc(p: &Params) -> ApiResult<(String, bool)> {
    let order = p.one_of("order", &["asc", "desc", "ASC", "DESC"])?;
    let order = order.unwrap_or_else(|| "asc".into()).to_lowercase();
    let desc = order == "desc";
    Ok((order, desc))
}

pub async fn list(State(app): Shared, RawQuery(q): RawQuery) -> ApiResult<axum::Json<JobList>> {
    let p = Params::parse(q.as_deref());
    let page = Page::parse(&p)?;
    let order_by = p
        .one_of(
            "order_by",
            &["owner", "timestamp", "environment", "name", "state"],
        )?
        .unwrap_or_else(|| "name".into());
    let (order, desc) = order_desc(&p)?;
    let ty = p.one_of("type", &["deploy", "task", "plan_task"])?;
    let task_filter = p.get("task").map(str::to_owned);
    if task_filter.is_some() && ty.as_deref() == Some("deploy") {
        return Err(Failure::validation(
            "The 'task' filter cannot be used with type=deploy",
        ));
    }
    let min_fin = p.get("min_finish_timestamp").map(str::to_owned);
    let max_fin = p.get("max_finish_timestamp").map(str::to_owned);
    // Sort keys are extracted once, then records are rendered for the page only.
    let mut rows: Vec<(Arc<JobHandle>, String, u64)> = Vec::new();
    for j in app.all_jobs() {
        let rec = j.lock();
        if ty.as_deref().is_some_and(|t| t != rec.command.as_str()) {
            continue;
        }
        if let Some(t) = &task_filter
            && !rec.task().is_some_and(|n| n.contains(t.as_str()))
        {
            continue;
        }
        let fin = rec.finished.map(time::seconds);
        if let Some(m) = &min_fin
            && fin.as_deref().is_none_or(|f| f < m.as_str())
        {
            continue;
        }
        if let Some(m) = &max_fin
            && fin.as_deref().is_none_or(|f| f > m.as_str())
        {
            continue;
        }
        let key = match order_by.as_str() {
            "owner" => rec.owner.clone(),
            "timestamp" => format!("{:020.3}", rec.timestamp),
            "environment" => rec.environment.clone(),
            "state" => rec.state.as_str().to_owned(),
            _ => String::new(),
        };
        let name = rec.name;
        drop(rec);
        rows.push((j, key, name));
    }
    rows.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)));
    if desc {
        rows.reverse();
    }
    let total = rows.len() as u64;
    let items = page
        .of(rows.into_iter())
        .map(|(j, _, _)| j.lock().render(&app.base, false))
        .collect();
    Ok(axum::Json(JobList {
        items,
        pagination: Some(Pagination {
            limit: page.limit,
            offset: Some(page.offset),
            total: Some(total),
            order: Some(order),
            order_by: Some(order_by),
            job_type: ty,
        }),
    }))
}

pub async fn one(State(app): Shared, Path(id): Path<String>) -> ApiResult<Response> {
    let job = find_job(&app, &id)?;
    let j = job.lock().render(&app.base, true);
    Ok(axum::Json(j).into_response())
}

pub async fn nodes(
    State(app): Shared,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let job = find_job(&app, &id)?;
    let p = Params::parse(q.as_deref());
    let page = Page::parse(&p)?;
    let order_by = p
        .one_of(
            "order_by",
            &[
                "name",
                "duration",
                "state",
                "start_timestamp",
                "finish_timestamp",
            ],
        )?
        .unwrap_or_else(|| "name".into());
    let (_, desc) = order_desc(&p)?;
    let state = match p.get("state") {
        None => None,
        Some(s) => match serde_json::from_value::<NodeState>(json!(s)) {
            Ok(NodeState::Unknown) | Err(_) => {
                return Err(Failure::validation(format!(
                    "The 'state' parameter must be a node state (new, ready, running, stopping, stopped, finished, failed, errored, skipped), got '{s}'"
                )));
            }
            Ok(st) => Some(st),
        },
    };
    let rec = job.lock();
    let now = time::now();
    let mut idx: Vec<usize> = (0..rec.nodes.len())
        .filter(|&i| state.is_none_or(|s| rec.nodes[i].state == s))
        .collect();
    let key_f = |i: &usize| -> f64 {
        let n = &rec.nodes[*i];
        match order_by.as_str() {
            "duration" => n.start.map_or(-1.0, |s| n.finish.unwrap_or(now) - s),
            "start_timestamp" => n.start.unwrap_or(-1.0),
            "finish_timestamp" => n.finish.unwrap_or(-1.0),
            _ => 0.0,
        }
    };
    match order_by.as_str() {
        // Nodes are stored sorted by name.
        "name" => {}
        "state" => idx.sort_by(|a, b| {
            rec.nodes[*a]
                .state
                .as_str()
                .cmp(rec.nodes[*b].state.as_str())
                .then(a.cmp(b))
        }),
        _ => idx.sort_by(|a, b| key_f(a).total_cmp(&key_f(b)).then(a.cmp(b))),
    }
    if desc {
        idx.reverse();
    }
    let total = idx.len() as u64;
    let items = page
        .of(idx.into_iter())
        .map(|i| rec.render_node(&rec.nodes[i]))
        .collect();
    let list = NodeList {
        items,
        next_events: Some(rec.next_events(&app.base, rec.events.len() as u64 + 1)),
        pagination: Some(Pagination {
            limit: page.limit,
            offset: Some(page.offset),
            total: Some(total),
            ..Pagination::default()
        }),
    };
    drop(rec);
    Ok(axum::Json(list).into_response())
}

pub async fn events(
    State(app): Shared,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let job = find_job(&app, &id)?;
    let p = Params::parse(q.as_deref());
    let start = p.uint("start")?;
    let rec = job.lock();
    let from = start.unwrap_or(1).max(1) as usize - 1;
    let to = rec.events.len().min(from.saturating_add(EVENTS_PAGE));
    let items: Vec<_> = (from..to).map(|i| rec.render_event(i)).collect();
    let next = if to > from {
        to as u64 + 1
    } else {
        start.unwrap_or(rec.events.len() as u64 + 1).max(1)
    };
    let list = EventList {
        next_events: Some(rec.next_events(&app.base, next)),
        items,
    };
    drop(rec);
    Ok(axum::Json(list).into_response())
}

pub async fn report(State(app): Shared, Path(id): Path<String>) -> ApiResult<Response> {
    let job = find_job(&app, &id)?;
    let rec = job.lock();
    let report: Vec<Value> = rec
        .nodes
        .iter()
        .map(|n| {
            json!({
                "node": n.name,
                "state": n.state,
                "timestamp": time::seconds(n.timestamp),
                "start_timestamp": n.start.map(time::seconds),
                "finish_timestamp": n.finish.map(time::seconds),
                "events": [],
            })
        })
        .collect();
    drop(rec);
    Ok(axum::Json(json!({ "report": report })).into_response())
}
