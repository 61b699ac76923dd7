//! Puppet's agent lockfiles: the catalog-run lock (a PID) and the disabled
//! lock (JSON with the `--disable` message), judged by Puppet's own rules.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use rustix::process::Pid;

/// Lockfiles are tiny; anything longer is not a lock Puppet wrote.
const MAX_LOCK_BYTES: u64 = 64 * 1024;

/// State of the catalog-run lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogLock {
    /// No lockfile.
    Absent,
    /// A lockfile Puppet would ignore and delete.
    Stale {
        /// The PID it names, if any.
        pid: Option<u32>,
        /// Why it does not count, in words.
        reason: String,
    },
    /// A live puppet process holds the lock.
    Held {
        /// The holder.
        pid: u32,
        /// Seconds since the lockfile was written.
        age: Option<u64>,
    },
}

/// Reads a small file, `None` if it does not exist or cannot be read.
fn read_small(path: &Path) -> Option<String> {
    read_regular(path, MAX_LOCK_BYTES)
}

/// Reads at most `max` bytes of `path` if it is a regular file; `None` if it
/// is missing, unreadable or anything else. A FIFO or device is opened
/// non-blocking and never read, so no file can make the task wait.
pub fn read_regular(path: &Path, max: u64) -> Option<String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut s = String::new();
    f.take(max).read_to_string(&mut s).ok()?;
    Some(s)
}

/// What is at `path` when it exists and is not a regular file (`"a FIFO"`,
/// `"a directory"`...), following symlinks as puppet does.
pub fn non_regular(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path).ok()?.file_type();
    if t.is_file() {
        None
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else {
        Some("not a regular file")
    }
}

/// Seconds since `path` was last modified.
pub fn age_seconds(path: &Path) -> Option<u64> {
    let mtime = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(
        SystemTime::now()
            .duration_since(mtime)
            .unwrap_or_default()
            .as_secs(),
    )
}

/// Judges the catalog-run lockfile as Puppet's `Pidlock#clear_if_stale`
/// does: held only if the PID is alive and is a puppet process.
pub fn inspect_catalog_lock(path: &Path) -> CatalogLock {
    if std::fs::symlink_metadata(path).is_err() {
        return CatalogLock::Absent;
    }
    if let Some(what) = non_regular(path) {
        return CatalogLock::Stale {
            pid: None,
            reason: format!("the lockfile is {what}, not a file puppet writes"),
        };
    }
    let Some(text) = read_small(path) else {
        return CatalogLock::Stale {
            pid: None,
            reason: "the lockfile cannot be read".into(),
        };
    };
    let Some(pid) = text.trim().parse::<u32>().ok().filter(|p| *p > 0) else {
        return CatalogLock::Stale {
            pid: None,
            reason: format!("the lockfile holds no PID ({:?})", text.trim()),
        };
    };
    match process_kind(pid) {
        ProcessKind::Dead => CatalogLock::Stale {
            pid: Some(pid),
            reason: format!("PID {pid} is not running"),
        },
        ProcessKind::Other(comm) => CatalogLock::Stale {
            pid: Some(pid),
            reason: format!("PID {pid} is not a puppet process ({comm})"),
        },
        ProcessKind::Puppet => CatalogLock::Held {
            pid,
            age: age_seconds(path),
        },
    }
}

/// Whether `pid` is a live process (not a zombie).
pub fn is_running(pid: u32) -> bool {
    !matches!(process_kind(pid), ProcessKind::Dead)
}

/// Threads of `pid`'s thread group other than the leader itself.
fn other_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |dir| {
        dir.flatten()
            .filter(|e| e.file_name().to_str() != Some(&pid.to_string()))
            .count()
    })
}

enum ProcessKind {
    Dead,
    Other(String),
    Puppet,
}

fn process_kind(pid: u32) -> ProcessKind {
    let alive = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|p| {
            // EPERM means it exists but belongs to someone else.
            matches!(
                rustix::process::test_kill_process(p),
                Ok(()) | Err(rustix::io::Errno::PERM)
            )
        });
    // A zombie (exited, not yet reaped by its parent) runs nothing. A leader
    // whose main thread has exited shows `Z` too while its other threads
    // (Ruby's) still run: only a leader with no thread left counts.
    let zombie = read_small(Path::new(&format!("/proc/{pid}/stat"))).is_some_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    }) && other_threads(pid) == 0;
    if !alive || zombie {
        return ProcessKind::Dead;
    }
    let comm = read_small(Path::new(&format!("/proc/{pid}/comm")))
        .map(|c| c.trim_end_matches('\n').to_owned())
        .unwrap_or_default();
    let args = read_small(Path::new(&format!("/proc/{pid}/cmdline")))
        .map(|c| c.replace('\0', " "))
        .unwrap_or_default();
    if is_puppet(&comm, &args) {
        ProcessKind::Puppet
    } else {
        ProcessKind::Other(format!("command {comm:?}"))
    }
}

/// Puppet's rule: comm matches `/ruby/` and args match `/puppet/`, or comm
/// matches `/puppet(-.*)?$/`.
pub fn is_puppet(comm: &str, args: &str) -> bool {
    (comm.contains("ruby") && args.contains("puppet"))
        || comm.match_indices("puppet").any(|(i, m)| {
            let rest = &comm[i + m.len()..];
            rest.is_empty() || rest.starts_with('-')
        })
}

/// The message of the disabled lockfile, if the agent is disabled.
pub fn disabled_message(path: &Path) -> Option<String> {
    if std::fs::symlink_metadata(path).is_err() {
        return None;
    }
    let text = read_small(path).unwrap_or_default();
    let msg = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("disabled_message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "reason not specified".to_owned());
    Some(msg)
}

/// How a wait for the catalog-run lock ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The lock is free (or stale): go ahead.
    Free,
    /// Still held when the wait ran out.
    StillHeld {
        /// The holder.
        pid: u32,
        /// Seconds since the lockfile was written.
        age: Option<u64>,
    },
    /// The task was asked to stop while waiting.
    Interrupted(i32),
}

/// Polls the lock until it is free, `wait` has passed, or `stop` reports a
/// signal.
pub fn wait_for_free(path: &Path, wait: Duration, stop: impl Fn() -> Option<i32>) -> WaitOutcome {
    let until = Instant::now() + wait;
    loop {
        if let Some(sig) = stop() {
            return WaitOutcome::Interrupted(sig);
        }
        match inspect_catalog_lock(path) {
            CatalogLock::Held { pid, age } => {
                let now = Instant::now();
                if now >= until {
                    return WaitOutcome::StillHeld { pid, age };
                }
                std::thread::sleep((until - now).min(Duration::from_millis(100)));
            }
            _ => return WaitOutcome::Free,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puppet_process_rule() {
        assert!(is_puppet("puppet", "/usr/bin/puppet agent"));
        assert!(is_puppet("puppet-agent", ""));
        assert!(is_puppet("ruby", "/usr/bin/ruby /usr/bin/puppet agent -t"));
        assert!(is_puppet("ruby3.1", "ruby puppet"));
        assert!(!is_puppet("ruby", "ruby -e sleep"));
        assert!(!is_puppet("sleep", "sleep 300 puppet"));
        assert!(!is_puppet("puppetx", ""));
    }

    #[test]
    fn lock_states() {
        let d = tempfile::tempdir().unwrap();
        let lock = d.path().join("agent_catalog_run.lock");
        assert_eq!(inspect_catalog_lock(&lock), CatalogLock::Absent);
        std::fs::write(&lock, "garbage").unwrap();
        assert!(matches!(
            inspect_catalog_lock(&lock),
            CatalogLock::Stale { pid: None, .. }
        ));
        std::fs::write(&lock, "999999999").unwrap();
        assert!(matches!(
            inspect_catalog_lock(&lock),
            CatalogLock::Stale { pid: Some(_), .. }
        ));
        // This test process is alive but is not puppet.
        std::fs::write(&lock, std::process::id().to_string()).unwrap();
        match inspect_catalog_lock(&lock) {
            CatalogLock::Stale { reason, .. } => assert!(reason.contains("not a puppet process")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            wait_for_free(&lock, Duration::from_secs(5), || None),
            WaitOutcome::Free
        );
    }

    #[test]
    fn disabled_messages() {
        let d = tempfile::tempdir().unwrap();
        let lock = d.path().join("agent_disabled.lock");
        assert_eq!(disabled_message(&lock), None);
        std::fs::write(&lock, r#"{"disabled_message":"maint"}"#).unwrap();
        assert_eq!(disabled_message(&lock).as_deref(), Some("maint"));
        std::fs::write(&lock, "").unwrap();
        assert_eq!(
            disabled_message(&lock).as_deref(),
            Some("reason not specified")
        );
    }
}
