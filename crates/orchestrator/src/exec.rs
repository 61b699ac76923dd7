//! Running one task process the way pxp-agent does: its own process group,
//! parameters on stdin and/or as `PT_*` variables, stdout and stderr
//! captured up to a cap. A timeout or a force stop ends everything the task
//! started, in whatever session (puppet's exec resources leave the group):
//! the task's tree is read from `/proc` before the first signal
//! ([`process_tree::end`]).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use orchestrator_types::psick::StoppedProcess;
use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// What a job asks of its running nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopLevel {
    /// Keep going.
    None,
    /// Start no new nodes; running ones finish.
    Graceful,
    /// Kill running nodes.
    Force,
    /// The service is shutting down: kill running nodes, the job fails.
    Shutdown,
}

/// How the process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Exit code.
    Exited(i32),
    /// Killed by a signal we did not send.
    Signaled(i32),
    /// The per-node timeout passed; the group was killed.
    TimedOut(Duration),
    /// A force stop or shutdown killed it.
    Killed(StopLevel),
    /// It could not be started.
    SpawnFailed(String),
    /// The node could not be reached or prepared (SSH nodes): Bolt's error.
    Failed(TransportError),
}

/// A node that could not be reached or prepared, in Bolt's terms: `kind`
/// (`puppetlabs.tasks/connect-error`, `escalate-error`, `task_file_error`)
/// and `issue_code` (CONNECT_ERROR, AUTH_ERROR, HOST_KEY_ERROR, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct TransportError {
    pub kind: String,
    pub issue_code: String,
    pub msg: String,
    pub details: serde_json::Value,
}

/// A finished process.
#[derive(Debug)]
pub struct Outcome {
    pub ending: Ending,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Output went past the cap (the excess was discarded).
    pub overflow: bool,
    /// What a timeout or a force stop ended: `_error.details` entries for
    /// the node's result (`stopped` and `survivors` on a local node,
    /// `remote` on an SSH node).
    pub stop: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What to run.
#[derive(Debug)]
pub struct Spec<'a> {
    pub program: &'a Path,
    pub stdin: Option<Vec<u8>>,
    /// The whole environment (nothing of the service's is passed on).
    pub env: Vec<(String, String)>,
    pub workdir: &'a Path,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub max_output: usize,
    /// Niceness given to the task process right after it starts.
    pub nice: Option<i32>,
    /// Starts the process.
    pub spawner: &'a Spawner,
}

fn signal_group(pid: Option<u32>, sig: Signal) {
    if let Some(pid) = pid.and_then(|p| Pid::from_raw(p as i32)) {
        // ESRCH (group already gone) is fine.
        let _ = kill_process_group(pid, sig);
    }
}

/// Ends the task `pid` and every process below it, TERM first when `grace`
/// is not zero; returns once nothing of it is left (or the kernel's
/// after-kill wait ran out).
async fn end_tree(pid: Option<u32>, grace: Duration) -> process_tree::Report {
    let Some(pid) = pid else {
        return process_tree::Report {
            ended: Vec::new(),
            killed: false,
            waited: 0.0,
            survivors: Vec::new(),
        };
    };
    let opts = process_tree::Options {
        include_roots: true,
        grace,
        ..process_tree::Options::default()
    };
    tokio::task::spawn_blocking(move || process_tree::end(&[pid], opts, || false))
        .await
        .unwrap_or_else(|_| process_tree::Report {
            ended: Vec::new(),
            killed: false,
            waited: 0.0,
            survivors: vec![pid],
        })
}

/// Forks and descriptors open for writing on files that will be executed
/// exclude each other. A child holds its parent's descriptors from its fork
/// to its exec (close-on-exec only acts at the exec), and while any process
/// holds a file open for writing, executing that file fails with ETXTBSY
/// ("Text file busy"): a node's task copied while another node's task was
/// being forked could not run. Writers share the lock; a fork takes it
/// alone and gives it back once the child has exec'd.
static FORKS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Runs `write`, which opens a file that will be executed for writing and
/// closes it before returning, with no fork in progress meanwhile.
pub fn writing_executable<T>(write: impl FnOnce() -> T) -> T {
    let _no_forks = FORKS.read().unwrap_or_else(|p| p.into_inner());
    write()
}

/// A local stop's report as `_error.details` entries: every process of the
/// run it found (puppet's execs in their own sessions too) and any that
/// outlived KILL.
fn stop_details(r: &process_tree::Report) -> serde_json::Map<String, serde_json::Value> {
    let stopped: Vec<StoppedProcess> = r
        .ended
        .iter()
        .map(|e| StoppedProcess {
            pid: e.pid,
            command: e.command.clone(),
            signal: e.signal.to_owned(),
        })
        .collect();
    let mut m = serde_json::Map::new();
    m.insert("stopped".into(), serde_json::json!(stopped));
    if !r.survivors.is_empty() {
        m.insert("survivors".into(), serde_json::json!(r.survivors));
    }
    m
}

type SpawnReply = tokio::sync::oneshot::Sender<std::io::Result<tokio::process::Child>>;
type SpawnRequest = (tokio::process::Command, SpawnReply);

/// One thread per service starts every task process: fork/exec is blocking
/// and costly, and doing it from many threads at once starves the workers
/// that record other nodes' completions (their events are then late). The
/// thread ends when the service is dropped.
#[derive(Debug, Default)]
pub struct Spawner {
    tx: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<SpawnRequest>>>,
}

impl Spawner {
    fn sender(&self) -> std::sync::mpsc::Sender<SpawnRequest> {
        self.tx
            .get_or_init(|| {
                let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
                let handle = tokio::runtime::Handle::current();
                // Descriptors the service inherited without close-on-exec
                // would leak into every task; pxp-agent's tasks get only
                // 0, 1 and 2. Everything opened later is close-on-exec.
                close_fds::set_fds_cloexec_threadsafe(3, &[]);
                let started = std::thread::Builder::new()
                    .name("task-spawner".into())
                    .spawn(move || {
                        // Child processes register with the runtime's reactor.
                        let _guard = handle.enter();
                        while let Ok((mut cmd, reply)) = rx.recv() {
                            let _ = reply.send(spawn_retrying_busy(&mut cmd));
                        }
                    });
                if let Err(e) = started {
                    tracing::error!(error = %e, "cannot start the task-spawner thread");
                }
                std::sync::Mutex::new(tx)
            })
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn spawn(&self, cmd: tokio::process::Command) -> std::io::Result<tokio::process::Child> {
        let gone = || std::io::Error::other("the task-spawner thread is gone");
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.sender().send((cmd, reply)).map_err(|_| gone())?;
        rx.await.unwrap_or_else(|_| Err(gone()))
    }
}

async fn read_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut overflow = false;
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(buf.len());
                if n > room {
                    overflow = true;
                }
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    (buf, overflow)
}

/// Sleeps until `deadline`; without one, for ever: a run's timeout, which may be none.
pub(crate) async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Runs the process to its end.
pub async fn run(spec: Spec<'_>, mut stop: watch::Receiver<StopLevel>) -> Outcome {
    let mut cmd = tokio::process::Command::new(spec.program);
    cmd.stdin(if spec.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true)
    .env_clear()
    .envs(spec.env.iter().map(|(k, v)| (k, v)))
    .current_dir(spec.workdir);
    let spawned = spec.spawner.spawn(cmd).await;
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                ending: Ending::SpawnFailed(format!("{}: {e}", spec.program.display())),
                stdout: Vec::new(),
                stderr: Vec::new(),
                overflow: false,
                stop: None,
            };
        }
    };
    let pid = child.id();
    if let Some(nice) = spec.nice
        && let Some(p) = pid.and_then(|p| Pid::from_raw(p as i32))
    {
        // Simulated nodes share this machine's CPUs with the service; a
        // lower priority keeps their load from delaying the API and events.
        let _ = rustix::process::setpriority_process(Some(p), nice);
    }
    let writer = match (child.stdin.take(), spec.stdin) {
        (Some(mut w), Some(input)) => Some(tokio::spawn(async move {
            // A task that does not read stdin closes it: EPIPE is fine.
            let _ = w.write_all(&input).await;
            let _ = w.shutdown().await;
        })),
        _ => None,
    };
    let cap = spec.max_output;
    let out = child
        .stdout
        .take()
        .map(|r| tokio::spawn(read_capped(r, cap)));
    let err = child
        .stderr
        .take()
        .map(|r| tokio::spawn(read_capped(r, cap)));

    // A deadline past what the clock can hold is no deadline.
    let deadline = spec
        .timeout
        .and_then(|t| tokio::time::Instant::now().checked_add(t));
    let sleep = until(deadline);
    tokio::pin!(sleep);
    let mut ending = None;
    let mut status = None;
    let mut report = None;
    if *stop.borrow() >= StopLevel::Force {
        report = Some(end_tree(pid, Duration::ZERO).await);
        ending = Some(Ending::Killed(*stop.borrow()));
    }
    while status.is_none() && ending.is_none() {
        tokio::select! {
            st = child.wait() => status = Some(st),
            () = &mut sleep => {
                // TERM to the whole tree first so a task like psick can
                // still report; KILL to whatever is left after the grace.
                report = Some(end_tree(pid, spec.kill_grace).await);
                if let Ok(st) = tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
                    status = Some(st);
                }
                ending = Some(Ending::TimedOut(spec.timeout.unwrap_or_default()));
            }
            changed = stop.changed() => {
                if changed.is_err() {
                    // The job is gone; nothing will ask us to stop any more.
                    stop = watch::channel(StopLevel::None).1;
                    continue;
                }
                let level = *stop.borrow();
                if level >= StopLevel::Force {
                    report = Some(end_tree(pid, Duration::ZERO).await);
                    ending = Some(Ending::Killed(level));
                }
            }
        }
    }
    let status = match status {
        Some(s) => s,
        None => child.wait().await,
    };
    // Leftover grandchildren may hold the pipes open: give them a moment,
    // then end the group so reading finishes.
    let collect = async {
        let o = match out {
            Some(h) => h.await.unwrap_or_default(),
            None => Default::default(),
        };
        let e = match err {
            Some(h) => h.await.unwrap_or_default(),
            None => Default::default(),
        };
        (o, e)
    };
    tokio::pin!(collect);
    let ((stdout, o_over), (stderr, e_over)) =
        match tokio::time::timeout(Duration::from_secs(2), &mut collect).await {
            Ok(r) => r,
            Err(_) => {
                signal_group(pid, Signal::KILL);
                collect.await
            }
        };
    if let Some(w) = writer {
        w.abort();
    }
    let ending = ending.unwrap_or_else(|| match status {
        Ok(st) => match (
            st.code(),
            std::os::unix::process::ExitStatusExt::signal(&st),
        ) {
            (Some(c), _) => Ending::Exited(c),
            (None, Some(s)) => Ending::Signaled(s),
            (None, None) => Ending::Exited(-1),
        },
        Err(e) => Ending::SpawnFailed(format!("waiting for the task failed: {e}")),
    });
    Outcome {
        ending,
        stdout,
        stderr,
        overflow: o_over || e_over,
        stop: report.map(|r| stop_details(&r)),
    }
}

/// Spawns `cmd`, trying again for a short, bounded time while its executable
/// is "busy" (ETXTBSY): a child forked at the moment another thread had the
/// freshly cached executable open for writing holds that descriptor until it
/// execs, and an exec of the file in that window fails although nothing is
/// wrong with it.
fn spawn_retrying_busy(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<tokio::process::Child> {
    let busy = rustix::io::Errno::TXTBSY.raw_os_error();
    let mut tries = 0;
    loop {
        // `spawn` returns once the child has exec'd (or failed to).
        let spawned = {
            let _alone = FORKS.write().unwrap_or_else(|p| p.into_inner());
            cmd.spawn()
        };
        match spawned {
            Err(e) if e.raw_os_error() == Some(busy) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
