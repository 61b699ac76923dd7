//! Running a rollout: each wave its own task job, submitted only after its marker is in the
//! state file, followed by one [`Follower`] through the rollout's reporter; the failure budget,
//! the canary and Ctrl-C decide whether the next wave starts.
//!
//! Ctrl-C: the first press stops the running wave (and no further wave starts), the second
//! force-stops it, the third detaches. A press during a pause between waves ends the rollout
//! there. `kick rollout resume ID` continues a stopped (or killed) rollout.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use orchestrator_client::{Client, JobsQuery, MARKER_KEY, RetryPolicy, Settings};
use orchestrator_types::{Scope, TaskRequest};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::args::RolloutArgs;
use super::plan::{Amount, Spec, parse_pause};
use super::report::{NotStarted, RolloutReporter};
use super::resolve::{Resolved, resolve};
use super::state::{RolloutState, RolloutStatus, STATE_VERSION, Store, WaveRecord, WaveState};
use crate::Context;
use crate::cli::{Format, OutputArgs, ReportArgs, RunArgs, TargetArgs};
use crate::error::Error;
use crate::summary::EXIT_DETACHED;
use crate::watch::{End, Follower, Interrupts, JobInfo};

/// userdata keys every wave job carries (besides kick's submission marker).
pub const ROLLOUT_KEY: &str = "kick_rollout";
/// The wave's number (1-based).
pub const WAVE_KEY: &str = "kick_wave";
/// The number of waves.
pub const WAVES_KEY: &str = "kick_waves";
/// The attempt of a `--retry` follow-up job (2 and up).
pub const ATTEMPT_KEY: &str = "kick_attempt";

/// Jobs listed when looking for a wave already on the server.
const LOOKUP_JOBS: u64 = 200;

/// The spec the flags give.
pub fn spec(a: &RolloutArgs) -> Result<Spec, Error> {
    Ok(Spec {
        batch: a
            .batch
            .as_deref()
            .map(|b| Amount::parse("--batch", b))
            .transpose()?,
        canary: a.canary,
        max_failures: a
            .max_failures
            .as_deref()
            .map(|m| Amount::parse("--max-failures", m))
            .transpose()?,
        pause: a
            .batch_pause
            .as_deref()
            .map(parse_pause)
            .transpose()?
            .unwrap_or_default(),
        shuffle: a.shuffle,
    })
}

/// What a job-starting command hands over once its request is built.
#[derive(Debug)]
pub struct Submission<'a> {
    /// The task request (its scope is filled in here).
    pub request: TaskRequest,
    /// The TARGET flags.
    pub target: &'a TargetArgs,
    /// The rollout flags.
    pub rollout: &'a RolloutArgs,
    /// The run flags.
    pub run: &'a RunArgs,
    /// `agent`, `task run` or `rerun`, for the state file.
    pub command: &'a str,
}

/// The end `kick agent` and `kick task run` share: the `--userdata` flags and the connection,
/// then the request `build` makes of them, as [`run_task`] runs it.
pub async fn connect_and_run(
    ctx: &mut Context,
    target: &TargetArgs,
    rollout: &RolloutArgs,
    run: &RunArgs,
    command: &str,
    build: impl FnOnce(Option<Map<String, Value>>, &Settings) -> TaskRequest,
) -> Result<u8, Error> {
    let userdata = crate::params::userdata(&run.userdata)?;
    let (client, settings) =
        crate::commands::connect(&run.conn, Some(&run.env), ctx.streams.err.as_mut())?;
    let sub = Submission {
        request: build(userdata, &settings),
        target,
        rollout,
        run,
        command,
    };
    run_task(ctx, &client, &settings, sub).await
}

/// `kick agent` / `kick task run` from the point where the request is built: a single job
/// as before, or, with rollout or pre-flight flags, a rollout.
pub async fn run_task(
    ctx: &mut Context,
    client: &Client,
    settings: &Settings,
    sub: Submission<'_>,
) -> Result<u8, Error> {
    let Submission {
        request: mut req,
        target,
        rollout: ra,
        run,
        command,
    } = sub;
    let spec = spec(ra)?;
    if (spec.max_failures.is_some() || !spec.pause.is_zero() || spec.shuffle) && !spec.is_rollout()
    {
        return Err(Error::Usage(
            "--max-failures, --batch-pause and --shuffle shape waves; add --batch N (or --canary N)".into(),
        ));
    }
    let need_list = spec.is_rollout() || ra.dry_run || ra.skip_disconnected || ra.retry.is_some();
    let retry_delay = ra
        .retry_delay
        .as_deref()
        .map(|d| {
            parse_pause(d).map_err(|_| {
                Error::Usage(format!(
                    "--retry-delay {d:?} is not a duration; give e.g. 10s or 1m"
                ))
            })
        })
        .transpose()?
        .unwrap_or(std::time::Duration::from_secs(10));
    let wants_pdb = target.query.is_some() || ra.dry_run;
    let puppetdb = if wants_pdb {
        super::resolve::puppetdb(
            settings,
            run.puppetdb_url.as_deref(),
            ctx.streams.err.as_mut(),
        )?
    } else {
        None
    };
    let store = Store::for_context(ctx)?;
    let resolved = resolve(target, client, puppetdb.as_ref(), &store, need_list).await?;
    let mut nodes = match resolved {
        Resolved::Nodes(n) if need_list => n,
        other => {
            req.scope = other.scope();
            let job = client.run_task(req).await?;
            return crate::commands::follow_started(ctx, client, job, run).await;
        }
    };
    let mut disconnected = Vec::new();
    if ra.skip_disconnected || ra.dry_run {
        let inv = client.inventory_nodes(&nodes).await?;
        let connected: std::collections::HashSet<String> = inv
            .items
            .into_iter()
            .filter(|n| n.connected)
            .map(|n| n.name)
            .collect();
        disconnected = nodes
            .iter()
            .filter(|n| !connected.contains(*n))
            .cloned()
            .collect();
        if ra.skip_disconnected && !disconnected.is_empty() {
            nodes.retain(|n| connected.contains(n));
            if !run.output.quiet {
                writeln!(
                    ctx.streams.err,
                    "Leaving out {} node{} the orchestrator reports as not connected: {}",
                    disconnected.len(),
                    if disconnected.len() == 1 { "" } else { "s" },
                    disconnected.join(", ")
                )?;
            }
            if nodes.is_empty() {
                return Err(Error::Usage(
                    "no node of the target is connected to the orchestrator; nothing to run".into(),
                ));
            }
        }
    }
    let seed = fastrand::u64(..);
    let effective = if spec.is_rollout() {
        spec.clone()
    } else {
        Spec::default()
    };
    let plan = effective.plan(nodes, seed)?;
    if ra.dry_run {
        return super::preflight::print(ctx, &plan, &disconnected, puppetdb.as_ref(), &req, run)
            .await;
    }
    let id = super::state::new_id(SystemTime::now());
    let mut request = serde_json::to_value(&req).map_err(|e| Error::Usage(e.to_string()))?;
    if let Some(o) = request.as_object_mut() {
        // Each wave has its own scope; its userdata is the user's plus the
        // wave's keys.
        o.insert("scope".into(), Value::Object(Map::new()));
    }
    let state = RolloutState {
        version: STATE_VERSION,
        id: id.clone(),
        created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        command: command.to_owned(),
        task: req.task.clone(),
        service_url: settings.service_url.clone(),
        target: describe_target(target),
        spec: effective,
        max_failures: plan.max_failures,
        request,
        retry: ra.retry.unwrap_or(0),
        retry_delay: retry_delay.as_secs_f64(),
        status: RolloutStatus::Running,
        waves: plan
            .waves
            .iter()
            .map(|w| WaveRecord {
                nodes: w.nodes.clone(),
                canary: w.canary,
                state: WaveState::Pending,
                marker: None,
                job: None,
                failures: 0,
                retries: Vec::new(),
                retry_marker: None,
                counts: None,
            })
            .collect(),
    };
    store.save(&state)?;
    if !run.output.quiet {
        let total: usize = state.waves.iter().map(|w| w.nodes.len()).sum();
        writeln!(
            ctx.streams.err,
            "Rollout {id}: {total} nodes in {} waves{}; if kick is interrupted, continue with `kick rollout resume {id}`.",
            state.waves.len(),
            state
                .max_failures
                .map(|m| format!(", at most {m} failures"))
                .unwrap_or_default()
        )?;
    }
    run_waves(ctx, client, &store, state, &run.output, &run.reports, false).await
}

/// Runs the waves of `state` not yet done, saving it after each step; the exit code over the
/// whole rollout.
pub async fn run_waves(
    ctx: &mut Context,
    client: &Client,
    store: &Store,
    mut state: RolloutState,
    output: &OutputArgs,
    reports: &ReportArgs,
    resumed: bool,
) -> Result<u8, Error> {
    let total: u64 = state.waves.iter().map(|w| w.nodes.len() as u64).sum();
    let waves = state.waves.len();
    let mut saver = Saver::new(store);
    let base: TaskRequest =
        serde_json::from_value(state.request.clone()).map_err(|e| Error::State {
            path: store.dir().to_owned(),
            message: format!("the rollout's request cannot be read back ({e})"),
        })?;

    // User presses reach the follower through this channel; the reporter presses it too,
    // when the budget is reached.
    let (press, mut follower_presses) = Interrupts::channel();
    let presses = Arc::new(AtomicU32::new(0));
    let pressed = Arc::new(Notify::new());
    let forwarder = {
        let mut user = std::mem::take(&mut ctx.interrupts);
        let press = press.clone();
        let presses = presses.clone();
        let pressed = pressed.clone();
        tokio::spawn(async move {
            loop {
                user.next().await;
                presses.fetch_add(1, Ordering::SeqCst);
                pressed.notify_waiters();
                let _ = press.send(());
            }
        })
    };

    let streams = ctx.take_streams();
    // Each wave (and each retry) is one testsuite of the CI reports.
    let targets = crate::ci::Targets::from_flags(reports.junit.clone(), reports.summary_md.clone());
    let mut rec = crate::ci::Recorder::new(
        RolloutReporter::new(
            output,
            streams,
            &state.id,
            total,
            waves,
            state.max_failures,
            press.clone(),
        ),
        targets,
    );
    rec.inner_mut().set_failures_before(state.failures());
    for (i, w) in state.waves.iter().enumerate() {
        if let (WaveState::Done, Some(c)) = (w.state, w.counts) {
            rec.inner_mut().earlier_wave(
                i + 1,
                w.job.as_deref(),
                w.nodes.len(),
                w.canary,
                &w.retries,
                c.summary(),
            );
        }
    }
    rec.inner_mut().planned(total, waves, resumed)?;
    let follower_client = client.with_retry(RetryPolicy::none());
    let mode = crate::render::result_mode(output);
    let mut stop_reason: Option<NotStarted> = None;
    let mut detached = false;

    let result: Result<(), Error> = async {
        while let Some(i) = state.next_wave() {
            if presses.load(Ordering::SeqCst) > 0 {
                state.status = RolloutStatus::Stopped;
                stop_reason = Some(NotStarted::Stopped);
                break;
            }
            let sent = state.waves[i].state == WaveState::Pending
                && submit_wave(client, &mut saver, &mut state, i, &base).await?;
            let job = state.waves[i].job.clone().unwrap_or_default();
            let wave_nodes = state.waves[i].nodes.len();
            rec.label_next(format!("wave {}/{waves}", i + 1));
            rec.inner_mut().begin_wave(i + 1, &job, wave_nodes, state.waves[i].canary)?;
            rec.inner_mut().retries_left = state.retry > 0;
            let outcome = follow_one(
                &follower_client,
                &mut rec,
                &mut follower_presses,
                &ctx.watch,
                mode,
                &job,
                sent.then(|| sent_info(&job, &base, wave_nodes)),
            )
            .await?;
            if outcome.end == End::Detached {
                detached = true;
                state.status = RolloutStatus::Stopped;
                saver.save(&state).await?;
                return Ok(());
            }
            let mut counts = super::state::Counts::of(&outcome.summary);
            let mut interrupted = outcome.interrupted;
            // --retry: follow-up jobs for the nodes that failed for a transient reason.
            let mut attempt = 1u32;
            loop {
                let transient = rec.inner_mut().take_transient();
                if transient.is_empty()
                    || attempt > state.retry
                    || interrupted
                    || rec.inner_mut().budget_tripped()
                {
                    break;
                }
                // A resumed rollout follows the retry the run it continues had sent.
                let recorded = state.waves[i].retries.get(attempt as usize - 1).cloned();
                let delay = match recorded {
                    Some(_) => std::time::Duration::ZERO,
                    None => std::time::Duration::try_from_secs_f64(state.retry_delay)
                        .unwrap_or_default(),
                };
                rec.inner_mut().say(&format!(
                    "Retrying {} node{} of wave {}/{waves} that failed for a transient reason in {} (attempt {}/{}).",
                    transient.len(),
                    if transient.len() == 1 { "" } else { "s" },
                    i + 1,
                    humantime::format_duration(delay),
                    attempt + 1,
                    state.retry + 1
                ))?;
                let notified = pressed.notified();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = notified => { interrupted = true; break; }
                }
                let nodes: Vec<String> = transient.iter().map(|(n, _)| n.clone()).collect();
                attempt += 1;
                let (retry_job, sent) = match recorded {
                    Some(job) => (job, false),
                    None => (
                        submit_retry(client, &mut saver, &mut state, i, &base, nodes.clone(), attempt)
                            .await?,
                        true,
                    ),
                };
                rec.inner_mut().retries_left = attempt <= state.retry;
                rec.label_next(format!("wave {}/{waves} attempt {attempt}", i + 1));
                rec.inner_mut().begin_retry(attempt, &retry_job, nodes.len())?;
                let o = follow_one(
                    &follower_client,
                    &mut rec,
                    &mut follower_presses,
                    &ctx.watch,
                    mode,
                    &retry_job,
                    sent.then(|| sent_info(&retry_job, &base, nodes.len())),
                )
                .await?;
                if o.end == End::Detached {
                    detached = true;
                    state.status = RolloutStatus::Stopped;
                    saver.save(&state).await?;
                    return Ok(());
                }
                for (_, first) in &transient {
                    counts.remove(*first);
                }
                counts.add(&o.summary);
                interrupted |= o.interrupted;
            }
            let summary = counts.summary();
            let failed_now = summary.failed + summary.errored;
            state.waves[i].failures = usize::try_from(failed_now).unwrap_or(usize::MAX);
            state.waves[i].state = WaveState::Done;
            state.waves[i].counts = Some(counts);
            rec.inner_mut().end_wave(&job, wave_nodes, summary, "done");
            let over = state.max_failures.is_some_and(|m| state.failures() > m);
            let canary_failed = state.waves[i].canary && summary.bad() > 0;
            if over || canary_failed || rec.inner_mut().budget_tripped() {
                state.status = RolloutStatus::BudgetReached;
                stop_reason = Some(NotStarted::Budget);
                saver.save(&state).await?;
                break;
            }
            if interrupted {
                state.status = RolloutStatus::Stopped;
                stop_reason = Some(NotStarted::Stopped);
                saver.save(&state).await?;
                break;
            }
            // With no pause the next wave follows at once: the save made while it runs
            // records this one as done (a kick killed before that re-follows this wave's
            // job on resume, and submits nothing again).
            if state.next_wave().is_none() || !state.spec.pause.is_zero() {
                saver.save(&state).await?;
            }
            if state.next_wave().is_some() && !state.spec.pause.is_zero() {
                rec.inner_mut().say(&format!(
                    "Pausing {} before wave {}/{waves} (Ctrl-C ends the rollout here).",
                    humantime::format_duration(state.spec.pause),
                    i + 2
                ))?;
                let notified = pressed.notified();
                tokio::select! {
                    () = tokio::time::sleep(state.spec.pause) => {}
                    () = notified => {}
                }
            }
        }
        Ok(())
    }
    .await;
    forwarder.abort();
    // A save still under way is waited for also when the rollout failed; the rollout's
    // error comes first.
    let settled = saver.settle().await;
    result?;
    settled?;
    if detached {
        rec.inner_mut().say(&format!(
            "Rollout {} detached; continue it with `kick rollout resume {}`.",
            state.id, state.id
        ))?;
        return Ok(EXIT_DETACHED);
    }
    let not_started: Vec<(usize, Vec<String>, bool)> = state
        .waves
        .iter()
        .enumerate()
        .filter(|(_, w)| w.state == WaveState::Pending)
        .map(|(i, w)| (i + 1, w.nodes.clone(), w.canary))
        .collect();
    if state.next_wave().is_none() {
        state.status = RolloutStatus::Finished;
    } else if stop_reason == Some(NotStarted::Budget) {
        for w in &mut state.waves {
            if w.state == WaveState::Pending {
                w.state = WaveState::NotStarted;
            }
        }
    }
    saver.save(&state).await?;
    let mut summary = rec.inner_mut().summary;
    for (_, nodes, _) in &not_started {
        for _ in nodes {
            summary.add(crate::outcome::Outcome::Skipped);
        }
    }
    let exit_code = summary.exit_code();
    let status = match state.status {
        RolloutStatus::Finished => "finished",
        RolloutStatus::BudgetReached => "stopped at its failure budget",
        RolloutStatus::Stopped => "stopped",
        RolloutStatus::Running => "running",
    };
    rec.inner_mut()
        .finish_rollout(&not_started, stop_reason, status, exit_code)?;
    if state.status == RolloutStatus::Stopped && output.format == Format::Human {
        rec.inner_mut().say(&format!(
            "Continue it with `kick rollout resume {}`.",
            state.id
        ))?;
    }
    rec.write_reports()?;
    Ok(exit_code)
}

/// Follows one of the rollout's jobs (a wave or a retry of one) to its end,
/// through the same reporter and Ctrl-C presses as the others.
async fn follow_one(
    client: &Client,
    rec: &mut dyn crate::render::Reporter,
    presses: &mut Interrupts,
    config: &crate::watch::WatchConfig,
    mode: crate::watch::ResultMode,
    job: &str,
    sent: Option<JobInfo>,
) -> Result<crate::watch::JobOutcome, Error> {
    let mut follower = Follower::new(client, rec, presses, config, mode);
    match sent {
        Some(info) => follower.follow_sent(&info).await,
        None => follower.follow(job).await,
    }
}

/// What this run knows of job `job`, just submitted as `base` on `nodes` nodes: enough to
/// follow it without reading it first (a wave starts polling at once).
fn sent_info(job: &str, base: &TaskRequest, nodes: usize) -> JobInfo {
    JobInfo {
        name: job.to_owned(),
        state: "new".to_owned(),
        environment: base.environment.clone(),
        task: Some(base.task.clone()),
        noop: base.noop == Some(true) || base.params.get("noop") == Some(&Value::Bool(true)),
        duration: None,
        node_count: nodes as u64,
        job_type: "task".to_owned(),
    }
}

/// Submits wave `i` at most once: its marker goes into the state file first, and a wave whose
/// marker is recorded (kick may have been killed after sending it) is looked up on the server
/// before anything is sent. True when this call sent it.
async fn submit_wave(
    client: &Client,
    saver: &mut Saver<'_>,
    state: &mut RolloutState,
    i: usize,
    base: &TaskRequest,
) -> Result<bool, Error> {
    let waves = state.waves.len();
    let marker = match state.waves[i].marker.clone() {
        // Saved by this run along with the wave before, never sent: nothing to look up,
        // only that save to wait for.
        Some(marker) if saver.unsent.remove(&i) => {
            saver.settle().await?;
            marker
        }
        recorded => {
            if let Some(marker) = recorded
                && let Some(job) = find_wave(client, &state.id, i + 1, &marker).await?
            {
                state.waves[i].job = Some(job);
                state.waves[i].state = WaveState::Submitted;
                saver.save(state).await?;
                return Ok(false);
            }
            let marker = uuid::Uuid::new_v4().simple().to_string();
            state.waves[i].marker = Some(marker.clone());
            saver.save(state).await?;
            marker
        }
    };
    let nodes = state.waves[i].nodes.clone();
    let req = wave_request(base, &state.id, (i + 1, waves), None, nodes, marker);
    let job = client.run_task(req).await?;
    state.waves[i].job = Some(job.name);
    state.waves[i].state = WaveState::Submitted;
    // The next wave's marker goes into the same save, made while this wave runs, so that
    // no save stands between this wave's end and the next one's submission.
    if let Some(next) = state.waves.get_mut(i + 1)
        && next.state == WaveState::Pending
        && next.marker.is_none()
    {
        next.marker = Some(uuid::Uuid::new_v4().simple().to_string());
        saver.unsent.insert(i + 1);
    }
    saver.save_later(state).await?;
    Ok(true)
}

/// Submits attempt `attempt` of wave `i` for `nodes` (a `--retry` follow-up job) at most once,
/// as [`submit_wave`] does a wave, and records it.
async fn submit_retry(
    client: &Client,
    saver: &mut Saver<'_>,
    state: &mut RolloutState,
    i: usize,
    base: &TaskRequest,
    nodes: Vec<String>,
    attempt: u32,
) -> Result<String, Error> {
    let waves = state.waves.len();
    if let Some(marker) = state.waves[i].retry_marker.clone()
        && let Some(job) = find_job(client, &state.id, i + 1, Some(attempt), &marker).await?
    {
        state.waves[i].retries.push(job.clone());
        state.waves[i].retry_marker = None;
        saver.save(state).await?;
        return Ok(job);
    }
    let marker = uuid::Uuid::new_v4().simple().to_string();
    state.waves[i].retry_marker = Some(marker.clone());
    saver.save(state).await?;
    let req = wave_request(
        base,
        &state.id,
        (i + 1, waves),
        Some(attempt),
        nodes,
        marker,
    );
    let job = client.run_task(req).await?;
    state.waves[i].retries.push(job.name.clone());
    state.waves[i].retry_marker = None;
    saver.save_later(state).await?;
    Ok(job.name)
}

/// The job of wave `wave` of rollout `id` submitted with `marker`, if the server has one.
pub async fn find_wave(
    client: &Client,
    id: &str,
    wave: usize,
    marker: &str,
) -> Result<Option<String>, Error> {
    find_job(client, id, wave, None, marker).await
}

/// `base` as the job of rollout `id`'s wave `wave` of `waves` (or its retry `attempt`) on
/// `nodes`: the user's userdata plus the rollout's keys and `marker`, and a description that
/// starts `kick rollout <id> wave i/n [attempt k]`.
fn wave_request(
    base: &TaskRequest,
    id: &str,
    (wave, waves): (usize, usize),
    attempt: Option<u32>,
    nodes: Vec<String>,
    marker: String,
) -> TaskRequest {
    let mut req = base.clone();
    req.scope = Scope::nodes(nodes);
    let mut userdata = base.userdata.clone().unwrap_or_default();
    userdata.insert(MARKER_KEY.into(), Value::from(marker));
    userdata.insert(ROLLOUT_KEY.into(), Value::from(id));
    userdata.insert(WAVE_KEY.into(), Value::from(wave));
    userdata.insert(WAVES_KEY.into(), Value::from(waves));
    let mut head = format!("kick rollout {id} wave {wave}/{waves}");
    if let Some(attempt) = attempt {
        userdata.insert(ATTEMPT_KEY.into(), Value::from(attempt));
        head.push_str(&format!(" attempt {attempt}"));
    }
    req.userdata = Some(userdata);
    req.description = Some(match &base.description {
        Some(d) if !d.trim().is_empty() => format!("{head}: {d}"),
        _ => head,
    });
    req
}

/// The job submitted with `marker`, else the one of rollout `id`'s wave `wave` and retry
/// `attempt` (`None`: the wave's own job), if the server has one.
async fn find_job(
    client: &Client,
    id: &str,
    wave: usize,
    attempt: Option<u32>,
    marker: &str,
) -> Result<Option<String>, Error> {
    let list = client
        .jobs(&JobsQuery {
            limit: Some(LOOKUP_JOBS),
            offset: None,
            order_by: Some("timestamp".into()),
            order: Some("desc".into()),
            job_type: Some("task".into()),
        })
        .await?;
    let matches = |u: Option<&Value>| {
        u.is_some_and(|u| {
            u.get(MARKER_KEY).and_then(Value::as_str) == Some(marker)
                || (u.get(ROLLOUT_KEY).and_then(Value::as_str) == Some(id)
                    && u.get(WAVE_KEY).and_then(Value::as_u64) == Some(wave as u64)
                    && u.get(ATTEMPT_KEY).and_then(Value::as_u64) == attempt.map(u64::from))
        })
    };
    Ok(list
        .items
        .into_iter()
        .find(|j| matches(j.userdata.as_ref()) || matches(j.options.get("userdata")))
        .map(|j| j.name))
}

fn describe_target(t: &TargetArgs) -> String {
    if let Some(n) = &t.nodes {
        format!("--nodes {n}")
    } else if let Some(q) = &t.query {
        format!("--query {q}")
    } else if let Some(f) = &t.nodes_from {
        format!("--nodes-from {f}")
    } else if let Some(g) = &t.node_group {
        format!("--node-group {g}")
    } else {
        String::new()
    }
}

/// Writes the state file in order, some saves off the critical path. What keeps a wave from
/// being sent twice is its marker, saved before it is sent; the save that records the job a
/// submission got only spares `rollout resume` a lookup, so it is written while the wave is
/// followed instead of before, with the next wave's marker. Each save waits for the one
/// before it.
struct Saver<'a> {
    store: &'a Store,
    pending: Option<tokio::task::JoinHandle<Result<(), Error>>>,
    /// Waves whose marker this run saved ahead and has not sent: a resumed run cannot tell
    /// them from sent ones and looks them up.
    unsent: std::collections::HashSet<usize>,
}

impl<'a> Saver<'a> {
    fn new(store: &'a Store) -> Self {
        Saver {
            store,
            pending: None,
            unsent: std::collections::HashSet::new(),
        }
    }

    /// Waits for the save under way, if any, and returns its error.
    async fn settle(&mut self) -> Result<(), Error> {
        match self.pending.take() {
            Some(handle) => handle.await.map_err(|e| Error::State {
                path: self.store.dir().to_owned(),
                message: format!("the state file was not written: {e}"),
            })?,
            None => Ok(()),
        }
    }

    async fn save(&mut self, state: &RolloutState) -> Result<(), Error> {
        self.settle().await?;
        self.store.save(state)
    }

    /// Starts saving `state`; the next save (or [`Saver::settle`]) waits for it.
    async fn save_later(&mut self, state: &RolloutState) -> Result<(), Error> {
        self.settle().await?;
        let store = self.store.clone();
        let state = state.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || store.save(&state)));
        Ok(())
    }
}
