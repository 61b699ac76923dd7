//! The one layer that retries the watcher's calls. The client the watcher
//! is given makes one attempt per call ([`RetryPolicy::none`]); here each
//! call is run with [`WatchConfig::retry_policy`], and the poll loop gives
//! up after the same [`WatchConfig::give_up`].

use std::future::Future;

use orchestrator_client::RetryPolicy;

use super::WatchConfig;
use crate::api::{ErrorClass, classify};
use crate::error::Error;

/// Runs `call` until it succeeds, fails for good, or nothing succeeded for
/// [`WatchConfig::give_up`]; errors name job `job`.
pub(super) async fn retrying<T, F, Fut>(cfg: &WatchConfig, job: &str, call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, orchestrator_client::Error>>,
{
    cfg.retry_policy()
        .run(call, |e| {
            (classify(e) != ErrorClass::Fatal).then_some(std::time::Duration::ZERO)
        })
        .await
        .map_err(|e| gave_up(job, e))
}

/// The error for the failure `e` of a call about `job` that is not retried
/// (again).
pub(super) fn gave_up(job: &str, e: orchestrator_client::Error) -> Error {
    if classify(&e) == ErrorClass::Fatal {
        Error::Watch {
            job: job.to_owned(),
            source: Box::new(e),
        }
    } else {
        Error::LostContact {
            job: job.to_owned(),
            cause: e.to_string(),
        }
    }
}

impl WatchConfig {
    /// How each of the watcher's calls is retried: quickly at first, then
    /// every `2 × poll_max` at most, for [`WatchConfig::give_up`].
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: u32::MAX,
            initial_delay: self.poll_min.max(std::time::Duration::from_millis(100)),
            max_delay: self.poll_max * 2,
            max_elapsed: self.give_up,
            ..RetryPolicy::none()
        }
    }
}
