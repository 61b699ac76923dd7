//! Running a task on a node over SSH, as PE's bolt-server does for agentless
//! nodes, and where it falls short, better (reference agentless-ssh.md §5):
//!
//! - one session per node per job, every step a channel on it, keepalives on;
//! - the task's files in a cache on the node keyed by sha256, checked before
//!   each use and uploaded only when missing (a second job uploads nothing);
//! - cwd `/` as under pxp-agent; a multi-file task's install dir (0700)
//!   removed at the end;
//! - `run-as` through sudo with the prompt answered, its failures named
//!   (NO_PASSWORD, SUDO_DENIED, BAD_PASSWORD), never a hang;
//! - a timeout or a force stop ends the task's whole tree on the node
//!   (TERM, grace, KILL, then a check), where Bolt abandons it;
//! - a lost connection fails the node with that reason, never success unseen.

mod channel;
mod connect;
pub mod recover;
mod scripts;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use self::channel::{Escalation, Finished, Input};
use self::scripts::Launch;
use crate::cache::TaskFile;
use crate::exec::{Ending, Outcome, StopLevel, TransportError};
use crate::transport::{SshTarget, TaskRun, Transport, input_of, pt_env, stdin_of};

/// What every SSH run shares.
#[derive(Debug)]
pub struct Ssh {
    /// OpenSSH known_hosts files host keys are checked against.
    pub known_hosts: Arc<Vec<PathBuf>>,
    /// Handshakes at once (set-up is the costly part; PE limits its
    /// bolt-server requests the same way).
    pub connecting: Semaphore,
}

fn failed(kind: &str, issue_code: &str, msg: String, details: Value) -> Outcome {
    Outcome {
        ending: Ending::Failed(TransportError {
            kind: kind.to_owned(),
            issue_code: issue_code.to_owned(),
            msg,
            details,
        }),
        stdout: Vec::new(),
        stderr: Vec::new(),
        overflow: false,
        stop: None,
    }
}

const CONNECT_ERROR: &str = "puppetlabs.tasks/connect-error";
/// How long a stop waits for a run's PID before it gives up on the run.
const PID_WAIT: Duration = Duration::from_secs(10);
const ESCALATE_ERROR: &str = "puppetlabs.tasks/escalate-error";
const FILE_ERROR: &str = "puppetlabs.tasks/task_file_error";

impl Ssh {
    /// Known-hosts files and the handshake limit.
    pub fn new(known_hosts: Vec<PathBuf>, connect_limit: usize) -> Ssh {
        Ssh {
            known_hosts: Arc::new(known_hosts),
            connecting: Semaphore::new(connect_limit.clamp(1, 100_000)),
        }
    }
}

/// A node with an SSH connection entry.
#[derive(Debug)]
pub struct SshNode<'a> {
    pub ssh: &'a Ssh,
    pub target: &'a SshTarget,
}

impl Transport for SshNode<'_> {
    async fn run(&self, job: &TaskRun<'_>, stop: watch::Receiver<StopLevel>) -> Outcome {
        self.ssh.run(self.target, job, stop).await
    }
}

impl Ssh {
    /// Runs `job` on `t` to its end.
    async fn run(
        &self,
        t: &SshTarget,
        job: &TaskRun<'_>,
        mut stop: watch::Receiver<StopLevel>,
    ) -> Outcome {
        if *stop.borrow() >= StopLevel::Force {
            return killed(*stop.borrow());
        }
        let session = {
            let _permit = self.connecting.acquire().await;
            tokio::select! {
                s = connect::open(t, self.known_hosts.clone()) => s,
                l = stop.wait_for(|l| *l >= StopLevel::Force) => {
                    let level = l.map_or(StopLevel::Force, |l| *l);
                    return killed(level);
                }
            }
        };
        let session = match session {
            Ok(s) => s,
            Err(e) => {
                return failed(
                    CONNECT_ERROR,
                    e.issue_code,
                    e.msg,
                    json!({ "node": t.certname, "hostname": t.hostname, "port": t.port }),
                );
            }
        };
        let outcome = Run::new(t, job, &session, self.known_hosts.clone())
            .go(stop)
            .await;
        // The run ended here, seen: nothing for a restart to end.
        if let Some(path) = &job.record {
            let _ = std::fs::remove_file(path);
        }
        // A clean goodbye; the session is dropped either way.
        let _ = tokio::time::timeout(
            t.disconnect_timeout,
            session.disconnect(russh::Disconnect::ByApplication, "", "en"),
        )
        .await;
        outcome
    }
}

fn killed(level: StopLevel) -> Outcome {
    Outcome {
        ending: Ending::Killed(level),
        stdout: Vec::new(),
        stderr: Vec::new(),
        overflow: false,
        stop: None,
    }
}

/// One task run on an open session.
struct Run<'a> {
    t: &'a SshTarget,
    known_hosts: Arc<Vec<PathBuf>>,
    job: &'a TaskRun<'a>,
    session: &'a connect::Session,
    id: String,
    launch: Launch,
    sudo_password: Option<&'a SecretString>,
}

impl<'a> Run<'a> {
    fn new(
        t: &'a SshTarget,
        job: &'a TaskRun<'a>,
        session: &'a connect::Session,
        known_hosts: Arc<Vec<PathBuf>>,
    ) -> Run<'a> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let run_as = t.run_as.clone().filter(|u| *u != t.user);
        Run {
            launch: Launch {
                run_as,
                prompt: format!("[sudo] kick {id} password: "),
            },
            sudo_password: t.sudo_password.as_ref().or(t.password.as_ref()),
            known_hosts,
            t,
            job,
            session,
            id,
        }
    }

    fn rundir(&self) -> String {
        scripts::rundir(&self.t.tmpdir, &self.id)
    }

    /// `<sha256>/<name>[=<install path>]` for each file, executable first.
    fn file_args(&self) -> Vec<String> {
        let multi = self.job.files.len() > 1;
        self.job
            .files
            .iter()
            .map(|f| {
                if multi {
                    format!("{}/{}={}", f.sha256, f.filename, f.install)
                } else {
                    format!("{}/{}", f.sha256, f.filename)
                }
            })
            .collect()
    }

    /// The run's stdin: the `PT_*` variables (the run script exports them,
    /// so that no command line on the node shows a parameter), then the
    /// input as pxp-agent and Bolt give it.
    fn input(&self) -> Vec<u8> {
        let installdir = (self.job.files.len() > 1).then(|| self.rundir());
        let input = input_of(self.job.input, installdir.as_deref(), self.job.task_name);
        let env = if self.job.input_method != "stdin" {
            pt_env(&input)
        } else {
            Vec::new()
        };
        let mut stdin = scripts::env_block(&env);
        if self.job.input_method != "environment" {
            stdin.extend(stdin_of(&input));
        }
        stdin
    }

    async fn channel(
        &self,
        session: &connect::Session,
    ) -> Result<russh::Channel<russh::client::Msg>, Outcome> {
        session
            .channel_open_session()
            .await
            .map_err(|e| self.lost(&e.to_string()))
    }

    fn lost(&self, why: &str) -> Outcome {
        failed(
            CONNECT_ERROR,
            "CONNECTION_LOST",
            format!(
                "The connection to {} was lost ({why}); the task's outcome is unknown",
                self.t.certname
            ),
            json!({ "node": self.t.certname }),
        )
    }

    /// Runs `command` on a new channel of the run's session with `stdin`.
    async fn exec(
        &self,
        command: String,
        stdin: Vec<u8>,
        on_ready: impl FnMut(Option<u32>),
    ) -> Result<Finished, Outcome> {
        self.exec_on(self.session, command, stdin, on_ready).await
    }

    /// Runs `command` on a new channel of `session` with `stdin`.
    async fn exec_on(
        &self,
        session: &connect::Session,
        command: String,
        stdin: Vec<u8>,
        on_ready: impl FnMut(Option<u32>),
    ) -> Result<Finished, Outcome> {
        let channel = self.channel(session).await?;
        channel
            .exec(true, command.into_bytes())
            .await
            .map_err(|e| self.lost(&e.to_string()))?;
        let upload = |need: &str| self.upload_files(need);
        let input = Input {
            upload: Some(&upload),
            stdin,
            sudo_password: self.sudo_password,
            prompt: self
                .launch
                .run_as
                .as_ref()
                .map(|_| self.launch.prompt.as_str()),
            max_output: self.job.max_output,
        };
        Ok(channel::drive(channel, input, on_ready).await)
    }

    /// An escalation or script failure in `f`, if any.
    fn step_failure(&self, f: &Finished) -> Option<Outcome> {
        if let Some(e) = &f.escalation {
            let user = self.launch.run_as.as_deref().unwrap_or("root");
            let (code, msg) = match e {
                Escalation::NoPassword => (
                    "NO_PASSWORD",
                    format!(
                        "Sudo password for user {} was not provided for {} (set sudo-password or password in its connection entry)",
                        self.t.user, self.t.certname
                    ),
                ),
                Escalation::BadPassword => (
                    "BAD_PASSWORD",
                    format!(
                        "Sudo password for user {} was not accepted on {} (check sudo-password in its connection entry)",
                        self.t.user, self.t.certname
                    ),
                ),
                Escalation::Denied(line) => (
                    "SUDO_DENIED",
                    format!(
                        "User {} may not run commands as {user} with sudo on {}: {line}",
                        self.t.user, self.t.certname
                    ),
                ),
            };
            return Some(failed(
                ESCALATE_ERROR,
                code,
                msg,
                json!({ "node": self.t.certname, "user": self.t.user, "run_as": user }),
            ));
        }
        if let Some(why) = &f.upload_error {
            return Some(failed(
                FILE_ERROR,
                "WRITE_ERROR",
                format!("Could not upload the task to {}: {why}", self.t.certname),
                json!({ "node": self.t.certname }),
            ));
        }
        let err = f
            .markers
            .iter()
            .find_map(|m| m.strip_prefix(scripts::ERR))?;
        let mut parts = err.trim_start().splitn(2, ' ');
        let code = parts.next().unwrap_or("WRITE_ERROR").to_owned();
        let msg = parts.next().unwrap_or_default().to_owned();
        Some(failed(
            FILE_ERROR,
            &code,
            format!("{msg} on {}", self.t.certname),
            json!({ "node": self.t.certname, "tmpdir": self.t.tmpdir }),
        ))
    }

    /// The local files that answer `KICK-NEED <sha>/<name>...`, in its order.
    fn upload_files(&self, need: &str) -> Result<Vec<&'a TaskFile>, String> {
        need.split_whitespace()
            .map(|want| {
                self.job
                    .files
                    .iter()
                    .find(|f| format!("{}/{}", f.sha256, f.filename) == want)
                    .ok_or_else(|| {
                        format!("the node asked for {want}, which is not one of the task's files")
                    })
            })
            .collect()
    }

    async fn go(self, mut stop: watch::Receiver<StopLevel>) -> Outcome {
        let stdin = self.input();
        let files = self.file_args();
        let started = tokio::time::Instant::now();
        let deadline = self.job.timeout.and_then(|t| started.checked_add(t));
        let pid = Arc::new(Mutex::new(None::<u32>));
        let pid_w = pid.clone();
        let cmd = self.launch.run(&self.t.tmpdir, &self.id, &files);
        let record = self.job.record.clone();
        let (certname, run_id) = (self.t.certname.clone(), self.id.clone());
        let run = self.exec(cmd, stdin, move |p| {
            *pid_w.lock().unwrap_or_else(|e| e.into_inner()) = p;
            if let (Some(path), Some(pid)) = (&record, p) {
                recover::write(
                    path,
                    &recover::RemoteRun {
                        certname: certname.clone(),
                        pid,
                        run_id: run_id.clone(),
                    },
                );
            }
        });
        tokio::pin!(run);
        let sleep = crate::exec::until(deadline);
        tokio::pin!(sleep);
        let mut ending = None;
        // The grace of a stop asked for but not started yet (the run has
        // not reported its PID); the stop itself runs beside the run's
        // channel, which must keep being read meanwhile.
        let mut pending: Option<Duration> = None;
        let mut stopping: Option<
            std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send + '_>>,
        > = None;
        let mut stopped = false;
        let mut stop_report = None;
        // A run asked to stop whose task never reported its PID (stuck
        // before it: in sudo, say) is given up on after this long: the
        // session's close then ends whatever waited on the node.
        let mut give_up: Option<tokio::time::Instant> = None;
        let finished = loop {
            if pending.is_some() && give_up.is_none() {
                give_up = Some(tokio::time::Instant::now() + PID_WAIT);
            }
            if pending.is_some() && give_up.is_some_and(|g| tokio::time::Instant::now() >= g) {
                tracing::warn!(node = %self.t.certname, "the stopped run never reported its PID; its session is closed");
                break Ok(Finished::default());
            }
            if let Some(grace) = pending
                && stopping.is_none()
                && !stopped
                && let Some(p) = *pid.lock().unwrap_or_else(|e| e.into_inner())
            {
                stopping = Some(Box::pin(self.stop_tree(p, grace)));
                pending = None;
            }
            tokio::select! {
                f = &mut run => break f,
                () = &mut sleep, if ending.is_none() => {
                    let t = self.job.timeout.unwrap_or_default();
                    ending = Some(Ending::TimedOut(t));
                    pending = Some(self.job.kill_grace);
                }
                changed = stop.changed(), if ending.is_none() => {
                    if changed.is_err() {
                        stop = watch::channel(StopLevel::None).1;
                        continue;
                    }
                    let level = *stop.borrow();
                    if level >= StopLevel::Force {
                        ending = Some(Ending::Killed(level));
                        pending = Some(Duration::ZERO);
                    }
                }
                r = async { match stopping.as_mut() { Some(f) => f.await, None => Value::Null } }, if stopping.is_some() => {
                    stopping = None;
                    stopped = true;
                    stop_report = Some(r);
                }
                // Waiting for the PID of a run asked to stop.
                () = tokio::time::sleep(Duration::from_millis(50)), if pending.is_some() => {}
            }
        };
        // A stop under way finishes its check and removes the run dir.
        if let Some(f) = stopping.take() {
            stop_report = Some(f.await);
        }
        let f = match finished {
            Ok(f) => f,
            Err(o) => return o,
        };
        if f.lost && ending.is_none() {
            let pid = *pid.lock().unwrap_or_else(|e| e.into_inner());
            return self.after_loss(f, pid).await;
        }
        if let Some(ending) = ending {
            let remote = stop_report.unwrap_or_else(
                || json!({ "state": "not started", "msg": "the task had not started on the node" }),
            );
            return Outcome {
                ending,
                stdout: f.stdout,
                stderr: f.stderr,
                overflow: f.overflow,
                stop: Some(serde_json::Map::from_iter([("remote".to_owned(), remote)])),
            };
        }
        if let Some(o) = self.step_failure(&f) {
            return o;
        }
        self.outcome(f)
    }

    /// The connection died while the task ran. Without a pty sshd sends the
    /// task no signal: it would run on unseen. Kick connects again and ends
    /// its tree, and says in the node's result whether it could.
    async fn after_loss(&self, f: Finished, pid: Option<u32>) -> Outcome {
        let mut o = self.lost("while the task ran");
        o.stdout = f.stdout;
        o.stderr = f.stderr;
        let remote = match pid {
            None => {
                json!({ "state": "not started", "msg": "the task had not started on the node" })
            }
            Some(pid) => match connect::open(self.t, self.known_hosts.clone()).await {
                Err(e) => json!({
                    "state": "unknown",
                    "msg": format!("Kick could not connect again to end the task (PID {pid}): {}", e.msg),
                }),
                Ok(session) => {
                    let cmd = self
                        .launch
                        .stop(pid, self.job.kill_grace, &self.t.tmpdir, &self.id);
                    let stopped = self.exec_on(&session, cmd, Vec::new(), |_| {}).await;
                    let _ = session
                        .disconnect(russh::Disconnect::ByApplication, "", "en")
                        .await;
                    match stopped {
                        Ok(s) => {
                            let mut r =
                                remote_report(pid, String::from_utf8_lossy(&s.stdout).trim());
                            r["msg"] = json!(if r["state"] == "ended" {
                                format!(
                                    "Kick connected again and ended the task's processes (PID {pid} and all it started)"
                                )
                            } else {
                                format!(
                                    "Kick connected again but could not end every process of the task (PID {pid})"
                                )
                            });
                            r
                        }
                        Err(_) => json!({
                            "state": "unknown",
                            "msg": format!("Kick connected again but lost that connection too (PID {pid})"),
                        }),
                    }
                }
            },
        };
        if let Ending::Failed(e) = &mut o.ending {
            if let Some(msg) = remote["msg"].as_str() {
                e.msg = format!("{}. {msg}", e.msg);
            }
            e.details["remote"] = remote;
        }
        o
    }

    /// The outcome of a run channel that ended by itself.
    fn outcome(&self, f: Finished) -> Outcome {
        // The task's own status, as the script saw it; the script's exit
        // status when the script itself was ended.
        let task_rc = f
            .markers
            .iter()
            .rev()
            .find_map(|m| m.strip_prefix(scripts::EXIT))
            .and_then(|rc| rc.trim().parse::<i32>().ok());
        let stderr_text = String::from_utf8_lossy(&f.stderr);
        if task_rc == Some(126) && stderr_text.contains("Permission denied") {
            return failed(
                FILE_ERROR,
                "TMPDIR_ERROR",
                format!(
                    "The task could not be executed on {} (exit 126, Permission denied): tmpdir {} is probably on a filesystem mounted noexec; set tmpdir in the node's connection entry to a directory that allows execution",
                    self.t.certname, self.t.tmpdir
                ),
                json!({ "node": self.t.certname, "tmpdir": self.t.tmpdir, "exit_code": 126 }),
            );
        }
        let ending = match (task_rc, f.exit_signal, f.exit_status) {
            (_, Some(sig), _) => Ending::Signaled(signal_number(&sig)),
            (Some(rc), None, _) if rc > 128 && rc < 160 && f.exit_status == Some(rc as u32) => {
                // The shell's code for a task killed by signal rc - 128.
                Ending::Signaled(rc - 128)
            }
            (Some(rc), None, _) => Ending::Exited(rc),
            (None, None, Some(st)) => Ending::Exited(st as i32),
            (None, None, None) => Ending::Exited(-1),
        };
        Outcome {
            ending,
            stdout: f.stdout,
            stderr: f.stderr,
            overflow: f.overflow,
            stop: None,
        }
    }

    /// Ends the run's tree on the node (the task's PID `pid`) through a
    /// second channel on the run's session; what it found, for the node's
    /// result (`details.remote`).
    async fn stop_tree(&self, pid: u32, grace: Duration) -> Value {
        let cmd = self.launch.stop(pid, grace, &self.t.tmpdir, &self.id);
        let limit = grace + Duration::from_secs(15);
        match tokio::time::timeout(limit, self.exec(cmd, Vec::new(), |_| {})).await {
            Ok(Ok(f)) => {
                let out = String::from_utf8_lossy(&f.stdout);
                remote_report(pid, out.trim())
            }
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(node = %self.t.certname, "could not stop the task's processes on the node");
                json!({
                    "state": "unknown",
                    "msg": format!("Kick could not run its stop on the node (PID {pid})"),
                })
            }
        }
    }
}

/// The stop script's report (`KICK-STOPPED <signal> <pid>...` or
/// `KICK-LEFT <pid>...`) as `details.remote`: `ended` with every process of
/// the run it found (puppet's execs in their own sessions too), or
/// `unknown` with what survived.
fn remote_report(pid: u32, out: &str) -> Value {
    let line = |marker: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(marker))
            .map(|rest| {
                rest.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
    };
    let pids =
        |words: &[String]| -> Vec<u32> { words.iter().filter_map(|w| w.parse().ok()).collect() };
    if let Some(words) = line(scripts::STOPPED) {
        let (signal, rest) = words
            .split_first()
            .map_or(("", &[][..]), |(s, r)| (s.as_str(), r));
        return json!({
            "state": "ended",
            "msg": format!("Kick ended the task's processes on the node (PID {pid} and all it started)"),
            "signal": signal,
            "stopped": pids(rest),
            "report": out,
        });
    }
    let left = line(scripts::LEFT).map(|w| pids(&w)).unwrap_or_default();
    tracing::warn!(pid, "processes survived the stop on the node: {out}");
    json!({
        "state": "unknown",
        "msg": format!("Kick could not end every process of the task on the node (PID {pid})"),
        "survivors": left,
        "report": out,
    })
}

/// Ends the tree of `pid` on the node of `session` (a session opened after
/// the run's own was lost); the stop script's report, `None` when it could
/// not run.
async fn stop_with(
    session: &connect::Session,
    t: &SshTarget,
    pid: u32,
    run_id: &str,
    grace: Duration,
) -> Option<String> {
    let launch = Launch {
        run_as: t.run_as.clone().filter(|u| *u != t.user),
        prompt: format!("[sudo] kick {} password: ", uuid::Uuid::new_v4().simple()),
    };
    let channel = session.channel_open_session().await.ok()?;
    channel
        .exec(
            true,
            launch.stop(pid, grace, &t.tmpdir, run_id).into_bytes(),
        )
        .await
        .ok()?;
    let input = Input {
        stdin: Vec::new(),
        sudo_password: t.sudo_password.as_ref().or(t.password.as_ref()),
        prompt: launch.run_as.as_ref().map(|_| launch.prompt.as_str()),
        max_output: 1024 * 1024,
        upload: None,
    };
    let limit = grace + Duration::from_secs(20);
    let f = tokio::time::timeout(limit, channel::drive(channel, input, |_| {}))
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&f.stdout).into_owned())
}

/// The number of a signal SSH names (`TERM`, `KILL`...).
fn signal_number(name: &str) -> i32 {
    match name.trim_matches('"') {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 0,
    }
}
