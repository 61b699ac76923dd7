//! A rollout's state file: `$XDG_STATE_HOME/kick/rollouts/<id>.json` (else
//! `~/.local/state/kick/rollouts/`), mode 0600 in a 0700 directory. It holds the plan (waves,
//! flags, the request each wave sends) and, per wave, the marker it is submitted with and the
//! job it became, so `kick rollout resume` never submits a wave twice: a wave with a marker but
//! no job may have reached the server and is looked up there first.
//!
//! Writes go to a temporary file of their own (two saves at once never share one) that is
//! renamed over the old one, then the directory is synced: a kill mid-write leaves the previous
//! state, and a crash after a save keeps it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::Spec;
use crate::error::Error;
use crate::summary::Counts;

/// The state file format's version.
pub const STATE_VERSION: u32 = 1;

/// What a wave has become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveState {
    /// Not submitted (its marker may be set: about to be).
    Pending,
    /// The orchestrator accepted it as `job`.
    Submitted,
    /// Its job ended.
    Done,
    /// Never started: the budget was reached, the canary failed, or the rollout was stopped.
    NotStarted,
}

/// One wave in the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveRecord {
    /// The nodes.
    pub nodes: Vec<String>,
    /// The canary wave.
    #[serde(default)]
    pub canary: bool,
    /// Where it stands.
    pub state: WaveState,
    /// The marker it is (or will be) submitted with; set before the request is sent.
    #[serde(default)]
    pub marker: Option<String>,
    /// The job id, once known.
    #[serde(default)]
    pub job: Option<String>,
    /// Nodes of this wave that failed (for the budget over the whole rollout).
    #[serde(default)]
    pub failures: usize,
    /// The follow-up jobs of `--retry`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<String>,
    /// The marker the next retry is submitted with, set before its request is sent and
    /// cleared once its job is in `retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_marker: Option<String>,
    /// The wave's counts per outcome, once its job ended (for the summary of a resumed
    /// rollout).
    #[serde(default)]
    pub counts: Option<Counts>,
}

impl WaveRecord {
    /// A wave as planned: pending, with no marker, job or counts yet.
    pub fn planned(nodes: Vec<String>, canary: bool) -> Self {
        WaveRecord {
            nodes,
            canary,
            state: WaveState::Pending,
            marker: None,
            job: None,
            failures: 0,
            retries: Vec::new(),
            retry_marker: None,
            counts: None,
        }
    }
}

/// How the rollout as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    /// Waves remain to run.
    Running,
    /// Every wave ran.
    Finished,
    /// The failure budget was reached (or the canary failed); no further wave starts.
    BudgetReached,
    /// Stopped by the user (Ctrl-C); `resume` continues it.
    Stopped,
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    /// Format version.
    pub version: u32,
    /// The rollout id.
    pub id: String,
    /// When it was planned (RFC 3339).
    pub created: String,
    /// `kick agent` or `kick task run`.
    pub command: String,
    /// The task every wave runs.
    pub task: String,
    /// The orchestrator it runs on.
    pub service_url: String,
    /// How the target was given (`--nodes …`, `--query …`), for `rollout show`.
    pub target: String,
    /// The rollout flags.
    pub spec: Spec,
    /// Failures tolerated over the whole rollout (resolved from `--max-failures`).
    pub max_failures: Option<usize>,
    /// The task request each wave sends, with `scope` and the wave's userdata left out.
    pub request: Value,
    /// `--retry`: follow-up jobs for transient failures, per wave.
    #[serde(default)]
    pub retry: u32,
    /// `--retry-delay`, seconds.
    #[serde(default)]
    pub retry_delay: f64,
    /// Overall status.
    pub status: RolloutStatus,
    /// The waves, in order.
    pub waves: Vec<WaveRecord>,
}

impl RolloutState {
    /// Failures so far, over all waves.
    pub fn failures(&self) -> usize {
        self.waves.iter().map(|w| w.failures).sum()
    }

    /// The index of the first wave not yet done.
    pub fn next_wave(&self) -> Option<usize> {
        self.waves
            .iter()
            .position(|w| matches!(w.state, WaveState::Pending | WaveState::Submitted))
    }
}

/// A new rollout id: the UTC time to the second and four random hex digits
/// (`20261201-091500-3fa2`), sortable and short enough to type.
pub fn new_id(now: std::time::SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    // 2026-12-01T09:15:00Z -> 20261201-091500
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    format!(
        "{}-{}-{:04x}",
        &digits[..8],
        &digits[8..14],
        fastrand::u16(..)
    )
}

/// Checks an id from the command line before it becomes part of a path.
pub fn check_id(id: &str) -> Result<&str, Error> {
    let id = id.trim();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::Usage(format!(
            "{id:?} is not a rollout id; `kick rollout list` shows them (e.g. 20261201-091500-3fa2)"
        )));
    }
    Ok(id)
}

/// Where the state files live.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The context's state dir, else [`Store::from_env`].
    pub fn for_context(ctx: &crate::context::Context) -> Result<Store, Error> {
        Store::in_dir(ctx.state_dir.as_deref())
    }

    /// `dir`, else [`Store::from_env`].
    pub fn in_dir(dir: Option<&Path>) -> Result<Store, Error> {
        match dir {
            Some(d) => Ok(Store::at(d)),
            None => Store::from_env(),
        }
    }

    /// `$XDG_STATE_HOME/kick/rollouts`, else `$HOME/.local/state/kick/rollouts`.
    pub fn from_env() -> Result<Store, Error> {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty() && Path::new(v).is_absolute())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| Path::new(&h).join(".local/state"))
            })
            .ok_or_else(|| {
                Error::Usage(
                    "neither XDG_STATE_HOME nor HOME is set, so kick has nowhere to keep the rollout's state; set one of them".into(),
                )
            })?;
        Ok(Store::at(base.join("kick/rollouts")))
    }

    /// A store in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> Result<PathBuf, Error> {
        Ok(self.dir.join(format!("{}.json", check_id(id)?)))
    }

    /// Writes `state` (0600, atomically).
    pub fn save(&self, state: &RolloutState) -> Result<(), Error> {
        let io = |e: std::io::Error| Error::State {
            path: self.dir.clone(),
            message: e.to_string(),
        };
        create_private_dir(&self.dir).map_err(io)?;
        let path = self.path(&state.id)?;
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| Error::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let write = || -> std::io::Result<()> {
            // Created 0600, with a name no other save uses.
            let mut f = tempfile::NamedTempFile::new_in(&self.dir)?;
            f.write_all(&bytes)?;
            f.write_all(b"\n")?;
            f.as_file().sync_all()?;
            f.persist(&path).map_err(|e| e.error)?;
            // The rename is durable once the directory is.
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| Error::State {
            path: path.clone(),
            message: e.to_string(),
        })
    }

    /// The jobs of rollout `id`'s waves that were submitted, in wave order
    /// (what `--nodes-from rollout:ID` reads).
    pub fn jobs(&self, id: &str) -> Result<Vec<String>, Error> {
        let state = self.load(id)?;
        Ok(state.waves.iter().filter_map(|w| w.job.clone()).collect())
    }

    /// Reads one rollout's state.
    pub fn load(&self, id: &str) -> Result<RolloutState, Error> {
        let path = self.path(id)?;
        let bytes = std::fs::read(&path).map_err(|e| Error::State {
            path: path.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "no rollout {id} on this host; `kick rollout list` shows the ones kept in {}",
                    self.dir.display()
                )
            } else {
                e.to_string()
            },
        })?;
        let state: RolloutState = serde_json::from_slice(&bytes).map_err(|e| Error::State {
            path: path.clone(),
            message: format!("not a kick rollout state file ({e}); it may be damaged"),
        })?;
        if state.version != STATE_VERSION {
            return Err(Error::State {
                path,
                message: format!(
                    "written by a kick with state format {}, this kick reads {STATE_VERSION}",
                    state.version
                ),
            });
        }
        Ok(state)
    }

    /// Every rollout kept here, newest first; damaged files are skipped.
    pub fn list(&self) -> Result<Vec<RolloutState>, Error> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::State {
                    path: self.dir.clone(),
                    message: e.to_string(),
                });
            }
        };
        let mut out: Vec<RolloutState> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?;
                self.load(id).ok()
            })
            .collect();
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // An existing directory others can enter would expose the plans' node lists.
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::plan::Amount;

    fn sample(id: &str) -> RolloutState {
        RolloutState {
            version: STATE_VERSION,
            id: id.into(),
            created: "2026-12-01T09:15:00Z".into(),
            command: "agent".into(),
            task: "psick::puppet_agent".into(),
            service_url: "https://pe:8143".into(),
            target: "--nodes a,b,c".into(),
            spec: Spec {
                batch: Some(Amount::Count(2)),
                ..Spec::default()
            },
            max_failures: Some(0),
            retry: 0,
            retry_delay: 0.0,
            request: serde_json::json!({"task": "psick::puppet_agent", "params": {}}),
            status: RolloutStatus::Running,
            waves: vec![
                WaveRecord {
                    nodes: vec!["a".into(), "b".into()],
                    canary: false,
                    state: WaveState::Done,
                    marker: Some("m1".into()),
                    job: Some("7".into()),
                    failures: 1,
                    retries: Vec::new(),
                    retry_marker: None,
                    counts: None,
                },
                WaveRecord::planned(vec!["c".into()], false),
            ],
        }
    }

    #[test]
    fn state_round_trips_with_private_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("kick/rollouts"));
        let s = sample("20261201-091500-00aa");
        store.save(&s).unwrap();
        assert_eq!(store.load(&s.id).unwrap(), s);
        let file = store.dir().join(format!("{}.json", s.id));
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(s.failures(), 1);
        assert_eq!(s.next_wave(), Some(1));
        store.save(&sample("20261201-091600-00bb")).unwrap();
        let ids: Vec<String> = store.list().unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["20261201-091600-00bb", "20261201-091500-00aa"]);
    }

    #[test]
    fn concurrent_saves_each_land_whole() {
        // A rollout saves in the background while the next wave is planned:
        // two saves of one rollout at once must each write a whole file.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("rollouts"));
        let id = "20261201-091500-00aa";
        let mut long = sample(id);
        long.waves[0].nodes = (0..2000).map(|i| format!("node-{i:04}.example")).collect();
        let short = sample(id);
        std::thread::scope(|s| {
            for state in [&long, &short] {
                let store = &store;
                s.spawn(move || {
                    for _ in 0..50 {
                        store.save(state).unwrap();
                    }
                });
            }
        });
        let kept = store.load(id).unwrap();
        assert!(kept == long || kept == short);
        let left: Vec<_> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, [format!("{id}.json")], "no temporary file is left");
    }

    #[test]
    fn ids_are_checked_before_they_become_paths() {
        for bad in ["", "../x", "a/b", "a b", "x.json"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        let id = new_id(std::time::SystemTime::UNIX_EPOCH);
        assert!(id.starts_with("19700101-000000-"), "{id}");
        assert!(check_id(&id).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let e = Store::at(dir.path()).load("nope").unwrap_err().to_string();
        assert!(e.contains("kick rollout list"), "{e}");
    }

    #[test]
    fn a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        std::fs::write(dir.path().join("bad.json"), "{").unwrap();
        let e = store.load("bad").unwrap_err().to_string();
        assert!(e.contains("damaged"), "{e}");
        assert!(store.list().unwrap().is_empty());
    }
}
