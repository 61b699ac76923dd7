//! Following jobs until they end, then collecting their nodes' results.
//!
//! A [`Follower`] follows one job at a time ([`Follower::follow`]) and
//! returns its [`JobOutcome`]; the same follower, with its reporter and its
//! Ctrl-C presses, can follow several jobs in turn. What it learns reaches
//! the reporter as [`WatchEvent`]s, which reporters put in their own words;
//! how results are read ([`ResultMode`]) is the command's choice.
//!
//! - `follow`: the poll loop. Progress comes from `GET /jobs/:id/events`
//!   with the cursor `start` = last event id + 1, polled on the schedule of
//!   [`poll_interval`]: quickly at first, then backing off while nothing
//!   happens (the wait is 1/40 of the quiet time) to at most
//!   [`WatchConfig::poll_max`]. Each node's line is reported as soon as its
//!   `node_*` event arrives. When the events endpoint is unavailable (404,
//!   5xx, garbage), kick follows `GET /jobs/:id` instead and reports the
//!   nodes at the end.
//! - `lookup`: records of nodes whose end event carried no result.
//! - `collect`: once the job has ended, the nodes page by page.
//! - `interrupts`: Ctrl-C: stop, force-stop, detach.
//! - `retry`: the one layer retrying the watcher's calls. Kick gives up on
//!   a job after [`WatchConfig::give_up`] without any successful answer
//!   (`KICK_WATCH_GIVE_UP`, 60 s by default); as a request in flight may
//!   take up to the request timeout (`KICK_REQUEST_TIMEOUT`, 30 s), that
//!   is the worst case: give-up plus one request timeout.

mod collect;
mod event;
mod follow;
mod interrupts;
mod lookup;
mod retry;

use std::time::Duration;

pub use event::{JobInfo, Notice, Progress, Reporter, WatchEvent};
pub use interrupts::Interrupts;

use crate::api::Api;
use crate::error::Error;
use crate::outcome::Outcome;
use crate::summary::{EXIT_DETACHED, EXIT_NOT_ENDED, Summary};
use collect::{Collected, collect};
use follow::{Followed, LiveJob};
use retry::retrying;

/// The poll interval is the time since the last event divided by this.
const QUIET_FRACTION: u32 = 40;

/// While events flow, the interval is the time spent watching divided by
/// this, at most [`WatchConfig::poll_busy`].
const BUSY_FRACTION: u32 = 40;

/// Polling and paging knobs.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Shortest poll interval, at the start of a watch.
    pub poll_min: Duration,
    /// Longest interval while events keep coming.
    pub poll_busy: Duration,
    /// Longest interval while nothing happens.
    pub poll_max: Duration,
    /// Nodes per page when collecting results.
    pub page_size: u64,
    /// Give up after this long without any successful answer: the one
    /// budget of the watcher's retries (see the module docs).
    pub give_up: Duration,
    /// While events are quiet, also check the job's state this often (in
    /// case the server never sends `job_finished`).
    pub job_check: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            poll_min: Duration::from_millis(20),
            poll_busy: Duration::from_millis(250),
            poll_max: Duration::from_secs(1),
            page_size: 200,
            give_up: Duration::from_secs(60),
            job_check: Duration::from_secs(5),
        }
    }
}

/// How results are read when they are collected: chosen by the command for
/// its output format, so that the watcher need not ask the reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultMode {
    /// Keep each result as the server's text and hand the reporter
    /// serialized reports ([`crate::outcome::NodeReport::json`]): the JSON
    /// formats copy results through.
    pub raw: bool,
    /// Per outcome (indexed by `Outcome as usize`): whether the output of a
    /// node with it is kept; cleaning outputs nobody will see is most of
    /// the cost of collecting a large job.
    pub output: [bool; Outcome::ALL.len()],
    /// The same for the nodes of a generic task ([`JobInfo::is_generic_task`]).
    pub generic_output: [bool; Outcome::ALL.len()],
}

impl ResultMode {
    /// Parsed results, the output kept for the outcomes `keep` selects
    /// (told whether the job runs a generic task).
    pub fn parsed(keep: impl Fn(Outcome, bool) -> bool) -> Self {
        Self {
            raw: false,
            output: Outcome::ALL.map(|o| keep(o, false)),
            generic_output: Outcome::ALL.map(|o| keep(o, true)),
        }
    }

    /// Results as the server's text, every output kept.
    pub fn raw() -> Self {
        Self {
            raw: true,
            output: [true; Outcome::ALL.len()],
            generic_output: [true; Outcome::ALL.len()],
        }
    }

    /// Whether the output of a node with outcome `o` is kept, in a job of
    /// a generic task or not.
    pub fn keeps_output(&self, o: Outcome, generic: bool) -> bool {
        if generic {
            self.generic_output[o as usize]
        } else {
            self.output[o as usize]
        }
    }
}

/// How following a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every node was reported, with the summary.
    Reported,
    /// The user detached with a third Ctrl-C; the job goes on.
    Detached,
    /// Ctrl-C ended the listing of an ended job's results.
    ListingInterrupted,
}

/// What following (or showing) one job amounted to.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// Job id.
    pub job: String,
    /// How it ended for kick.
    pub end: End,
    /// Whether the job had ended when its results were read (always, but
    /// for `kick job show` of a job in progress and a detach).
    pub ended: bool,
    /// The counts per outcome (empty unless [`End::Reported`]).
    pub summary: Summary,
    /// The exit code this job gives on its own: the outcomes' (0, 2, 4,
    /// 6), or 130 when detached or interrupted.
    pub exit_code: u8,
    /// Ctrl-C was pressed while the job ran (its stop was asked for): a
    /// caller following several jobs should start no more.
    pub interrupted: bool,
}

/// Follows jobs and reports them through one reporter.
pub struct Follower<'a, A> {
    api: &'a A,
    reporter: &'a mut dyn Reporter,
    interrupts: &'a mut Interrupts,
    config: &'a WatchConfig,
    mode: ResultMode,
}

impl<'a, A: Api + Clone + Send + Sync + 'static> Follower<'a, A> {
    /// A follower calling `api` (whose own retries should be off: the
    /// follower retries), reporting to `reporter`, reading results as
    /// `mode` says.
    pub fn new(
        api: &'a A,
        reporter: &'a mut dyn Reporter,
        interrupts: &'a mut Interrupts,
        config: &'a WatchConfig,
        mode: ResultMode,
    ) -> Self {
        Self {
            api,
            reporter,
            interrupts,
            config,
            mode,
        }
    }

    /// The reporter, for what a caller reports between jobs.
    pub fn reporter(&mut self) -> &mut dyn Reporter {
        self.reporter
    }

    /// Follows job `job_id` to its end and reports it; a third Ctrl-C
    /// detaches.
    pub async fn follow(&mut self, job_id: &str) -> Result<JobOutcome, Error> {
        let cfg = self.config;
        let job = retrying(cfg, job_id, || self.api.job(job_id)).await?;
        let info = JobInfo::from_job(&job);
        self.follow_from(job_id, &info, job.state.is_terminal())
            .await
    }

    /// [`Follower::follow`] for a job this run has just submitted, described by `info`
    /// (what the request said): its first poll comes without a read of the job before it.
    pub async fn follow_sent(&mut self, info: &JobInfo) -> Result<JobOutcome, Error> {
        self.follow_from(&info.name, info, false).await
    }

    async fn follow_from(
        &mut self,
        job_id: &str,
        info: &JobInfo,
        ended: bool,
    ) -> Result<JobOutcome, Error> {
        let cfg = self.config;
        self.reporter.report(WatchEvent::Started(info))?;
        let mut live = LiveJob::new(job_id, info);
        if !ended
            && live
                .follow(self.api, self.reporter, self.interrupts, cfg)
                .await?
                == Followed::Detached
        {
            self.reporter.report(WatchEvent::Notice(&Notice::Detached {
                job: job_id.to_owned(),
            }))?;
            return Ok(JobOutcome {
                job: job_id.to_owned(),
                end: End::Detached,
                ended: false,
                summary: Summary::default(),
                exit_code: EXIT_DETACHED,
                interrupted: true,
            });
        }
        // A press that came as the job ended was meant for the job, which
        // no longer needs stopping: it must not cut the results short.
        self.interrupts.drain();
        let interrupted = live.escalation.pressed();
        let mut outcome = self.collect(job_id, live.printed, true).await?;
        outcome.interrupted = interrupted;
        Ok(outcome)
    }

    /// Reports job `job_id` as it is now, without following it (`kick job
    /// show`). The exit code follows the outcomes once the job has ended,
    /// else it is [`EXIT_NOT_ENDED`] and nodes not ended are `running`.
    pub async fn show(&mut self, job_id: &str) -> Result<JobOutcome, Error> {
        let cfg = self.config;
        let job = retrying(cfg, job_id, || self.api.job(job_id)).await?;
        let info = JobInfo::from_job(&job);
        self.reporter.report(WatchEvent::Started(&info))?;
        let ended = job.state.is_terminal();
        let outcome = self.collect(job_id, Default::default(), ended).await?;
        if !ended && outcome.end == End::Reported {
            self.reporter.report(WatchEvent::Notice(&Notice::NotEnded {
                job: job_id.to_owned(),
                state: job.state.to_string(),
            }))?;
        }
        Ok(outcome)
    }

    async fn collect(
        &mut self,
        job_id: &str,
        printed: std::collections::HashSet<String>,
        ended: bool,
    ) -> Result<JobOutcome, Error> {
        let collected = collect(
            self.api,
            job_id,
            ended,
            printed,
            self.reporter,
            self.interrupts,
            self.config,
            self.mode,
        )
        .await?;
        Ok(match collected {
            Collected::Done { info, summary } => {
                let exit_code = if ended {
                    summary.exit_code()
                } else {
                    EXIT_NOT_ENDED
                };
                self.reporter.report(WatchEvent::Finished {
                    job: &info,
                    summary: &summary,
                    exit_code,
                })?;
                JobOutcome {
                    job: job_id.to_owned(),
                    end: End::Reported,
                    ended,
                    summary,
                    exit_code,
                    interrupted: false,
                }
            }
            Collected::Interrupted => JobOutcome {
                job: job_id.to_owned(),
                end: End::ListingInterrupted,
                ended,
                summary: Summary::default(),
                exit_code: EXIT_DETACHED,
                interrupted: false,
            },
        })
    }
}

/// The wait before the next poll, `watching` after the watch began and
/// `quiet` after the last event. It grows with the quiet time (1/40 of it),
/// so the delay before kick sees a change stays around 1% of how long the
/// job had been quiet: a few ms for short runs, one request a second at most
/// for long ones. While events keep coming, the floor grows with the time
/// spent watching, so a long busy job is polled a few times a second, not
/// continuously (each poll returns every event since the last one anyway).
pub fn poll_interval(cfg: &WatchConfig, watching: Duration, quiet: Duration) -> Duration {
    let floor = (watching / BUSY_FRACTION)
        .min(cfg.poll_busy)
        .max(cfg.poll_min)
        .min(cfg.poll_max);
    (quiet / QUIET_FRACTION).max(floor).min(cfg.poll_max)
}

#[cfg(test)]
mod tests;
