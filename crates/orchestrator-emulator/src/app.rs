//! Shared service state: config, jobs, the concurrency limit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::config::Config;
use crate::error::Error;
use crate::exec::StopLevel;
use crate::job::JobHandle;
use crate::store::Store;

#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub base: String,
    pub jobs: RwLock<BTreeMap<u64, Arc<JobHandle>>>,
    next_job: AtomicU64,
    pub slots: Arc<Semaphore>,
    pub store: Store,
    pub http: reqwest::Client,
    pub kill_grace: Duration,
    /// When the service started (inventory connection times).
    pub started: f64,
    running: AtomicUsize,
    idle: Notify,
    pub spawner: crate::exec::Spawner,
    /// Certname → position in `config.inventory.nodes`.
    node_index: std::collections::HashMap<String, usize>,
}

impl App {
    pub fn new(config: Config, base: String) -> Result<Self, Error> {
        let store = Store::open(config.state_dir.as_deref())?;
        let mut jobs = BTreeMap::new();
        for rec in store.load()? {
            jobs.insert(rec.name, Arc::new(JobHandle::new(rec)));
        }
        let next = jobs.keys().next_back().copied().unwrap_or(0) + 1;
        let node_index = config
            .inventory
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.certname.clone(), i))
            .collect();
        Ok(Self {
            slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
            kill_grace: config.kill_grace,
            started: crate::time::now(),
            config,
            base,
            jobs: RwLock::new(jobs),
            next_job: AtomicU64::new(next),
            store,
            http: reqwest::Client::new(),
            running: AtomicUsize::new(0),
            idle: Notify::new(),
            spawner: crate::exec::Spawner::default(),
            node_index,
        })
    }

    /// A simulated node by certname.
    pub fn node(&self, certname: &str) -> Option<&crate::config::NodeSpec> {
        self.node_index
            .get(certname)
            .and_then(|&i| self.config.inventory.nodes.get(i))
    }

    pub fn next_job_name(&self) -> u64 {
        self.next_job.fetch_add(1, Ordering::SeqCst)
    }

    pub fn job(&self, name: u64) -> Option<Arc<JobHandle>> {
        self.jobs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .cloned()
    }

    pub fn all_jobs(&self) -> Vec<Arc<JobHandle>> {
        self.jobs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn insert(&self, job: Arc<JobHandle>) {
        self.jobs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.name, job);
    }

    pub fn job_started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    pub fn job_ended(&self) {
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Writes a job to the state directory (no-op without one).
    pub async fn persist(&self, job: &JobHandle) {
        if !self.store.enabled() {
            return;
        }
        let bytes = match serde_json::to_vec(&*job.lock()) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(job = job.name, error = %e, "cannot serialise job");
                return;
            }
        };
        let store = self.store.clone();
        let name = job.name;
        let r = tokio::task::spawn_blocking(move || store.save_bytes(name, &bytes)).await;
        if let Ok(Err(e)) = r {
            tracing::error!(job = name, error = %e, "cannot save job history");
        }
    }

    /// Kills every running job (they end failed, saying why) and waits for
    /// them to be saved.
    pub async fn shutdown_jobs(&self, wait: Duration) {
        for j in self.all_jobs() {
            j.stop.send_if_modified(|l| {
                let was = *l;
                *l = StopLevel::Shutdown;
                was != StopLevel::Shutdown
            });
        }
        let deadline = tokio::time::Instant::now() + wait;
        while self.running.load(Ordering::SeqCst) > 0 {
            let notified = self.idle.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!("jobs still running at shutdown; they will be failed on restart");
                break;
            }
        }
    }
}
