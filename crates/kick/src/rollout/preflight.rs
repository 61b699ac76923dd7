//! `--dry-run`: the plan, printed, with nothing started: the nodes per wave, the nodes the
//! orchestrator reports as not connected, and, with PuppetDB, each node's last report.

use std::collections::HashMap;
use std::io::Write;

use orchestrator_client::puppetdb::{NodeReport, PuppetDb};
use orchestrator_types::TaskRequest;
use serde_json::json;

use super::plan::Plan;
use crate::cli::{Format, RunArgs};
use crate::context::Context;
use crate::error::Error;

/// Prints the plan for `--format`; always exit code 0.
pub async fn print(
    ctx: &mut Context,
    plan: &Plan,
    disconnected: &[String],
    puppetdb: Option<&PuppetDb>,
    req: &TaskRequest,
    run: &RunArgs,
) -> Result<u8, Error> {
    let all: Vec<String> = plan.nodes().map(str::to_owned).collect();
    // The last reports are a help, not the point: a PuppetDB that fails here is a warning.
    let reports: Option<HashMap<String, NodeReport>> = match puppetdb {
        Some(db) => match db.node_reports(&all).await {
            Ok(r) => Some(r.into_iter().map(|r| (r.certname.clone(), r)).collect()),
            Err(e) => {
                writeln!(
                    ctx.streams.err,
                    "warning: no last reports from PuppetDB: {e}"
                )?;
                None
            }
        },
        None => None,
    };
    let offline: std::collections::HashSet<&str> =
        disconnected.iter().map(String::as_str).collect();
    let out = &mut ctx.streams.out;
    match run.follow.output.format {
        Format::Human => {
            let n = all.len();
            writeln!(
                out,
                "Dry run: {} on {n} node{} in {} wave{}{}; nothing is started.",
                req.task,
                if n == 1 { "" } else { "s" },
                plan.waves.len(),
                if plan.waves.len() == 1 { "" } else { "s" },
                plan.max_failures
                    .map(|m| format!(", at most {m} failures"))
                    .unwrap_or_default()
            )?;
            for (i, w) in plan.waves.iter().enumerate() {
                let canary = if w.canary { " (canary)" } else { "" };
                writeln!(
                    out,
                    "\nWave {}/{}{canary}: {} nodes",
                    i + 1,
                    plan.waves.len(),
                    w.nodes.len()
                )?;
                for name in &w.nodes {
                    let conn = if offline.contains(name.as_str()) {
                        "not connected"
                    } else {
                        "connected"
                    };
                    let last = match reports.as_ref().map(|r| r.get(name)) {
                        None => String::new(),
                        Some(None) => "  no report in PuppetDB".to_owned(),
                        Some(Some(r)) => format!(
                            "  last report {} {}",
                            r.report_timestamp.as_deref().unwrap_or("never"),
                            r.latest_report_status.as_deref().unwrap_or("-")
                        ),
                    };
                    writeln!(out, "  {name:<28}  {conn:<13}{last}")?;
                }
            }
            if !disconnected.is_empty() {
                writeln!(
                    out,
                    "\n{} node{} not connected: {} (--skip-disconnected leaves them out)",
                    disconnected.len(),
                    if disconnected.len() == 1 {
                        " is"
                    } else {
                        "s are"
                    },
                    disconnected.join(", ")
                )?;
            }
        }
        Format::Json | Format::Jsonl => {
            let waves: Vec<_> = plan
                .waves
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let nodes: Vec<_> = w
                        .nodes
                        .iter()
                        .map(|name| {
                            let r = reports.as_ref().and_then(|r| r.get(name));
                            json!({
                                "name": name,
                                "connected": !offline.contains(name.as_str()),
                                "report_timestamp": r.and_then(|r| r.report_timestamp.clone()),
                                "latest_report_status": r.and_then(|r| r.latest_report_status.clone()),
                            })
                        })
                        .collect();
                    json!({"wave": i + 1, "canary": w.canary, "nodes": nodes})
                })
                .collect();
            let doc = json!({
                "dry_run": true,
                "task": req.task,
                "node_count": all.len(),
                "max_failures": plan.max_failures,
                "waves": waves,
                "disconnected": disconnected,
                "puppetdb": reports.is_some(),
            });
            let doc = if run.follow.output.format == Format::Jsonl {
                let mut d = json!({"type": "plan"});
                if let (Some(d), Some(o)) = (d.as_object_mut(), doc.as_object()) {
                    d.extend(o.clone());
                }
                d
            } else {
                doc
            };
            crate::render::write_json_line(out.as_mut(), &doc)?;
        }
    }
    out.flush()?;
    Ok(0)
}
