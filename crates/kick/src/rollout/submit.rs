//! Sending a rollout's jobs at most once: each wave's (and each retry's) marker is saved in
//! the state file before its request is sent, and a marker already recorded is looked up on
//! the server first. [`Saver`] writes the state file in order, some saves off the critical
//! path.

use std::collections::HashSet;

use orchestrator_client::{Client, JobsQuery, MARKER_KEY};
use orchestrator_types::{Scope, TaskRequest};
use serde_json::Value;

use super::state::{RolloutState, Store, WaveState};
use crate::error::Error;

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

/// Submits wave `i` at most once: its marker goes into the state file first, and a wave whose
/// marker is recorded (kick may have been killed after sending it) is looked up on the server
/// before anything is sent. True when this call sent it.
pub(super) async fn submit_wave(
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
pub(super) async fn submit_retry(
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

/// Writes the state file in order, some saves off the critical path. What keeps a wave from
/// being sent twice is its marker, saved before it is sent; the save that records the job a
/// submission got only spares `rollout resume` a lookup, so it is written while the wave is
/// followed instead of before, with the next wave's marker. Each save waits for the one
/// before it.
pub(super) struct Saver<'a> {
    store: &'a Store,
    pending: Option<tokio::task::JoinHandle<Result<(), Error>>>,
    /// Waves whose marker this run saved ahead and has not sent: a resumed run cannot tell
    /// them from sent ones and looks them up.
    unsent: HashSet<usize>,
}

impl<'a> Saver<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Saver {
            store,
            pending: None,
            unsent: HashSet::new(),
        }
    }

    /// Waits for the save under way, if any, and returns its error.
    pub(super) async fn settle(&mut self) -> Result<(), Error> {
        match self.pending.take() {
            Some(handle) => handle.await.map_err(|e| Error::State {
                path: self.store.dir().to_owned(),
                message: format!("the state file was not written: {e}"),
            })?,
            None => Ok(()),
        }
    }

    pub(super) async fn save(&mut self, state: &RolloutState) -> Result<(), Error> {
        self.settle().await?;
        self.store.save(state)
    }

    /// Starts saving `state`; the next save (or [`Saver::settle`]) waits for it.
    pub(super) async fn save_later(&mut self, state: &RolloutState) -> Result<(), Error> {
        self.settle().await?;
        let store = self.store.clone();
        let state = state.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || store.save(&state)));
        Ok(())
    }
}
