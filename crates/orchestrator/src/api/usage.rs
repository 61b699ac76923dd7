//! `GET /usage`: how many nodes were used each day.
//!
//! PE counts the nodes it manages; the orchestrator counts the distinct nodes
//! on which a job started a run that day (all have an agent: simulated nodes
//! are pxp-agent nodes). With `events=include`, the nodes a task ran on and
//! those a plan's tasks ran on are counted too; agent change counts are 0
//! (the orchestrator does not read Puppet reports).

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use orchestrator_types::usage::UsageRange;
use orchestrator_types::{Usage, UsageDay};

use super::{ApiResult, Shared};
use crate::error::Failure;
use crate::query::Params;

const DAY: u64 = 86_400;
/// The default range: the last 30 days.
const DEFAULT_DAYS: u64 = 30;
/// The longest range answered.
const MAX_DAYS: u64 = 3_660;

/// Days since the epoch of a `YYYY-MM-DD` date.
fn day_of(key: &str, s: &str) -> ApiResult<u64> {
    let bad = || {
        Failure::validation(format!(
            "The '{key}' parameter must be a date as YYYY-MM-DD, got '{s}'"
        ))
    };
    if s.len() != 10 {
        return Err(bad());
    }
    let date: jiff::civil::Date = s.parse().map_err(|_| bad())?;
    let secs = jiff::tz::Offset::UTC
        .to_timestamp(date.at(0, 0, 0, 0))
        .map_err(|_| bad())?
        .as_second();
    u64::try_from(secs).map(|s| s / DAY).map_err(|_| bad())
}

fn date(day: u64) -> String {
    crate::time::seconds((day * DAY) as f64)[..10].to_owned()
}

pub async fn get(State(app): Shared, RawQuery(q): RawQuery) -> ApiResult<axum::Json<Usage>> {
    let p = Params::parse(q.as_deref());
    let today = crate::time::now() as u64 / DAY;
    let end = match p.get("end_date") {
        Some(s) => day_of("end_date", s)?,
        None => today,
    };
    let start = match p.get("start_date") {
        Some(s) => day_of("start_date", s)?,
        None => end.saturating_sub(DEFAULT_DAYS - 1),
    };
    if start > end {
        return Err(Failure::validation(
            "The 'start_date' must not be after the 'end_date'",
        ));
    }
    if end - start >= MAX_DAYS {
        return Err(Failure::validation(format!(
            "The range may cover at most {MAX_DAYS} days"
        )));
    }
    let events = p
        .one_of("events", &["include", "exclude"])?
        .is_some_and(|e| e == "include");
    let rows = app.store.nodes_per_day(date(start), date(end)).await?;
    // day → command (`*`: any) → distinct nodes.
    let mut by_day: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (day, command, n) in rows {
        by_day.entry(day).or_default().insert(command, n);
    }
    let items = (start..=end)
        .map(|d| {
            let day = date(d);
            let counts = by_day.get(&day);
            let of = |c: &str| counts.and_then(|m| m.get(c)).copied().unwrap_or(0);
            let total = of("*");
            UsageDay {
                date: day,
                total_nodes: total,
                nodes_with_agent: total,
                nodes_without_agent: 0,
                corrective_agent_changes: events.then_some(0),
                intentional_agent_changes: events.then_some(0),
                nodes_affected_by_task_runs: events.then(|| of("task")),
                nodes_affected_by_plan_runs: events.then(|| of("plan_task")),
            }
        })
        .collect();
    Ok(axum::Json(Usage {
        items,
        pagination: UsageRange {
            start_date: date(start),
            end_date: date(end),
        },
    }))
}
