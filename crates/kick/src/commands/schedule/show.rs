//! Scheduled jobs for people: the `kick schedule list` table and the
//! `kick schedule show` page.

use std::io::Write;
use std::time::Duration;

use orchestrator_types::ScheduledJob;
use serde_json::Value;

/// What a scheduled job runs: the task, the deploy's environment or the plan.
pub fn what(j: &ScheduledJob) -> String {
    let field = |k: &str| j.input.get(k).and_then(Value::as_str).map(str::to_owned);
    match j.job_type.as_str() {
        "task" => field("task"),
        "plan" => field("plan_name").or_else(|| field("name")),
        _ => None,
    }
    .unwrap_or_else(|| format!("({})", j.environment))
}

/// `1h`, `1day`, or `once`.
pub fn every(j: &ScheduledJob) -> String {
    j.schedule.interval.as_ref().map_or_else(
        || "once".to_owned(),
        |i| {
            if i.units == "seconds" {
                humantime::format_duration(Duration::from_secs(i.value)).to_string()
            } else {
                format!("{} {}", i.value, i.units)
            }
        },
    )
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The nodes a scheduled task or deploy targets, in a few words.
fn targets(j: &ScheduledJob) -> String {
    let scope = &j.input["scope"];
    if let Some(nodes) = scope["nodes"].as_array() {
        let names: Vec<&str> = nodes.iter().filter_map(Value::as_str).collect();
        return format!("{} node(s): {}", names.len(), names.join(", "));
    }
    if let Some(q) = scope["query"].as_str() {
        return format!("query {q}");
    }
    if let Some(g) = scope["node_group"].as_str() {
        return format!("node group {g}");
    }
    "-".to_owned()
}

/// The table of `kick schedule list`.
pub fn table(out: &mut dyn Write, jobs: &[ScheduledJob]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<6} {:<6} {:<26} {:<20}  {:<12} {:<7}  DESCRIPTION",
        "ID", "TYPE", "TASK", "NEXT RUN", "EVERY", "ENABLED"
    )?;
    for j in jobs {
        writeln!(
            out,
            "{:<6} {:<6} {:<26} {:<20}  {:<12} {:<7}  {}",
            j.name,
            j.job_type,
            what(j),
            j.next_run_time.as_deref().unwrap_or("-"),
            every(j),
            yes_no(j.enabled),
            j.description
        )?;
    }
    Ok(())
}

/// The page of `kick schedule show`.
pub fn page(out: &mut dyn Write, j: &ScheduledJob) -> std::io::Result<()> {
    let params = match j.input.get("params") {
        Some(Value::Object(m)) if !m.is_empty() => Value::Object(m.clone()).to_string(),
        _ => "-".to_owned(),
    };
    let last = match &j.last_job {
        None => "-".to_owned(),
        Some(l) => {
            let started = l["started"].as_str().unwrap_or("?");
            match (l["name"].as_str(), l.get("error")) {
                (Some(name), _) => format!("job {name}, started {started}"),
                (None, Some(e)) => format!(
                    "could not start at {started}: {}",
                    e["msg"].as_str().unwrap_or("unknown error")
                ),
                (None, None) => format!("started {started}"),
            }
        }
    };
    let rows = [
        ("Type", j.job_type.clone()),
        ("Task", what(j)),
        ("Environment", j.environment.clone()),
        ("Targets", targets(j)),
        ("Parameters", params),
        ("First run", j.schedule.start_time.clone()),
        ("Every", every(j)),
        (
            "Next run",
            j.next_run_time.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Enabled", yes_no(j.enabled).to_owned()),
        ("Owner", j.owner.login.clone()),
        ("Description", j.description.clone()),
        ("Last run", last),
    ];
    writeln!(out, "Scheduled job {}", j.name)?;
    for (k, v) in rows {
        writeln!(out, "  {:<12} {}", format!("{k}:"), v)?;
    }
    Ok(())
}
