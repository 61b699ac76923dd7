//! `GET /jobs` and a job's nodes, events and report. Running jobs are read
//! from memory, finished ones from the store.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use orchestrator_types::{EventList, JobList, NodeList, NodeState, Pagination};
use serde_json::{Value, json};

use super::{ApiPath, ApiResult, JOB_ORDER_BY, Listing, Page, Shared};
use crate::app::{App, Found};
use crate::error::Failure;
use crate::job::{JobHead, render_event, render_node};
use crate::query::{Params, job_id};
use crate::store::{JobQuery, NodeQuery};
use crate::time;

/// The most events one `/events` answer carries; `next-events` continues.
const EVENTS_PAGE: usize = 1000;

async fn find_job(app: &App, raw: &str) -> ApiResult<Found> {
    app.find(job_id(raw)?, raw).await
}

pub async fn list(State(app): Shared, RawQuery(q): RawQuery) -> ApiResult<axum::Json<JobList>> {
    let p = Params::parse(q.as_deref());
    let listing = Listing::parse(&p, JOB_ORDER_BY, "name")?;
    let ty = p.one_of("type", &["deploy", "task", "plan_task"])?;
    let task_filter = p.get("task").map(str::to_owned);
    if task_filter.is_some() && ty.as_deref() == Some("deploy") {
        return Err(Failure::validation(
            "The 'task' filter cannot be used with type=deploy",
        ));
    }
    let query = JobQuery {
        command: ty.clone(),
        task: task_filter,
        min_finish: p.get("min_finish_timestamp").map(str::to_owned),
        max_finish: p.get("max_finish_timestamp").map(str::to_owned),
        order_by: listing.order_by.clone(),
        desc: listing.desc,
        limit: listing.page.limit,
        offset: listing.page.offset,
    };
    let (rows, total) = app.store.list(query).await?;
    let items = rows
        .into_iter()
        .filter_map(|(name, head)| match app.active(name) {
            Some(j) => Some(j.render(&app.base, false)),
            None => match serde_json::from_str::<JobHead>(&head) {
                Ok(h) => Some(h.render(&app.base, false, h.node_count, &h.node_states)),
                Err(e) => {
                    tracing::warn!(job = name, error = %e, "skipping an unreadable job record");
                    None
                }
            },
        })
        .collect();
    Ok(axum::Json(JobList {
        items,
        pagination: Some(listing.pagination(total, ty)),
    }))
}

pub async fn one(State(app): Shared, ApiPath(id): ApiPath<String>) -> ApiResult<Response> {
    let j = match find_job(&app, &id).await? {
        Found::Active(job) => job.render(&app.base, true),
        Found::Stored(h) => h.render(&app.base, true, h.node_count, &h.node_states),
    };
    Ok(axum::Json(j).into_response())
}

pub async fn nodes(
    State(app): Shared,
    ApiPath(id): ApiPath<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let job = find_job(&app, &id).await?;
    let name = job_id(&id)?;
    let p = Params::parse(q.as_deref());
    let Listing {
        page,
        order_by,
        desc,
        ..
    } = Listing::parse(
        &p,
        &[
            "name",
            "duration",
            "state",
            "start_timestamp",
            "finish_timestamp",
        ],
        "name",
    )?;
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
    let (items, total, events) = match job {
        Found::Active(job) => {
            let durable = job.durable_events();
            let rec = job.lock();
            let (items, total) = nodes_in_memory(&rec.nodes, state, &order_by, desc, &page);
            (items, total, durable)
        }
        Found::Stored(h) => {
            let q = NodeQuery {
                state,
                order_by,
                desc,
                limit: page.limit,
                offset: page.offset,
            };
            let (rows, total) = app.store.nodes(h.name, q).await?;
            (rows.iter().map(render_node).collect(), total, h.event_count)
        }
    };
    let list = NodeList {
        items,
        next_events: Some(JobHead::next_events_of(&app.base, name, events + 1)),
        pagination: Some(Pagination {
            limit: page.limit,
            offset: Some(page.offset),
            total: Some(total),
            ..Pagination::default()
        }),
    };
    Ok(axum::Json(list).into_response())
}

/// One page of a running job's nodes, and how many match.
fn nodes_in_memory(
    nodes: &[crate::job::NodeRecord],
    state: Option<NodeState>,
    order_by: &str,
    desc: bool,
    page: &Page,
) -> (Vec<orchestrator_types::JobNode>, u64) {
    let now = time::now();
    let mut idx: Vec<usize> = (0..nodes.len())
        .filter(|&i| state.is_none_or(|s| nodes[i].state == s))
        .collect();
    let key_f = |i: &usize| -> f64 {
        let n = &nodes[*i];
        match order_by {
            "duration" => n.start.map_or(-1.0, |s| n.finish.unwrap_or(now) - s),
            "start_timestamp" => n.start.unwrap_or(-1.0),
            "finish_timestamp" => n.finish.unwrap_or(-1.0),
            _ => 0.0,
        }
    };
    match order_by {
        // Nodes are stored sorted by name.
        "name" => {}
        "state" => idx.sort_by(|a, b| {
            nodes[*a]
                .state
                .as_str()
                .cmp(nodes[*b].state.as_str())
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
        .map(|i| render_node(&nodes[i]))
        .collect();
    (items, total)
}

pub async fn events(
    State(app): Shared,
    ApiPath(id): ApiPath<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let name = job_id(&id)?;
    let job = find_job(&app, &id).await?;
    let p = Params::parse(q.as_deref());
    let start = p.uint("start")?;
    let from = start.unwrap_or(1).max(1);
    let (items, count): (Vec<_>, u64) = match job {
        Found::Active(job) => {
            // Only committed events are shown: one seen is one kept.
            let durable = job.durable_events();
            let rec = job.lock();
            let to = durable
                .min(rec.events.len() as u64)
                .min(from.saturating_add(EVENTS_PAGE as u64 - 1));
            (
                (from..=to).map(|id| rec.render_event(id)).collect(),
                durable,
            )
        }
        Found::Stored(h) => {
            let rows = app.store.events(h.name, from, EVENTS_PAGE).await?;
            let items = rows
                .iter()
                .map(|(id, e, n)| render_event(*id, e, n.as_ref()))
                .collect();
            (items, h.event_count)
        }
    };
    let next = if items.is_empty() {
        start.unwrap_or(count + 1).max(1)
    } else {
        from + items.len() as u64
    };
    let list = EventList {
        next_events: Some(JobHead::next_events_of(&app.base, name, next)),
        items,
    };
    Ok(axum::Json(list).into_response())
}

pub async fn report(State(app): Shared, ApiPath(id): ApiPath<String>) -> ApiResult<Response> {
    let entry = |n: &crate::job::NodeRecord| {
        json!({
            "node": n.name,
            "state": n.state,
            "timestamp": time::seconds(n.timestamp),
            "start_timestamp": n.start.map(time::seconds),
            "finish_timestamp": n.finish.map(time::seconds),
            "events": [],
        })
    };
    let report: Vec<Value> = match find_job(&app, &id).await? {
        Found::Active(job) => job.lock().nodes.iter().map(entry).collect(),
        Found::Stored(h) => {
            let q = NodeQuery {
                state: None,
                order_by: "name".into(),
                desc: false,
                limit: None,
                offset: 0,
            };
            app.store
                .nodes(h.name, q)
                .await?
                .0
                .iter()
                .map(entry)
                .collect()
        }
    };
    Ok(axum::Json(json!({ "report": report })).into_response())
}
