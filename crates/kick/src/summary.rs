//! Counts per outcome and the exit code they give.

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

/// Exit code: every node succeeded with no changes.
pub const EXIT_UNCHANGED: u8 = 0;
/// Exit code: kick itself failed (usage, configuration, authentication, API, network).
pub const EXIT_ERROR: u8 = 1;
/// Exit code bit: at least one node changed (or would change, in noop).
pub const EXIT_CHANGED: u8 = 2;
/// Exit code bit: at least one node failed, errored, was skipped or stopped.
pub const EXIT_FAILED: u8 = 4;
/// Exit code of `kick job show` for a job that has not ended (alone, not
/// combined with 2 or 4: the outcomes are not final).
pub const EXIT_NOT_ENDED: u8 = 8;
/// Exit code after detaching from a job with a third Ctrl-C (the shell's
/// convention for "interrupted").
pub const EXIT_DETACHED: u8 = 130;

/// Counts per outcome of the nodes that ended: in the JSON output's [`Summary`] between its
/// total and its running count, and what a rollout's state file keeps of each wave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Succeeded, no change.
    pub unchanged: u64,
    /// Succeeded with changes.
    pub changed: u64,
    /// Failed.
    pub failed: u64,
    /// Could not run.
    pub errored: u64,
    /// Not run.
    pub skipped: u64,
    /// Stopped.
    pub stopped: u64,
}

impl Counts {
    /// The count of outcome `o`; none for a node still running, which is not counted here.
    fn slot(&mut self, o: Outcome) -> Option<&mut u64> {
        match o {
            Outcome::Unchanged => Some(&mut self.unchanged),
            Outcome::Changed => Some(&mut self.changed),
            Outcome::Failed => Some(&mut self.failed),
            Outcome::Errored => Some(&mut self.errored),
            Outcome::Skipped => Some(&mut self.skipped),
            Outcome::Stopped => Some(&mut self.stopped),
            Outcome::Running => None,
        }
    }

    /// One node less with outcome `o` (a node that is tried again).
    pub fn remove(&mut self, o: Outcome) {
        if let Some(n) = self.slot(o) {
            *n = n.saturating_sub(1);
        }
    }

    /// Adds another's counts.
    pub fn add(&mut self, other: &Counts) {
        self.unchanged += other.unchanged;
        self.changed += other.changed;
        self.failed += other.failed;
        self.errored += other.errored;
        self.skipped += other.skipped;
        self.stopped += other.stopped;
    }

    /// A summary of these nodes, none of them running.
    pub fn summary(&self) -> Summary {
        Summary {
            total: self.unchanged
                + self.changed
                + self.failed
                + self.errored
                + self.skipped
                + self.stopped,
            counts: *self,
            running: 0,
        }
    }
}

/// `summary` of the JSON output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Nodes counted.
    pub total: u64,
    /// Those that ended, per outcome.
    #[serde(flatten)]
    pub counts: Counts,
    /// Not ended yet (`kick job show` of a job in progress; left out when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub running: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Counts one node.
    pub fn add(&mut self, o: Outcome) {
        self.total += 1;
        *self.slot(o) += 1;
    }

    /// The count of one outcome.
    pub fn get(&self, o: Outcome) -> u64 {
        let mut counts = self.counts;
        counts.slot(o).map_or(self.running, |n| *n)
    }

    fn slot(&mut self, o: Outcome) -> &mut u64 {
        match self.counts.slot(o) {
            Some(n) => n,
            None => &mut self.running,
        }
    }

    /// Nodes that failed, errored, were skipped or stopped.
    pub fn bad(&self) -> u64 {
        let c = &self.counts;
        c.failed + c.errored + c.skipped + c.stopped
    }

    /// 0, 2, 4 or 6 as documented.
    pub fn exit_code(&self) -> u8 {
        let mut code = EXIT_UNCHANGED;
        if self.counts.changed > 0 {
            code |= EXIT_CHANGED;
        }
        if self.bad() > 0 {
            code |= EXIT_FAILED;
        }
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_combine_changed_and_failed() {
        let mut s = Summary::default();
        assert_eq!(s.exit_code(), 0);
        s.add(Outcome::Unchanged);
        assert_eq!(s.exit_code(), 0);
        s.add(Outcome::Changed);
        assert_eq!(s.exit_code(), 2);
        s.add(Outcome::Skipped);
        assert_eq!(s.exit_code(), 6);
        let mut s = Summary::default();
        s.add(Outcome::Stopped);
        assert_eq!(s.exit_code(), 4);
        assert_eq!(s.total, 1);
        assert_eq!(s.get(Outcome::Stopped), 1);
    }
}
