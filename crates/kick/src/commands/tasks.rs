//! `kick tasks list|show`.

use std::io::Write;

use serde_json::Value;

use crate::cli::{Format, TasksCommand};
use crate::context::Context;
use crate::error::Error;
use crate::render::table;

/// Runs `kick tasks ...`.
pub async fn run(ctx: &mut Context, cmd: TasksCommand) -> Result<u8, Error> {
    match cmd {
        TasksCommand::List(a) => {
            let (client, settings) =
                super::connect(&a.conn, Some(&a.env), ctx.streams.err.as_mut())?;
            let list = client.tasks(settings.environment.as_deref()).await?;
            let mut io = ctx.take_streams();
            match a.output.format {
                Format::Json => super::write_json_line(&mut io.out, &list)?,
                Format::Jsonl => super::write_json_lines(&mut io.out, &list.items)?,
                Format::Human => {
                    let mut names: Vec<String> =
                        list.items.iter().map(|t| t.name.clone()).collect();
                    names.sort_unstable();
                    let descriptions =
                        descriptions(&client, &names, settings.environment.as_deref()).await;
                    let rows = names
                        .into_iter()
                        .zip(descriptions)
                        .map(|(n, d)| vec![n, d])
                        .collect();
                    let columns = [table::left("TASK"), table::left("DESCRIPTION")];
                    io.out.write_all(table::render(&columns, rows).as_bytes())?;
                }
            }
        }
        TasksCommand::Show(a) => {
            let (client, settings) =
                super::connect(&a.tasks.conn, Some(&a.tasks.env), ctx.streams.err.as_mut())?;
            let t = client
                .task(&a.task, settings.environment.as_deref())
                .await?;
            let mut io = ctx.take_streams();
            match a.tasks.output.format {
                Format::Json | Format::Jsonl => super::write_json_line(&mut io.out, &t)?,
                Format::Human => io.out.write_all(describe(&t).as_bytes())?,
            }
        }
    }
    Ok(0)
}

/// The first line of each task's description (`GET /tasks/:module/:task`,
/// a few at a time); empty where it cannot be read.
async fn descriptions(
    client: &orchestrator_client::Client,
    names: &[String],
    environment: Option<&str>,
) -> Vec<String> {
    const AT_ONCE: usize = 8;
    let mut out = Vec::with_capacity(names.len());
    for chunk in names.chunks(AT_ONCE) {
        let mut set = tokio::task::JoinSet::new();
        for (i, name) in chunk.iter().enumerate() {
            let (client, name, env) =
                (client.clone(), name.clone(), environment.map(str::to_owned));
            set.spawn(async move { (i, client.task(&name, env.as_deref()).await) });
        }
        let mut got = vec![String::new(); chunk.len()];
        while let Some(Ok((i, r))) = set.join_next().await {
            if let Ok(t) = r
                && let Some(d) = t.metadata.get("description").and_then(Value::as_str)
            {
                got[i] = d.lines().next().unwrap_or("").trim().to_owned();
            }
        }
        out.extend(got);
    }
    out
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
