//! Ending a process and everything it started.
//!
//! Killing a process group is not enough to stop a Puppet run: puppet starts
//! every `exec` resource in a new session (`Process.setsid`), so the exec is
//! in no group of ours and survives. What ties a run together is parentage,
//! which only `/proc` records, and only while the parents live: a child whose
//! parent dies is handed to the nearest subreaper (or init) and its link to
//! the run is lost. So the tree is read *before* the first signal, every
//! member is remembered by PID and start time (a PID may be reused), and the
//! tree is read again at every step for what was started meanwhile.
//!
//! [`end`] sends TERM to every member and to their process groups, waits a
//! grace period for them to leave, then freezes what is left with SIGSTOP
//! (a stopped process cannot fork, so the freeze settles) and kills it with
//! SIGKILL, and finally checks that nothing is left. A zombie counts as gone once
//! all its threads have ended: it runs nothing.
//!
//! Linux only (it reads `/proc`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// How often the tree is read again while waiting.
const POLL: Duration = Duration::from_millis(20);

/// At most this much of a command line is kept for reports.
const COMMAND_MAX: usize = 200;

/// One process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Its PID.
    pub pid: u32,
    /// Its parent's PID.
    pub ppid: u32,
    /// Its process group.
    pub pgid: u32,
    /// Its session.
    pub sid: u32,
    /// Start time in clock ticks since boot: with the PID, who it is.
    pub start: u64,
    /// `R`, `S`, `Z`...
    pub state: char,
}

impl Proc {
    /// Whether it has ended and runs nothing any more. A thread-group
    /// leader shows `Z` as soon as its own thread exits, while its other
    /// threads may still run (Ruby's puppet has several): only a zombie
    /// whose other threads are gone has ended.
    pub fn has_ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x') && other_threads(self.pid) == 0
    }
}

/// Threads of `pid` other than its leader.
fn other_threads(pid: u32) -> usize {
    let own = pid.to_string();
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |dir| {
        dir.flatten()
            .filter(|e| e.file_name().to_str() != Some(own.as_str()))
            .count()
    })
}

/// Parses the text of `/proc/<pid>/stat`. The command name sits between the
/// first `(` and the *last* `)`, and may itself hold spaces and parentheses.
pub fn parse_stat(text: &str) -> Option<Proc> {
    let (head, rest) = text.split_once(" (")?;
    let pid = head.trim().parse().ok()?;
    let after = &rest[rest.rfind(')')? + 1..];
    let mut f = after.split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    let sid = f.next()?.parse().ok()?;
    // starttime is the 22nd field of the line, the 19th after the state.
    let start = f.nth(15)?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        pgid,
        sid,
        start,
        state,
    })
}

/// Reads one process, `None` once it is gone.
pub fn read(pid: u32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Every process this PID namespace's `/proc` shows (threads excluded).
pub fn all() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read)
        .collect()
}

/// The processes below `roots` in `table` (the roots themselves excluded),
/// parents before children.
pub fn descendants_in(table: &[Proc], roots: &[u32]) -> Vec<Proc> {
    let mut children: BTreeMap<u32, Vec<&Proc>> = BTreeMap::new();
    for p in table {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut queue: Vec<u32> = roots.to_vec();
    let mut seen: std::collections::BTreeSet<u32> = roots.iter().copied().collect();
    while let Some(pid) = queue.pop() {
        for c in children.get(&pid).into_iter().flatten() {
            if seen.insert(c.pid) {
                out.push((*c).clone());
                queue.push(c.pid);
            }
        }
    }
    out
}

/// The processes below `root`, read now.
pub fn descendants(root: u32) -> Vec<Proc> {
    descendants_in(&all(), &[root])
}

/// A command line for reports: `/proc/<pid>/cmdline` with spaces, shortened.
pub fn command_line(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut s: String = String::from_utf8_lossy(&raw)
        .split('\0')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if s.is_empty() {
        s = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim_end()))
            .unwrap_or_default();
    }
    if s.len() > COMMAND_MAX {
        let mut end = COMMAND_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A process [`end`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// Its PID.
    pub pid: u32,
    /// Its command line when it was found.
    pub command: String,
    /// `"TERM"` when it left within the grace, else `"KILL"`.
    pub signal: &'static str,
}

/// The outcome of [`end`].
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Every process of the tree, in the order found.
    pub ended: Vec<Ended>,
    /// Whether SIGKILL was needed for any of them.
    pub killed: bool,
    /// Seconds from the first signal until nothing was left.
    pub waited: f64,
    /// Processes still alive when [`Options::after_kill`] ran out (a process
    /// in uninterruptible sleep, or one we may not signal).
    pub survivors: Vec<u32>,
}

/// How [`end`] goes about it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Whether the roots themselves are ended too (not when a root is the
    /// caller itself).
    pub include_roots: bool,
    /// Time between TERM and KILL; zero sends no TERM and kills at once.
    pub grace: Duration,
    /// How long after KILL the kernel may take before a process counts as a
    /// survivor.
    pub after_kill: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            include_roots: true,
            grace: Duration::from_secs(10),
            after_kill: Duration::from_secs(5),
        }
    }
}

/// The members of a tree, remembered by PID and start time.
struct Members {
    roots: Vec<u32>,
    include_roots: bool,
    known: BTreeMap<u32, (u64, String)>,
    order: Vec<u32>,
    /// Process groups already sent TERM.
    groups: std::collections::BTreeSet<u32>,
    own_group: u32,
    own_pid: u32,
}

impl Members {
    fn new(roots: &[u32], include_roots: bool) -> Members {
        Members {
            roots: roots.to_vec(),
            include_roots,
            known: BTreeMap::new(),
            order: Vec::new(),
            groups: Default::default(),
            own_group: rustix::process::getpgrp()
                .as_raw_nonzero()
                .get()
                .unsigned_abs(),
            own_pid: rustix::process::getpid()
                .as_raw_nonzero()
                .get()
                .unsigned_abs(),
        }
    }

    /// Reads the tree again; returns the members not seen before.
    fn refresh(&mut self) -> Vec<Proc> {
        let table = all();
        let mut parents: Vec<u32> = self.roots.clone();
        parents.extend(self.alive_in(&table).map(|p| p.pid));
        let mut found = descendants_in(&table, &parents);
        if self.include_roots {
            found.extend(
                self.roots
                    .iter()
                    .filter_map(|r| table.iter().find(|p| p.pid == *r).cloned()),
            );
        }
        let mut new = Vec::new();
        for p in found {
            if p.pid == self.own_pid || p.has_ended() {
                continue;
            }
            let fresh = match self.known.get(&p.pid) {
                None => true,
                // The PID was reused by someone the tree started since.
                Some((start, _)) => *start != p.start,
            };
            if fresh {
                if !self.known.contains_key(&p.pid) {
                    self.order.push(p.pid);
                }
                self.known.insert(p.pid, (p.start, command_line(p.pid)));
                new.push(p);
            }
        }
        new
    }

    /// The known members still running, as `table` shows them.
    fn alive_in<'t>(&self, table: &'t [Proc]) -> impl Iterator<Item = &'t Proc> + use<'t, '_> {
        table.iter().filter(|p| {
            !p.has_ended() && self.known.get(&p.pid).is_some_and(|(s, _)| *s == p.start)
        })
    }

    fn alive(&self) -> Vec<u32> {
        self.known
            .iter()
            .filter(|(pid, (start, _))| {
                read(**pid).is_some_and(|p| p.start == *start && !p.has_ended())
            })
            .map(|(pid, _)| *pid)
            .collect()
    }

    fn signal(&mut self, procs: &[Proc], sig: Signal) {
        for p in procs {
            if let Some(pid) = Pid::from_raw(p.pid as i32) {
                let _ = rustix::process::kill_process(pid, sig);
            }
            // The group too, so that whatever it holds that /proc no longer
            // ties to the tree gets the signal; never our own group, and
            // never init's.
            if sig == Signal::TERM
                && p.pgid > 1
                && p.pgid != self.own_group
                && self.groups.insert(p.pgid)
                && let Some(g) = Pid::from_raw(p.pgid as i32)
            {
                let _ = rustix::process::kill_process_group(g, sig);
            }
        }
    }
}

/// Ends `roots` (when [`Options::include_roots`]) and every process below
/// them: TERM, the grace, then freeze and KILL, then a check that nothing is
/// left. `cut_short` is asked while waiting; `true` ends the grace at once
/// (a second stop request).
pub fn end(roots: &[u32], opts: Options, mut cut_short: impl FnMut() -> bool) -> Report {
    let started = Instant::now();
    let mut m = Members::new(roots, opts.include_roots);
    let mut term_signal_of: BTreeMap<u32, &'static str> = BTreeMap::new();

    let first = m.refresh();
    // Without a grace (a force stop) nothing gets the TERM that would let it
    // write a last word: KILL is the first and only signal.
    if !opts.grace.is_zero() {
        m.signal(&first, Signal::TERM);
    }
    let kill_at = started + opts.grace;
    let mut killed = false;
    loop {
        let alive = m.alive();
        if alive.is_empty() {
            break;
        }
        if Instant::now() >= kill_at || cut_short() {
            killed = true;
            freeze_and_kill(&mut m);
            for pid in alive {
                term_signal_of.insert(pid, "KILL");
            }
            break;
        }
        std::thread::sleep(POLL);
        let new = m.refresh();
        m.signal(&new, Signal::TERM);
    }

    let give_up = Instant::now() + opts.after_kill;
    let survivors = loop {
        let alive = m.alive();
        if alive.is_empty() || Instant::now() >= give_up {
            break alive;
        }
        // Something may have slipped in between the freeze and the kill.
        freeze_and_kill(&mut m);
        std::thread::sleep(POLL);
    };
    // Those who left after the first KILL sweep but before it reached them
    // were killed too; everyone else left on TERM.
    let ended = m
        .order
        .iter()
        .map(|pid| Ended {
            pid: *pid,
            command: m.known.get(pid).map(|(_, c)| c.clone()).unwrap_or_default(),
            signal: term_signal_of.get(pid).copied().unwrap_or("TERM"),
        })
        .collect();
    Report {
        ended,
        killed,
        waited: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        survivors,
    }
}

/// SIGSTOP until no new member appears (a stopped process cannot fork),
/// then SIGKILL to every member.
fn freeze_and_kill(m: &mut Members) {
    for _ in 0..50 {
        let new = m.refresh();
        let alive = m.alive();
        let procs: Vec<Proc> = alive.iter().filter_map(|p| read(*p)).collect();
        m.signal(&procs, Signal::STOP);
        if new.is_empty() {
            break;
        }
    }
    let procs: Vec<Proc> = m.alive().iter().filter_map(|p| read(*p)).collect();
    m.signal(&procs, Signal::KILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let line = "4242 (a (b) c) S 17 4242 4242 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 \
                    98765 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let p = parse_stat(line).unwrap();
        assert_eq!(
            p,
            Proc {
                pid: 4242,
                ppid: 17,
                pgid: 4242,
                sid: 4242,
                start: 98765,
                state: 'S'
            }
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("12 (x) S 1"), None);
    }

    #[test]
    fn our_own_stat_reads() {
        let me = std::process::id();
        let p = read(me).unwrap();
        assert_eq!(p.pid, me);
        assert_eq!(
            p.ppid,
            rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32)
        );
    }

    #[test]
    fn descendants_walk_the_whole_tree_only() {
        let p = |pid, ppid| Proc {
            pid,
            ppid,
            pgid: pid,
            sid: pid,
            start: 1,
            state: 'S',
        };
        let table = [p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(13, 10), p(20, 1)];
        let mut got: Vec<u32> = descendants_in(&table, &[10])
            .iter()
            .map(|p| p.pid)
            .collect();
        got.sort_unstable();
        assert_eq!(got, [11, 12, 13]);
    }
}
