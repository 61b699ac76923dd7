//! `kick rollout list|show|resume`.

use std::io::Write;

use serde_json::{Value, json};

use crate::cli::rollout::{RolloutCommand, RolloutIdArgs};
use crate::cli::{ConnArgs, Format};
use crate::context::Context;
use crate::error::Error;
use crate::rollout::run::run_waves;
use crate::rollout::state::{RolloutState, RolloutStatus, Store, WaveState};
use crate::rollout::submit::find_wave;

/// Runs `kick rollout ...`.
pub async fn run(ctx: &mut Context, cmd: RolloutCommand) -> Result<u8, Error> {
    let store = Store::for_context(ctx)?;
    match cmd {
        RolloutCommand::List(a) => {
            let all = store.list()?;
            let out = &mut ctx.streams.out;
            match a.output.format {
                Format::Human => {
                    if all.is_empty() {
                        writeln!(out, "No rollouts in {}.", store.dir().display())?;
                    }
                    for s in &all {
                        writeln!(out, "{}", list_line(s))?;
                    }
                }
                Format::Json => crate::render::write_json_line(
                    out.as_mut(),
                    &all.iter().map(brief).collect::<Vec<_>>(),
                )?,
                Format::Jsonl => crate::render::write_json_lines(
                    out.as_mut(),
                    &all.iter().map(brief).collect::<Vec<_>>(),
                )?,
            }
            out.flush()?;
            Ok(0)
        }
        RolloutCommand::Show(a) => {
            let state = store.load(&a.id)?;
            let out = &mut ctx.streams.out;
            match a.output.format {
                Format::Human => write!(out, "{}", show_text(&state))?,
                Format::Json | Format::Jsonl => {
                    crate::render::write_json_line(out.as_mut(), &state)?
                }
            }
            out.flush()?;
            Ok(0)
        }
        RolloutCommand::Resume(a) => resume(ctx, &store, a).await,
    }
}

async fn resume(ctx: &mut Context, store: &Store, a: RolloutIdArgs) -> Result<u8, Error> {
    let mut state = store.load(&a.id)?;
    match state.status {
        RolloutStatus::Finished => {
            return Err(Error::Usage(format!(
                "rollout {} has finished: every wave ran; `kick rollout show {}` shows them",
                state.id, state.id
            )));
        }
        RolloutStatus::BudgetReached => {
            return Err(Error::Usage(format!(
                "rollout {} stopped at its failure budget ({} failures); fix the cause, then start a new rollout, e.g. on its failed nodes with --nodes-from rollout:{}:failed",
                state.id,
                state.failures(),
                state.id
            )));
        }
        RolloutStatus::Running | RolloutStatus::Stopped => {}
    }
    let mut conn: ConnArgs = a.conn.clone();
    if conn.service_url.is_none() {
        conn.service_url = Some(state.service_url.clone());
    }
    let (client, _) = super::connect(&conn, None, ctx.streams.err.as_mut())?;
    // Which waves the server already has: a wave whose submission kick did not get to
    // record (killed in between) is found by its marker or its rollout and wave numbers.
    for i in 0..state.waves.len() {
        if state.waves[i].state != WaveState::Pending {
            continue;
        }
        let marker = state.waves[i].marker.clone().unwrap_or_default();
        if let Some(job) = find_wave(&client, &state.id, i + 1, &marker).await? {
            state.waves[i].job = Some(job);
            state.waves[i].state = WaveState::Submitted;
        }
    }
    state.status = RolloutStatus::Running;
    store.save(&state)?;
    if !a.output.quiet {
        let left = state
            .waves
            .iter()
            .filter(|w| matches!(w.state, WaveState::Pending | WaveState::Submitted))
            .count();
        writeln!(
            ctx.streams.err,
            "Resuming rollout {}: {left} of {} waves left.",
            state.id,
            state.waves.len()
        )?;
    }
    // A resumed rollout writes only the GitHub step summary, when that is set.
    let reports = crate::cli::ReportArgs::default();
    run_waves(ctx, &client, store, state, &a.output, &reports, true).await
}

fn brief(s: &RolloutState) -> Value {
    json!({
        "id": s.id, "created": s.created, "status": s.status, "command": s.command,
        "task": s.task, "target": s.target, "waves": s.waves.len(),
        "waves_done": s.waves.iter().filter(|w| w.state == WaveState::Done).count(),
        "nodes": s.waves.iter().map(|w| w.nodes.len()).sum::<usize>(),
        "failures": s.failures(),
    })
}

fn status_word(s: RolloutStatus) -> &'static str {
    match s {
        RolloutStatus::Running => "running",
        RolloutStatus::Finished => "finished",
        RolloutStatus::BudgetReached => "budget reached",
        RolloutStatus::Stopped => "stopped",
    }
}

fn list_line(s: &RolloutState) -> String {
    let done = s
        .waves
        .iter()
        .filter(|w| w.state == WaveState::Done)
        .count();
    let nodes: usize = s.waves.iter().map(|w| w.nodes.len()).sum();
    format!(
        "{}  {:<14}  {done}/{} waves  {nodes} nodes  {} failures  {}  {}",
        s.id,
        status_word(s.status),
        s.waves.len(),
        s.failures(),
        s.task,
        s.target
    )
}

fn show_text(s: &RolloutState) -> String {
    let mut t = format!(
        "Rollout {} ({}), created {}\n  {} {} on {}\n  service {}\n",
        s.id,
        status_word(s.status),
        s.created,
        s.command,
        s.task,
        s.target,
        s.service_url
    );
    if let Some(m) = s.max_failures {
        t.push_str(&format!("  failures {} of {m} allowed\n", s.failures()));
    }
    for (i, w) in s.waves.iter().enumerate() {
        let state = match w.state {
            WaveState::Pending => "pending",
            WaveState::Submitted => "submitted",
            WaveState::Done => "done",
            WaveState::NotStarted => "not started",
        };
        t.push_str(&format!(
            "  wave {}/{}{}: {} nodes, {state}{}{}\n    {}\n",
            i + 1,
            s.waves.len(),
            if w.canary { " (canary)" } else { "" },
            w.nodes.len(),
            w.job
                .as_ref()
                .map(|j| format!(", job {j}"))
                .unwrap_or_default(),
            if w.failures > 0 {
                format!(", {} failed", w.failures)
            } else {
                String::new()
            },
            w.nodes.join(", ")
        ));
    }
    t
}
