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

use orchestrator_client::{Client, RetryPolicy, Settings};
use orchestrator_types::TaskRequest;
use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::plan::{Amount, Spec, parse_pause};
use super::report::{NotStarted, RolloutReporter};
use super::state::{RolloutState, RolloutStatus, STATE_VERSION, Store, WaveRecord, WaveState};
use super::submit::{Saver, submit_retry, submit_wave};
use crate::cli::RolloutArgs;
use crate::cli::{Format, OutputArgs, ReportArgs, RunArgs, TargetArgs};
use crate::context::Context;
use crate::error::Error;
use crate::summary::EXIT_DETACHED;
use crate::target::resolve::{self, Resolved};
use crate::watch::{End, Follower, Interrupts, JobInfo};

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

/// Whether the flags ask for a rollout (waves, a pre-flight, leaving out
/// disconnected nodes, retries) rather than one plain job; refuses the
/// flags that shape waves without waves, and malformed amounts and delays.
pub fn wanted(ra: &RolloutArgs) -> Result<bool, Error> {
    let spec = spec(ra)?;
    if (spec.max_failures.is_some() || !spec.pause.is_zero() || spec.shuffle) && !spec.is_rollout()
    {
        return Err(Error::Usage(
            "--max-failures, --batch-pause and --shuffle shape waves; add --batch N (or --canary N)".into(),
        ));
    }
    retry_delay(ra)?;
    Ok(spec.is_rollout() || ra.dry_run || ra.skip_disconnected || ra.retry.is_some())
}

/// `--retry-delay`, 10 s when not given.
fn retry_delay(ra: &RolloutArgs) -> Result<std::time::Duration, Error> {
    Ok(ra
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
        .unwrap_or(std::time::Duration::from_secs(10)))
}

/// A rollout of `sub` (the flags [`wanted`] one): the target resolved to certnames, the
/// disconnected left out, the plan printed (`--dry-run`) or recorded and its waves run.
pub async fn run(
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
    let retry_delay = retry_delay(ra)?;
    let puppetdb = resolve::puppetdb(
        target.query.is_some() || ra.dry_run,
        settings,
        run.puppetdb_url.as_deref(),
        ctx.streams.err.as_mut(),
    )?;
    let store = Store::for_context(ctx)?;
    let resolved = resolve::resolve(
        target,
        client,
        puppetdb.as_ref(),
        &|id| store.jobs(id),
        true,
    )
    .await?;
    let mut nodes = match resolved {
        Resolved::Nodes(n) => n,
        other => {
            req.scope = other.scope();
            return crate::job::submit(ctx, client, req, run).await;
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
            if !run.follow.output.quiet {
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
            .map(|w| WaveRecord::planned(w.nodes.clone(), w.canary))
            .collect(),
    };
    store.save(&state)?;
    if !run.follow.output.quiet {
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
    run_waves(
        ctx,
        client,
        &store,
        state,
        &run.follow.output,
        &run.follow.reports,
        false,
    )
    .await
}

/// Runs the waves of `state` not yet done, saving it after each step; the exit code over the
/// whole rollout. Each wave in turn: [`Waves::next`] plans it (or ends the rollout),
/// [`Waves::submit`] sends it at most once, [`Waves::follow`] follows it and its retries,
/// [`Waves::judge`] counts it against the failure budget and pauses before the next.
pub async fn run_waves(
    ctx: &mut Context,
    client: &Client,
    store: &Store,
    state: RolloutState,
    output: &OutputArgs,
    reports: &ReportArgs,
    resumed: bool,
) -> Result<u8, Error> {
    let mut waves = Waves::start(ctx, client, store, state, output, reports, resumed)?;
    let result: Result<(), Error> = async {
        while let Some(i) = waves.next() {
            let sent = waves.submit(i).await?;
            let Some(ended) = waves.follow(i, sent).await? else {
                return Ok(());
            };
            if !waves.judge(i, ended).await? {
                break;
            }
        }
        Ok(())
    }
    .await;
    waves.forwarder.abort();
    // A save still under way is waited for also when the rollout failed; the rollout's
    // error comes first.
    let settled = waves.saver.settle().await;
    result?;
    settled?;
    waves.finish(output).await
}

/// A rollout while its waves run: the state and its saver, the reporter all waves share, and
/// the Ctrl-C presses.
struct Waves<'a> {
    client: &'a Client,
    /// The client the followers use: they retry their calls themselves.
    follower_client: Client,
    saver: Saver<'a>,
    state: RolloutState,
    /// The request every wave sends, on its own nodes.
    base: TaskRequest,
    /// The number of waves.
    count: usize,
    rec: crate::ci::Recorder<RolloutReporter>,
    config: &'a crate::watch::WatchConfig,
    mode: crate::watch::ResultMode,
    /// The user's presses, as the followers receive them (the reporter presses too, when
    /// the budget is reached).
    follower_presses: Interrupts,
    /// How many times the user pressed Ctrl-C, and a wake-up for each press.
    presses: Arc<AtomicU32>,
    pressed: Arc<Notify>,
    forwarder: tokio::task::JoinHandle<()>,
    stop_reason: Option<NotStarted>,
    detached: bool,
}

/// How a wave's jobs (the wave's own and its retries) ended.
struct WaveEnd {
    job: String,
    counts: crate::summary::Counts,
    interrupted: bool,
}

impl<'a> Waves<'a> {
    /// Takes the context's streams and Ctrl-C presses, and reports the plan (and the waves a
    /// resumed rollout had already run).
    fn start(
        ctx: &'a mut Context,
        client: &'a Client,
        store: &'a Store,
        state: RolloutState,
        output: &OutputArgs,
        reports: &ReportArgs,
        resumed: bool,
    ) -> Result<Self, Error> {
        let total: u64 = state.waves.iter().map(|w| w.nodes.len() as u64).sum();
        let count = state.waves.len();
        let base: TaskRequest =
            serde_json::from_value(state.request.clone()).map_err(|e| Error::State {
                path: store.dir().to_owned(),
                message: format!("the rollout's request cannot be read back ({e})"),
            })?;

        // User presses reach the follower through this channel; the reporter presses it too,
        // when the budget is reached.
        let (press, follower_presses) = Interrupts::channel();
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
        let targets =
            crate::ci::Targets::from_flags(reports.junit.clone(), reports.summary_md.clone());
        let mut rec = crate::ci::Recorder::new(
            RolloutReporter::new(
                output,
                streams,
                &state.id,
                total,
                count,
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
        rec.inner_mut().planned(total, count, resumed)?;
        Ok(Waves {
            client,
            follower_client: client.with_retry(RetryPolicy::none()),
            saver: Saver::new(store),
            state,
            base,
            count,
            rec,
            config: &ctx.watch,
            mode: crate::render::result_mode(output),
            follower_presses,
            presses,
            pressed,
            forwarder,
            stop_reason: None,
            detached: false,
        })
    }

    /// The wave to run next; `None` when every wave ran, or when Ctrl-C was pressed (the
    /// rollout stops there).
    fn next(&mut self) -> Option<usize> {
        let i = self.state.next_wave()?;
        if self.presses.load(Ordering::SeqCst) > 0 {
            self.state.status = RolloutStatus::Stopped;
            self.stop_reason = Some(NotStarted::Stopped);
            return None;
        }
        Some(i)
    }

    /// Submits wave `i` unless the server has it already; true when this call sent it.
    async fn submit(&mut self, i: usize) -> Result<bool, Error> {
        Ok(self.state.waves[i].state == WaveState::Pending
            && submit_wave(self.client, &mut self.saver, &mut self.state, i, &self.base).await?)
    }

    /// Follows wave `i` (just `sent`, or submitted before) to its end, then its `--retry`
    /// follow-up jobs; `None` when kick was detached (the state is saved as stopped).
    async fn follow(&mut self, i: usize, sent: bool) -> Result<Option<WaveEnd>, Error> {
        let waves = self.count;
        let job = self.state.waves[i].job.clone().unwrap_or_default();
        let wave_nodes = self.state.waves[i].nodes.len();
        self.rec.label_next(format!("wave {}/{waves}", i + 1));
        self.rec
            .inner_mut()
            .begin_wave(i + 1, &job, wave_nodes, self.state.waves[i].canary)?;
        self.rec.inner_mut().retries_left = self.state.retry > 0;
        let sent = sent.then(|| sent_info(&job, &self.base, wave_nodes));
        let Some(outcome) = self.follow_job(&job, sent).await? else {
            return Ok(None);
        };
        let mut counts = outcome.summary.counts;
        let mut interrupted = outcome.interrupted;
        // --retry: follow-up jobs for the nodes that failed for a transient reason.
        let mut attempt = 1u32;
        loop {
            let transient = self.rec.inner_mut().take_transient();
            if transient.is_empty()
                || attempt > self.state.retry
                || interrupted
                || self.rec.inner_mut().budget_tripped()
            {
                break;
            }
            // A resumed rollout follows the retry the run it continues had sent.
            let recorded = self.state.waves[i]
                .retries
                .get(attempt as usize - 1)
                .cloned();
            let delay = match recorded {
                Some(_) => std::time::Duration::ZERO,
                None => std::time::Duration::try_from_secs_f64(self.state.retry_delay)
                    .unwrap_or_default(),
            };
            self.rec.inner_mut().say(&format!(
                "Retrying {} node{} of wave {}/{waves} that failed for a transient reason in {} (attempt {}/{}).",
                transient.len(),
                if transient.len() == 1 { "" } else { "s" },
                i + 1,
                humantime::format_duration(delay),
                attempt + 1,
                self.state.retry + 1
            ))?;
            let notified = self.pressed.notified();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = notified => { interrupted = true; break; }
            }
            let nodes: Vec<String> = transient.iter().map(|(n, _)| n.clone()).collect();
            attempt += 1;
            let (retry_job, sent) = match recorded {
                Some(job) => (job, false),
                None => (
                    submit_retry(
                        self.client,
                        &mut self.saver,
                        &mut self.state,
                        i,
                        &self.base,
                        nodes.clone(),
                        attempt,
                    )
                    .await?,
                    true,
                ),
            };
            self.rec.inner_mut().retries_left = attempt <= self.state.retry;
            self.rec
                .label_next(format!("wave {}/{waves} attempt {attempt}", i + 1));
            self.rec
                .inner_mut()
                .begin_retry(attempt, &retry_job, nodes.len())?;
            let sent = sent.then(|| sent_info(&retry_job, &self.base, nodes.len()));
            let Some(o) = self.follow_job(&retry_job, sent).await? else {
                return Ok(None);
            };
            for (_, first) in &transient {
                counts.remove(*first);
            }
            counts.add(&o.summary.counts);
            interrupted |= o.interrupted;
        }
        Ok(Some(WaveEnd {
            job,
            counts,
            interrupted,
        }))
    }

    /// Follows one of the rollout's jobs; `None` when kick was detached from it (the state
    /// is saved as stopped).
    async fn follow_job(
        &mut self,
        job: &str,
        sent: Option<JobInfo>,
    ) -> Result<Option<crate::watch::JobOutcome>, Error> {
        let outcome = follow_one(
            &self.follower_client,
            &mut self.rec,
            &mut self.follower_presses,
            self.config,
            self.mode,
            job,
            sent,
        )
        .await?;
        if outcome.end == End::Detached {
            self.detached = true;
            self.state.status = RolloutStatus::Stopped;
            self.saver.save(&self.state).await?;
            return Ok(None);
        }
        Ok(Some(outcome))
    }

    /// Records wave `i` as done and judges the rollout by it: false when the failure budget
    /// is spent, the canary failed or Ctrl-C was pressed (the rollout stops); otherwise the
    /// pause before the next wave, if any.
    async fn judge(&mut self, i: usize, ended: WaveEnd) -> Result<bool, Error> {
        let WaveEnd {
            job,
            counts,
            interrupted,
        } = ended;
        let summary = counts.summary();
        let failed_now = counts.failed + counts.errored;
        let wave = &mut self.state.waves[i];
        wave.failures = usize::try_from(failed_now).unwrap_or(usize::MAX);
        wave.state = WaveState::Done;
        wave.counts = Some(counts);
        let wave_nodes = wave.nodes.len();
        let canary = wave.canary;
        self.rec
            .inner_mut()
            .end_wave(&job, wave_nodes, summary, "done");
        let over = self
            .state
            .max_failures
            .is_some_and(|m| self.state.failures() > m);
        let canary_failed = canary && summary.bad() > 0;
        if over || canary_failed || self.rec.inner_mut().budget_tripped() {
            self.state.status = RolloutStatus::BudgetReached;
            self.stop_reason = Some(NotStarted::Budget);
            self.saver.save(&self.state).await?;
            return Ok(false);
        }
        if interrupted {
            self.state.status = RolloutStatus::Stopped;
            self.stop_reason = Some(NotStarted::Stopped);
            self.saver.save(&self.state).await?;
            return Ok(false);
        }
        // With no pause the next wave follows at once: the save made while it runs
        // records this one as done (a kick killed before that re-follows this wave's
        // job on resume, and submits nothing again).
        let pause = self.state.spec.pause;
        if self.state.next_wave().is_none() || !pause.is_zero() {
            self.saver.save(&self.state).await?;
        }
        if self.state.next_wave().is_some() && !pause.is_zero() {
            self.rec.inner_mut().say(&format!(
                "Pausing {} before wave {}/{} (Ctrl-C ends the rollout here).",
                humantime::format_duration(pause),
                i + 2,
                self.count
            ))?;
            let notified = self.pressed.notified();
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = notified => {}
            }
        }
        Ok(true)
    }

    /// The rollout's end: its final state saved, the waves it did not start and its summary
    /// reported, the CI reports written; the exit code.
    async fn finish(mut self, output: &OutputArgs) -> Result<u8, Error> {
        let state = &mut self.state;
        if self.detached {
            self.rec.inner_mut().say(&format!(
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
        } else if self.stop_reason == Some(NotStarted::Budget) {
            for w in &mut state.waves {
                if w.state == WaveState::Pending {
                    w.state = WaveState::NotStarted;
                }
            }
        }
        self.saver.save(state).await?;
        let mut summary = self.rec.inner_mut().summary;
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
        self.rec
            .inner_mut()
            .finish_rollout(&not_started, self.stop_reason, status, exit_code)?;
        if state.status == RolloutStatus::Stopped && output.format == Format::Human {
            self.rec.inner_mut().say(&format!(
                "Continue it with `kick rollout resume {}`.",
                state.id
            ))?;
        }
        self.rec.write_reports()?;
        Ok(exit_code)
    }
}

/// Follows one of the rollout's jobs (a wave or a retry of one) to its end,
/// through the same reporter and Ctrl-C presses as the others.
async fn follow_one(
    client: &Client,
    rec: &mut dyn crate::watch::Reporter,
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
