//! Stopping another process's agent run: its process group gets SIGTERM,
//! SIGKILL after the grace period, and the task waits until the holder is
//! gone (a zombie counts as gone: it runs nothing and holds no lock).

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::lockfile;

/// After SIGKILL, how long the kernel may take to end the holder.
const AFTER_KILL: Duration = Duration::from_secs(5);

const POLL: Duration = Duration::from_millis(50);

/// How a stop went.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// The group signalled (the PID itself when it shares our group).
    pub group: u32,
    /// `"TERM"` or `"KILL"`: the last signal that was needed.
    pub signal: &'static str,
    /// Seconds from SIGTERM until the holder was gone.
    pub waited: f64,
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
    #[error("PID {pid} was still alive {secs}s after SIGKILL", secs = AFTER_KILL.as_secs())]
    Survived {
        /// The holder.
        pid: u32,
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
    let send = |sig: Signal| match group {
        Some(g) => rustix::process::kill_process_group(g, sig),
        None => rustix::process::kill_process(raw, sig),
    };
    let gone = || !lockfile::is_running(pid);
    let started = Instant::now();
    let group_id = group.map_or(pid, |g| g.as_raw_nonzero().get().unsigned_abs());
    let done = |signal: &'static str| Stopped {
        group: group_id,
        signal,
        waited: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    };
    match send(Signal::TERM) {
        Ok(()) => {}
        // Ended on its own between the lock check and now.
        Err(rustix::io::Errno::SRCH) => return Ok(done("TERM")),
        Err(source) => return Err(StopError::Signal { pid, source }),
    }
    let kill_at = started + grace;
    while Instant::now() < kill_at && stop().is_none() && !gone() {
        std::thread::sleep(POLL);
    }
    if gone() {
        return Ok(done("TERM"));
    }
    let _ = send(Signal::KILL);
    let give_up = Instant::now() + AFTER_KILL;
    while Instant::now() < give_up {
        if gone() {
            return Ok(done("KILL"));
        }
        std::thread::sleep(POLL);
    }
    Err(StopError::Survived { pid })
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
