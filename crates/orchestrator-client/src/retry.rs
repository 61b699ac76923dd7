//! Capped exponential backoff with jitter for reads, and the timing of the
//! look-up that follows an ambiguous job submission.

use std::time::Duration;

/// How idempotent requests are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub initial_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
    /// No retry is started once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
    /// After an ambiguous submission, how long to wait before the second
    /// look-up by marker (the server may not list the job at once).
    pub submit_settle: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_elapsed: Duration::from_secs(45),
            submit_settle: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no waiting: for callers that do their own retrying.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_elapsed: Duration::ZERO,
            submit_settle: Duration::ZERO,
        }
    }

    /// The delay before retry number `retry` (1-based): the capped
    /// exponential value, of which a random upper half is used so that many
    /// clients failing together do not come back together.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(31);
        let base = self
            .initial_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = base / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..100 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d10 = p.delay(10);
            assert!(d10 >= Duration::from_millis(500) && d10 <= Duration::from_millis(1000));
            assert!(p.delay(u32::MAX) <= Duration::from_millis(1000));
        }
    }
}
