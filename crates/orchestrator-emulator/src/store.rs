//! Job history on disk: one JSON file per job under `<state_dir>/jobs/`,
//! written when a job starts and when it ends (atomically, by rename). A job
//! found unfinished at start-up was running when the service went away: it is
//! recorded as failed, saying so.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::job::JobRecord;

/// Why an unfinished job in the state directory is failed on start-up.
pub const INTERRUPTED: &str =
    "the orchestrator emulator stopped (shutdown or crash) while this job was running";

#[derive(Debug, Clone)]
pub struct Store {
    dir: Option<PathBuf>,
}

impl Store {
    pub fn open(state_dir: Option<&Path>) -> Result<Self, Error> {
        let dir = state_dir.map(|d| d.join("jobs"));
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).map_err(|e| Error::State {
                path: d.clone(),
                msg: e.to_string(),
            })?;
        }
        Ok(Self { dir })
    }

    /// Every stored job, interrupted ones turned into failed ones.
    pub fn load(&self) -> Result<Vec<JobRecord>, Error> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let rd = std::fs::read_dir(dir).map_err(|e| Error::State {
            path: dir.clone(),
            msg: e.to_string(),
        })?;
        let mut jobs = Vec::new();
        for entry in rd.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::State {
                path: path.clone(),
                msg: e.to_string(),
            })?;
            let mut job: JobRecord = match serde_json::from_slice(&bytes) {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable job file");
                    continue;
                }
            };
            if job.fail_interrupted(INTERRUPTED) {
                self.save_bytes(job.name, &serde_json::to_vec(&job).unwrap_or_default())?;
            }
            jobs.push(job);
        }
        jobs.sort_by_key(|j| j.name);
        Ok(jobs)
    }

    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// Writes a serialised job.
    pub fn save_bytes(&self, name: u64, bytes: &[u8]) -> Result<(), Error> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let path = dir.join(format!("{name}.json"));
        let tmp = dir.join(format!(".{name}.json.tmp"));
        let err = |e: std::io::Error| Error::State {
            path: path.clone(),
            msg: e.to_string(),
        };
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)
    }
}
