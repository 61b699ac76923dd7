//! Stopping another process's agent run (a forced unlock): the holder and
//! everything it started, in whatever session, get SIGTERM, SIGKILL after
//! the grace period, and the task checks that nothing of the run is left.
//! Puppet's exec resources run in their own sessions, so the holder's
//! process group alone would miss them; the tree is read from `/proc`
//! before the first signal ([`process_tree::end`]).

use std::time::Duration;

use orchestrator_types::psick::StoppedProcess;
use rustix::process::Pid;

/// After SIGKILL, how long the kernel may take to end the run.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// How a stop went.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// The holder's process group, also signalled (the PID itself when it
    /// shares the task's group, which is never signalled).
    pub group: u32,
    /// `"TERM"` or `"KILL"`: the last signal that was needed.
    pub signal: &'static str,
    /// Seconds from SIGTERM until nothing of the run was left.
    pub waited: f64,
    /// Every process of the run that was ended.
    pub processes: Vec<StoppedProcess>,
}

/// Why a run could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// Signalling failed (EPERM for another user's run when not root).
    #[error("could not signal PID {pid}: {source}")]
    Signal {
        /// The holder.
        pid: u32,
        /// Why.
        source: rustix::io::Errno,
    },
    /// Still alive after SIGKILL.
    #[error(
        "processes of the run ({}) were still alive {secs}s after SIGKILL",
        pids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        secs = AFTER_KILL.as_secs()
    )]
    Survived {
        /// The holder.
        pid: u32,
        /// What is left.
        pids: Vec<u32>,
    },
}

/// The group to signal for `pid`: its own process group, unless that is the
/// task's own (then only `pid`, so the task never signals itself) or a
/// system group (0 or 1).
pub fn target_group(pid: Pid) -> Option<Pid> {
    let group = rustix::process::getpgid(Some(pid)).ok()?;
    let own = rustix::process::getpgrp();
    (group != own && group.as_raw_nonzero().get() > 1).then_some(group)
}

/// Stops the run whose holder is `pid`; `stop` reports a signal aimed at the
/// task, which cuts the grace short.
pub fn stop_run(
    pid: u32,
    grace: Duration,
    stop: impl Fn() -> Option<i32>,
) -> Result<Stopped, StopError> {
    let raw = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(StopError::Signal {
            pid,
            source: rustix::io::Errno::SRCH,
        })?;
    let group = target_group(raw);
    let group_id = group.map_or(pid, |g| g.as_raw_nonzero().get().unsigned_abs());
    // A holder we may not signal (another user's run, the task not root):
    // say so rather than wait out the grace for nothing.
    match rustix::process::test_kill_process(raw) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(source) => return Err(StopError::Signal { pid, source }),
    }
    let report = process_tree::end(
        &[pid],
        process_tree::Options {
            include_roots: true,
            grace,
            after_kill: AFTER_KILL,
        },
        || stop().is_some(),
    );
    if !report.survivors.is_empty() {
        return Err(StopError::Survived {
            pid,
            pids: report.survivors,
        });
    }
    Ok(Stopped {
        group: group_id,
        signal: if report.killed { "KILL" } else { "TERM" },
        waited: report.waited,
        processes: crate::process::stopped_list(&report.ended),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn a_group_that_traps_term_is_killed_after_the_grace() {
        let mut child = Command::new("/bin/sh")
            .args(["-c", "trap '' TERM; sleep 30 & wait; sleep 30"])
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let pid = child.id();
        // Reaping in the background, as a real holder's parent would.
        let reaper = std::thread::spawn(move || child.wait());
        let s = stop_run(pid, Duration::from_millis(300), || None).unwrap();
        assert_eq!(s.signal, "KILL");
        assert_eq!(s.group, pid);
        assert!(s.waited >= 0.3, "{s:?}");
        assert!(s.processes.iter().any(|p| p.pid == pid), "{s:?}");
        assert!(
            s.processes.iter().any(|p| p.command == "sleep 30"),
            "the sleep below the holder is listed: {s:?}"
        );
        reaper.join().unwrap().unwrap();
    }

    #[test]
    fn a_process_in_our_own_group_is_signalled_alone() {
        let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert_eq!(target_group(Pid::from_raw(pid as i32).unwrap()), None);
        let reaper = std::thread::spawn(move || child.wait());
        let s = stop_run(pid, Duration::from_secs(5), || None).unwrap();
        assert_eq!(s.signal, "TERM");
        assert_eq!(s.group, pid);
        reaper.join().unwrap().unwrap();
    }
}
