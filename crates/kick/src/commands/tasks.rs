//! `kick tasks list|show`.

use std::io::Write;

use serde_json::Value;

use crate::Context;
use crate::cli::{Format, TasksCommand};
use crate::error::Error;

/// Runs `kick tasks ...`.
pub async fn run(ctx: &mut Context, cmd: TasksCommand) -> Result<u8, Error> {
    match cmd {
        TasksCommand::List(a) => {
            let (client, settings) = super::connect(&a.conn, &ctx.watch, ctx.streams.err.as_mut())?;
            let list = client.tasks(settings.environment.as_deref()).await?;
            let mut io = ctx.take_streams();
            match a.output.format {
                Format::Json => super::write_json_line(&mut io.out, &list)?,
                Format::Jsonl => super::write_json_lines(&mut io.out, &list.items)?,
                Format::Human => {
                    let mut names: Vec<&str> = list.items.iter().map(|t| t.name.as_str()).collect();
                    names.sort_unstable();
                    for n in names {
                        writeln!(io.out, "{n}")?;
                    }
                }
            }
        }
        TasksCommand::Show(a) => {
            let (client, settings) = super::connect(&a.conn, &ctx.watch, ctx.streams.err.as_mut())?;
            let t = client
                .task(&a.task, settings.environment.as_deref())
                .await?;
            let mut io = ctx.take_streams();
            match a.output.format {
                Format::Json | Format::Jsonl => super::write_json_line(&mut io.out, &t)?,
                Format::Human => io.out.write_all(describe(&t).as_bytes())?,
            }
        }
    }
    Ok(0)
}

/// A task's metadata, readably.
fn describe(t: &orchestrator_types::TaskDetails) -> String {
    let m = &t.metadata;
    let mut s = format!("{} (environment {})\n", t.name, t.environment.name);
    if let Some(d) = m.get("description").and_then(Value::as_str) {
        s.push_str(&format!("\n{d}\n"));
    }
    let noop = m
        .get("supports_noop")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    s.push_str(&format!(
        "\nsupports noop: {}\n",
        if noop { "yes" } else { "no" }
    ));
    if let Some(params) = m.get("parameters").and_then(Value::as_object)
        && !params.is_empty()
    {
        s.push_str("\nParameters:\n");
        for (name, p) in params {
            let ty = p.get("type").and_then(Value::as_str).unwrap_or("Any");
            s.push_str(&format!("  {name}: {ty}\n"));
            if let Some(d) = p.get("description").and_then(Value::as_str) {
                for line in d.lines() {
                    s.push_str(&format!("      {line}\n"));
                }
            }
        }
    }
    if !t.files.is_empty() {
        s.push_str("\nFiles:\n");
        for f in &t.files {
            s.push_str(&format!(
                "  {}  {} bytes  sha256 {}\n",
                f.filename, f.size_bytes, f.sha256
            ));
        }
    }
    s
}
