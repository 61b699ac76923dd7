//! Running puppet: its own process group, output drained on a thread into a
//! capped buffer, a deadline, a stop that ends the whole run (puppet and
//! every process it started, in whatever session), and a parent-death signal
//! so puppet is stopped even when the task is SIGKILLed.
//!
//! Puppet starts each `exec` resource in a new session, out of reach of a
//! signal to puppet's group. The task therefore makes itself a child
//! subreaper: whatever the run starts stays below the task even when its
//! parent dies, and a stop ends everything below the task
//! ([`process_tree::end`]).

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use orchestrator_types::psick::StoppedProcess;
use rustix::process::{Pid, Signal};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::ansi::AnsiFilter;
use crate::output::SharedOutput;

/// How often the supervisor looks at deadlines and signals.
const TICK: Duration = Duration::from_millis(50);

/// After puppet exits, how long leftover processes may keep its output pipe
/// open before the task stops reading.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(3);

/// Time between SIGTERM and SIGKILL when a run is stopped.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// `PSICK_KILL_GRACE` (seconds, for tests), else 10 s.
pub fn kill_grace() -> Duration {
    std::env::var("PSICK_KILL_GRACE")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|g| g.is_finite() && *g >= 0.0 && *g <= 3600.0)
        .map_or(DEFAULT_GRACE, Duration::from_secs_f64)
}

/// SIGTERM and SIGINT aimed at the task, recorded for the supervisor.
#[derive(Debug, Clone)]
pub struct Signals(Arc<AtomicUsize>);

impl Signals {
    /// Installs the handlers; from now on these signals no longer kill the
    /// task, they are reported by [`Signals::take`].
    pub fn install() -> io::Result<Signals> {
        let pending = Arc::new(AtomicUsize::new(0));
        for sig in [SIGTERM, SIGINT] {
            signal_hook::flag::register_usize(sig, Arc::clone(&pending), sig as usize)?;
        }
        Ok(Signals(pending))
    }

    /// A pending signal, cleared by the call.
    pub fn take(&self) -> Option<i32> {
        match self.0.swap(0, Ordering::SeqCst) {
            0 => None,
            s => i32::try_from(s).ok(),
        }
    }
}

/// The short name of a signal the task handles (`TERM`, `INT`).
pub fn signal_name(sig: i32) -> &'static str {
    if sig == SIGINT { "INT" } else { "TERM" }
}

/// Why the supervisor stopped puppet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed.
    Timeout,
    /// The task received this signal.
    Signal(i32),
}

/// How puppet ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal that killed it, if any.
    pub signal: Option<i32>,
    /// Whether the task stopped it, and why.
    pub stopped: Option<Stop>,
    /// Whether SIGKILL was needed.
    pub killed: bool,
    /// Every process a stop ended (puppet, its execs...), empty without one.
    pub ended: Vec<process_tree::Ended>,
    /// Processes of the run still alive after the stop's SIGKILL (one in
    /// uninterruptible sleep, or one the task may not signal): the stop
    /// did not end the whole run, and the result must say so.
    pub survivors: Vec<u32>,
    /// Interleaved, ANSI-free, capped stdout and stderr.
    pub output: String,
}

impl Finished {
    /// The failure a stopped run reports (`None` when nothing stopped it);
    /// `timeout` is the limit in seconds that applied, named when it ran out.
    pub fn stop_failure(&self, timeout: Option<u64>) -> Option<crate::error::Failure> {
        let stop = self.stopped?;
        Some(crate::error::Failure::Timeout {
            timeout: match stop {
                Stop::Timeout => timeout,
                Stop::Signal(_) => None,
            },
            signal: match stop {
                Stop::Signal(sig) => Some(signal_name(sig)),
                Stop::Timeout => None,
            },
            killed: self.killed,
            stopped: stopped_list(&self.ended),
            survivors: self.survivors.clone(),
        })
    }
}

/// Limits for one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stop the run after this long.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// Runs `argv` (executable first) with stdin from /dev/null and stdout and
/// stderr into one pipe, until it ends or is stopped.
pub fn run(argv: &[OsString], limits: Limits, signals: &Signals) -> io::Result<Finished> {
    run_with_env(argv, &[], limits, signals)
}

/// [`run`] with variables added to the environment (`DEBIAN_FRONTEND`...).
pub fn run_with_env(
    argv: &[OsString],
    env: &[(&str, &str)],
    limits: Limits,
    signals: &Signals,
) -> io::Result<Finished> {
    let (program, args) = argv.split_first().expect("argv holds the program");
    let task_pid = rustix::process::getpid();
    // Orphans of the run (a daemon an exec starts, whose parent exits) come
    // to the task, not to init, so a stop still finds them below the task.
    // Failing to become one only weakens the stop, so the run goes on; but
    // a stopped run's output says so, as the stop may then leave such a
    // process running.
    let subreaper_note = rustix::process::set_child_subreaper(Some(task_pid))
        .err()
        .map(subreaper_failed);
    let mut expr = duct::cmd(program, args);
    for (k, v) in env {
        expr = expr.env(k, v);
    }
    let reader = expr
        .stdin_null()
        .stderr_to_stdout()
        .unchecked()
        .before_spawn(move |cmd| {
            // Own group: signals can reach puppet and everything it starts,
            // and a terminal's Ctrl-C reaches only the task, which forwards it.
            cmd.process_group(0);
            // The own group also means a SIGKILL of the task (an orchestrator's
            // hard kill) never reaches puppet, and nothing would be left to
            // forward it: the kernel sends puppet SIGTERM when the task dies.
            #[allow(unsafe_code)]
            // SAFETY: the closure runs in the forked child before exec, where
            // only async-signal-safe calls are allowed. It makes two raw
            // syscalls (prctl(PR_SET_PDEATHSIG), getppid), reads a captured
            // `Pid` (Copy) and builds an `io::Error` from an errno, which does
            // not allocate; no locks, no allocation, no panics.
            //
            // PR_SET_PDEATHSIG fires when the *thread* that forked exits, not
            // the process. This spawn runs on the main thread (main -> agent::run
            // -> process::run, and duct spawns on the calling thread), which
            // lives until the task exits; keep it that way.
            unsafe {
                cmd.pre_exec(move || {
                    rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
                    // The task may have died between fork and prctl, before
                    // the death signal was armed: then puppet must not start.
                    if rustix::process::getppid() != Some(task_pid) {
                        return Err(rustix::io::Errno::SRCH.into());
                    }
                    Ok(())
                });
            }
            Ok(())
        })
        .reader()?;
    let reader = Arc::new(reader);
    let group = reader
        .pids()
        .first()
        .and_then(|p| i32::try_from(*p).ok())
        .and_then(Pid::from_raw);
    let sink = SharedOutput::default();

    let (done_tx, done_rx) = mpsc::channel::<()>();
    {
        let reader = Arc::clone(&reader);
        let sink = sink.clone();
        std::thread::spawn(move || {
            let mut filter = AnsiFilter::new(sink);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match (&*reader).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let _ = filter.feed(&buf[..n]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = filter.finish();
            let _ = done_tx.send(());
        });
    }

    let own_pid = task_pid.as_raw_nonzero().get().unsigned_abs();
    let started = Instant::now();
    let deadline = limits.timeout.and_then(|t| started.checked_add(t));
    let mut stopped = None;
    let mut killed = false;
    let mut ended = Vec::new();
    let mut survivors = Vec::new();
    let mut exited_at: Option<Instant> = None;
    let mut abandoned = false;
    let mut drained = false;
    loop {
        if drained {
            std::thread::sleep(TICK);
        } else if !matches!(
            done_rx.recv_timeout(TICK),
            Err(mpsc::RecvTimeoutError::Timeout)
        ) {
            drained = true;
        }
        // An error here means the child is gone (or unknowable): stop too.
        let exited = !matches!(reader.try_wait(), Ok(None));
        if drained && exited {
            break;
        }
        let now = Instant::now();
        let signal = signals.take();
        if stopped.is_none() {
            let cause = match signal {
                Some(sig) => Some(Stop::Signal(sig)),
                None if deadline.is_some_and(|d| now >= d) => Some(Stop::Timeout),
                None => None,
            };
            if let Some(cause) = cause {
                stopped = Some(cause);
                // Everything below the task is the run (the task is its
                // subreaper). A second signal while waiting: no more grace.
                let report = process_tree::end(
                    &[own_pid],
                    process_tree::Options {
                        include_roots: false,
                        grace: limits.grace,
                        ..process_tree::Options::default()
                    },
                    || signals.take().is_some(),
                );
                killed = report.killed;
                reap_orphans(&report.ended, group);
                ended = report.ended;
                survivors = report.survivors;
            }
        }
        if exited_at.is_none() && exited {
            exited_at = Some(now);
        }
        if let Some(t) = exited_at {
            // Puppet is gone but something it started still holds the pipe.
            if now.duration_since(t) >= DRAIN_AFTER_EXIT {
                abandoned = true;
                break;
            }
        }
    }

    let status = reader.try_wait().ok().flatten().map(|out| out.status);
    // Said only with a stop, the one time it matters: a kernel (or an
    // emulator: qemu-user has no PR_SET_CHILD_SUBREAPER) without it would
    // otherwise put the line before every run's output.
    let mut output = match (&stopped, subreaper_note) {
        (Some(_), Some(note)) => note,
        _ => String::new(),
    };
    output.push_str(&sink.render());
    if abandoned {
        output.push_str(
            "[psick: stopped reading output: puppet exited but a process it started kept the \
             output pipe open]\n",
        );
    }
    Ok(Finished {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stopped,
        killed,
        ended,
        survivors,
        output,
    })
}

/// The line put before a stopped run's output when the task could not
/// become its child subreaper.
fn subreaper_failed(e: rustix::io::Errno) -> String {
    format!(
        "[psick: could not make the task the run's child subreaper ({e}): a process of the \
         run whose parent exits (a daemon started by an exec) is not below the task, and a \
         stop of the run may leave it running]\n"
    )
}

/// The processes a stop ended, as the task's results list them.
pub fn stopped_list(ended: &[process_tree::Ended]) -> Vec<StoppedProcess> {
    ended
        .iter()
        .map(|e| StoppedProcess {
            pid: e.pid,
            command: e.command.clone(),
            signal: e.signal.to_owned(),
        })
        .collect()
}

/// Collects the exit status of the run's orphans that came to the task, so
/// that none is left a zombie; puppet itself is duct's to collect.
fn reap_orphans(ended: &[process_tree::Ended], puppet: Option<Pid>) {
    let puppet = puppet.map(|p| p.as_raw_nonzero().get().unsigned_abs());
    for e in ended.iter().filter(|e| Some(e.pid) != puppet) {
        if let Some(pid) = i32::try_from(e.pid).ok().and_then(Pid::from_raw) {
            // ECHILD: not ours (it never left its parent), nothing to do.
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        }
    }
}
