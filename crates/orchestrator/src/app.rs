//! Shared service state: config, jobs, the concurrency limit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::config::Config;
use crate::error::{Error, Failure};
use crate::exec::StopLevel;
use crate::job::{JobHandle, JobHead};
use crate::store::{Store, Stored};

#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub base: String,
    pub jobs: RwLock<BTreeMap<u64, Arc<JobHandle>>>,
    next_job: AtomicU64,
    next_schedule: AtomicU64,
    next_task_target: AtomicU64,
    pub slots: Arc<Semaphore>,
    pub store: Store,
    /// The Node Inventory API's connection entries.
    pub inventory: crate::inventory::Inventory,
    /// Plan job changes one at a time (each is read, changed, written).
    pub plans_lock: tokio::sync::Mutex<()>,
    /// pxp-agent's task cache: `<sha256>/<filename>`.
    pub cache_dir: std::path::PathBuf,
    /// Install directories of multi-file task runs.
    pub spool_dir: std::path::PathBuf,
    pub http: reqwest::Client,
    pub kill_grace: Duration,
    /// When the service started (inventory connection times).
    pub started: f64,
    running: AtomicUsize,
    idle: Notify,
    pub spawner: crate::exec::Spawner,
    /// Certname → position in `config.inventory.nodes`.
    node_index: std::collections::HashMap<String, usize>,
    /// What SSH runs share (known_hosts, the handshake limit).
    pub ssh: crate::transport::ssh::Ssh,
}

/// A job looked up by name.
#[derive(Debug)]
pub enum Found {
    /// Running (or just ended): held in memory.
    Active(Arc<JobHandle>),
    /// Finished: read from the store.
    Stored(Box<JobHead>),
}

impl App {
    pub fn new(config: Config, base: String) -> Result<Self, Error> {
        let (store, opened) = Store::open(config.state_dir.as_deref())?;
        let inventory = crate::inventory::Inventory::open(&store)?;
        if let Some(file) = &config.inventory_file {
            crate::inventory::load_bolt_file(&inventory, file)?;
        }
        // Kick's own file first, then the system's, then any given.
        let mut known_hosts = vec![
            store.dir().join("known_hosts"),
            std::path::PathBuf::from("/etc/ssh/ssh_known_hosts"),
        ];
        known_hosts.extend(config.known_hosts.iter().cloned());
        let ssh = crate::transport::ssh::Ssh::new(known_hosts, config.ssh_connect_limit);
        let node_index = config
            .inventory
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.certname.clone(), i))
            .collect();
        Ok(Self {
            // Semaphore::new panics past MAX_PERMITS; the binary allows 1..=1,000,000.
            slots: Arc::new(Semaphore::new(config.concurrency.clamp(1, 1_000_000))),
            kill_grace: config.kill_grace,
            started: crate::time::now(),
            config,
            base,
            jobs: RwLock::new(BTreeMap::new()),
            next_job: AtomicU64::new(opened.next_job),
            next_schedule: AtomicU64::new(opened.next_schedule),
            next_task_target: AtomicU64::new(opened.next_task_target),
            cache_dir: store.dir().join("task-cache"),
            spool_dir: store.dir().join("spool"),
            store,
            inventory,
            plans_lock: tokio::sync::Mutex::new(()),
            http: reqwest::Client::new(),
            running: AtomicUsize::new(0),
            idle: Notify::new(),
            spawner: crate::exec::Spawner::default(),
            ssh,
            node_index,
        })
    }

    /// A simulated node by certname.
    /// How `certname` is reached: an SSH connection (an inventory entry or
    /// one given in the config), else a local node; `None` when unknown.
    pub fn target(&self, certname: &str) -> Option<crate::transport::Target> {
        if let Some(t) = self
            .config
            .ssh_targets
            .iter()
            .find(|t| t.certname == certname)
        {
            return Some(crate::transport::Target::Ssh(t.clone()));
        }
        // A connection entry wins over a simulated node of the same name.
        match self.ssh_target(certname) {
            Ok(Some(t)) => return Some(crate::transport::Target::Ssh(t)),
            Ok(None) => {}
            Err(e) => {
                // The node fails with the reason, not as an unknown node.
                tracing::error!("{e}");
                return Some(crate::transport::Target::Unusable(e.to_string()));
            }
        }
        self.node(certname)
            .cloned()
            .map(crate::transport::Target::Local)
    }

    pub fn node(&self, certname: &str) -> Option<&crate::config::NodeSpec> {
        self.node_index
            .get(certname)
            .and_then(|&i| self.config.inventory.nodes.get(i))
    }

    /// The next job or plan job name (one sequence: a name is never both).
    pub fn next_job_name(&self) -> u64 {
        self.next_job.fetch_add(1, Ordering::SeqCst)
    }

    pub fn next_schedule(&self) -> u64 {
        self.next_schedule.fetch_add(1, Ordering::SeqCst)
    }

    pub fn next_task_target(&self) -> u64 {
        self.next_task_target.fetch_add(1, Ordering::SeqCst)
    }

    /// A job in memory (running, or ended but not yet handed to the store).
    pub fn active(&self, name: u64) -> Option<Arc<JobHandle>> {
        self.jobs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .cloned()
    }

    /// A job wherever it is; `unknown-job` (saying why for a damaged
    /// record) when there is none. `raw` is the id as the request wrote it.
    pub async fn find(&self, name: u64, raw: &str) -> Result<Found, Failure> {
        if let Some(j) = self.active(name) {
            return Ok(Found::Active(j));
        }
        match self.store.head(name).await? {
            // A job leaves memory only once committed, so a miss in
            // memory then in the store means there is no such job.
            Some(Stored::Head(h)) => Ok(Found::Stored(h)),
            None => Err(Failure::unknown_job(raw)),
            Some(Stored::Damaged(why)) => {
                Err(Failure::unknown_job(raw).message(format!("Job {raw} cannot be shown: {why}")))
            }
        }
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

    /// Drops an ended job from memory (the store has it).
    pub fn evict(&self, name: u64) {
        self.jobs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name);
    }
    pub fn job_started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    pub fn job_ended(&self) {
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
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
