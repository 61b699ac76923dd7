//! The one retry loop: capped exponential backoff with jitter, within a
//! number of attempts and a time budget; also the timing of the look-up
//! that follows an ambiguous job submission.

use std::future::Future;
use std::time::{Duration, Instant};

/// How an operation is retried; [`RetryPolicy::run`] runs it. The client
/// retries idempotent requests with one; kick's watcher, which turns the
/// client's own retries off, runs its calls with another.
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

    /// Runs `op` until it succeeds, `retry` calls its error final (`None`),
    /// the attempts are used up, or the next wait would end past
    /// `max_elapsed`; then returns the last error. `retry` gives the least
    /// wait the server asked for (`Retry-After`), honoured up to `max_delay`.
    /// The worst case is `max_elapsed` plus the time of the last attempt.
    pub async fn run<T, E, F, Fut>(
        &self,
        mut op: F,
        mut retry: impl FnMut(&E) -> Option<Duration>,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let error = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Some(at_least) = retry(&error) else {
                return Err(error);
            };
            let delay = self.delay(attempt).max(at_least.min(self.max_delay));
            if attempt >= self.max_attempts || started.elapsed() + delay > self.max_elapsed {
                return Err(error);
            }
            tracing::debug!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
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

    #[tokio::test]
    async fn run_stops_at_final_errors_attempts_and_the_budget() {
        let p = RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_elapsed: Duration::from_secs(5),
            submit_settle: Duration::ZERO,
        };
        let mut calls = 0;
        let r: Result<(), String> = p
            .run(
                || {
                    calls += 1;
                    std::future::ready(Err(format!("try {calls}")))
                },
                |_| Some(Duration::ZERO),
            )
            .await;
        assert_eq!(r.unwrap_err(), "try 4");
        let mut calls = 0;
        let r: Result<(), String> = p
            .run(
                || {
                    calls += 1;
                    std::future::ready(Err("final".to_owned()))
                },
                |_| None,
            )
            .await;
        assert_eq!((r.unwrap_err().as_str(), calls), ("final", 1));
        let mut calls = 0;
        let r = p
            .run(
                || {
                    calls += 1;
                    std::future::ready(if calls < 3 { Err("no") } else { Ok(calls) })
                },
                |_| Some(Duration::ZERO),
            )
            .await;
        assert_eq!(r, Ok(3));
        let budget = RetryPolicy {
            max_attempts: u32::MAX,
            max_elapsed: Duration::from_millis(30),
            ..p
        };
        let start = Instant::now();
        let r: Result<(), &str> = budget
            .run(|| std::future::ready(Err("down")), |_| Some(Duration::ZERO))
            .await;
        assert!(r.is_err() && start.elapsed() < Duration::from_secs(1));
    }

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
