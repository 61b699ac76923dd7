//! Job submissions, at most once (see the crate docs): a marker in each
//! submission, and a look-up by marker when the outcome is unknown.

use std::time::Duration;

use orchestrator_types::{DeployRequest, Job, JobRef, TaskRequest};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::transport::{Attempt, to_body};
use super::{Client, JobsQuery};
use crate::error::Error;

/// The key under `userdata` holding kick's submission marker.
pub const MARKER_KEY: &str = "kick_marker";

/// What became of a submission that was sent.
pub(super) enum Sent<T> {
    /// The orchestrator created the job; its answer.
    Created(T),
    /// It may or may not have: why.
    Unknown(String),
}

impl Client {
    /// `POST /command/task`, at most once (see the crate docs on submissions).
    pub async fn run_task(&self, mut req: TaskRequest) -> Result<JobRef, Error> {
        let marker = ensure_marker(&mut req.userdata, &mut req.description);
        self.submit("task", "task", &req, &marker).await
    }

    /// `POST /command/deploy`, at most once (see the crate docs on submissions).
    pub async fn deploy(&self, mut req: DeployRequest) -> Result<JobRef, Error> {
        let marker = ensure_marker(&mut req.userdata, &mut req.description);
        self.submit("deploy", "deploy", &req, &marker).await
    }

    /// Submits a job at most once. A failure that leaves open whether the
    /// server created the job (the request was sent but no clear answer
    /// came back) is settled by looking the job up by its marker; only a
    /// failure before anything was sent is retried.
    async fn submit<B: serde::Serialize>(
        &self,
        command: &str,
        job_type: &str,
        body: &B,
        marker: &str,
    ) -> Result<JobRef, Error> {
        let url = self.url(&["command", command], &[])?;
        let sent = self.send_at_most_once::<orchestrator_types::JobCreated>(command, &url, body);
        match sent.await? {
            Sent::Created(created) => Ok(created.job),
            Sent::Unknown(cause) => {
                tracing::debug!(command, marker, %cause, "job submission outcome unknown; looking the job up by marker");
                self.find_submitted(job_type, marker, cause).await
            }
        }
    }

    /// POSTs `body` to `url` without ever sending it twice once it may have
    /// reached the server: [`Sent::Unknown`] says why the outcome is open.
    pub(super) async fn send_at_most_once<T: DeserializeOwned>(
        &self,
        what: &str,
        url: &Url,
        body: &impl serde::Serialize,
    ) -> Result<Sent<T>, Error> {
        let bytes = to_body(body)?;
        let attempt = || async {
            match self.exchange(&Method::POST, url, Some(&bytes)).await {
                Ok((status, body, _)) if status.is_success() => {
                    Ok(match serde_json::from_slice::<T>(&body) {
                        Ok(created) => Sent::Created(created),
                        Err(e) => Sent::Unknown(format!(
                            "the orchestrator accepted the request (HTTP {}) but its answer could not be read ({e})",
                            status.as_u16()
                        )),
                    })
                }
                // A 5xx may come from a proxy after the orchestrator created the job.
                Ok((status, body, _)) if status.is_server_error() => {
                    Ok(Sent::Unknown(self.status_error(status, &body).to_string()))
                }
                // Any other answer is the orchestrator's (or a proxy's) clear "no".
                Ok((status, body, _)) => Err(Attempt::last(self.status_error(status, &body))),
                Err(f) if f.maybe_sent => Ok(Sent::Unknown(f.error.to_string())),
                // Nothing reached the server: sending again is safe.
                Err(f) => Err(Attempt {
                    retry: f.transient.then_some(Duration::ZERO),
                    error: f.error,
                }),
            }
        };
        let span = tracing::debug_span!("submission", what);
        self.retry
            .run(attempt, |a| a.retry)
            .instrument(span)
            .await
            .map_err(|a| a.error)
    }

    async fn find_submitted(
        &self,
        job_type: &str,
        marker: &str,
        cause: String,
    ) -> Result<JobRef, Error> {
        let query = JobsQuery {
            limit: Some(50),
            offset: None,
            order_by: Some("timestamp".to_owned()),
            order: Some("desc".to_owned()),
            job_type: Some(job_type.to_owned()),
        };
        let mut lookup_error = None;
        for round in 0..2 {
            if round == 1 {
                tokio::time::sleep(self.retry.submit_settle).await;
            }
            match self.jobs(&query).await {
                Ok(list) => {
                    if let Some(job) = list.items.into_iter().find(|j| carries_marker(j, marker)) {
                        tracing::debug!(job = %job.name, marker, "found the submitted job by marker");
                        return Ok(JobRef {
                            id: job.id,
                            name: job.name,
                        });
                    }
                    lookup_error = None;
                }
                Err(e) => lookup_error = Some(e),
            }
        }
        let cause = match lookup_error {
            Some(e) => format!("{cause}; looking the job up failed too: {e}"),
            None => format!("{cause}; no job carrying its marker is listed"),
        };
        Err(Error::SubmitUncertain {
            marker: marker.to_owned(),
            cause,
        })
    }
}

/// Puts kick's marker into `userdata.kick_marker` and the description, and
/// returns it; a marker the caller already set is kept.
fn ensure_marker(
    userdata: &mut Option<serde_json::Map<String, serde_json::Value>>,
    description: &mut Option<String>,
) -> String {
    let marker = ensure_userdata_marker(userdata);
    let tag = marker_tag(&marker);
    match description {
        Some(d) if d.contains(&tag) => {}
        Some(d) if d.is_empty() => *d = tag,
        Some(d) => {
            d.push(' ');
            d.push_str(&tag);
        }
        None => *description = Some(tag),
    }
    marker
}

/// Puts kick's marker into `userdata.kick_marker` only, and returns it; a
/// marker the caller already set is kept.
pub(super) fn ensure_userdata_marker(
    userdata: &mut Option<serde_json::Map<String, serde_json::Value>>,
) -> String {
    let data = userdata.get_or_insert_with(Default::default);
    let marker = match data.get(MARKER_KEY).and_then(serde_json::Value::as_str) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => uuid::Uuid::new_v4().simple().to_string(),
    };
    data.insert(MARKER_KEY.to_owned(), marker.clone().into());
    marker
}

/// `description` without the `[kick:<marker>]` tag kick adds, for showing.
pub fn strip_marker(description: &str) -> &str {
    let trimmed = description.trim_end();
    match trimmed.rfind("[kick:") {
        Some(at) if trimmed.ends_with(']') => trimmed[..at].trim_end(),
        _ => description,
    }
}

fn marker_tag(marker: &str) -> String {
    format!("[kick:{marker}]")
}

/// Whether a listed job is the one submitted with `marker`: PE stores
/// userdata under `options` on some versions and at the top on others, and
/// servers without userdata support still keep the description.
fn carries_marker(job: &Job, marker: &str) -> bool {
    let in_userdata = |v: Option<&serde_json::Value>| {
        v.and_then(|u| u.get(MARKER_KEY))
            .and_then(serde_json::Value::as_str)
            == Some(marker)
    };
    let tag = marker_tag(marker);
    in_userdata(job.options.get("userdata"))
        || in_userdata(job.userdata.as_ref())
        || job.description.as_deref().is_some_and(|d| d.contains(&tag))
        || job
            .options
            .get("description")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|d| d.contains(&tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_added_once_and_kept() {
        let mut ud = None;
        let mut desc = Some("nightly".to_owned());
        let m = ensure_marker(&mut ud, &mut desc);
        assert_eq!(m.len(), 32);
        assert_eq!(
            desc.as_deref(),
            Some(format!("nightly [kick:{m}]").as_str())
        );
        let again = ensure_marker(&mut ud, &mut desc);
        assert_eq!(again, m);
        assert_eq!(
            desc.as_deref(),
            Some(format!("nightly [kick:{m}]").as_str())
        );
        let mut none = None;
        let mut ud2 = None;
        let m2 = ensure_marker(&mut ud2, &mut none);
        assert_ne!(m, m2);
        assert_eq!(none, Some(format!("[kick:{m2}]")));
        assert_eq!(strip_marker(&format!("nightly [kick:{m}]")), "nightly");
        assert_eq!(strip_marker(&format!("[kick:{m}]")), "");
        assert_eq!(strip_marker("plain [text]"), "plain [text]");
    }
}
