//! Scheduled jobs: `/scheduled_jobs/environment_jobs[/:id]`.
//!
//! Reads, the `PUT` (it sets fields to given values) and the `DELETE` are
//! retried like reads. The `POST` creates a scheduled job, so it is sent at
//! most once, as job submissions are: it carries a marker in
//! `userdata.kick_marker` (not in the description, which every run of the
//! schedule copies into its job), and when the outcome is unknown the
//! scheduled jobs are listed and the marker looked for.

use orchestrator_types::schedule::ScheduledJobCreated;
use orchestrator_types::{JobRef, ScheduleRequest, ScheduledJob, ScheduledJobList};
use reqwest::Method;

use super::Client;
use super::endpoints::listing;
use super::submit::{MARKER_KEY, Sent, ensure_userdata_marker};
use super::transport::to_body;
use crate::error::Error;

/// Page size used to read every scheduled job.
const PAGE: u64 = 100;
/// Most scheduled jobs read by [`Client::scheduled_jobs`], so that a server
/// paging wrongly cannot keep kick reading forever.
const MAX_SCHEDULED_JOBS: usize = 100_000;

/// Query parameters of `GET /scheduled_jobs/environment_jobs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduledJobsQuery {
    /// Page size.
    pub limit: Option<u64>,
    /// Items to skip.
    pub offset: Option<u64>,
    /// `next_run_time`, `environment`, `owner`, `name` or `type`.
    pub order_by: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    /// `deploy`, `task` or `plan`.
    pub job_type: Option<String>,
}

impl Client {
    /// One page of `GET /scheduled_jobs/environment_jobs`.
    pub async fn scheduled_jobs_page(
        &self,
        q: &ScheduledJobsQuery,
    ) -> Result<ScheduledJobList, Error> {
        let params = listing(q.limit, q.offset, &q.order_by, &q.order, &q.job_type);
        self.get(&["scheduled_jobs", "environment_jobs"], &params)
            .await
    }

    /// Every scheduled job, ordered by next run time, read page by page.
    pub async fn scheduled_jobs(&self) -> Result<Vec<ScheduledJob>, Error> {
        let mut all = Vec::new();
        loop {
            let offset = all.len() as u64;
            let q = ScheduledJobsQuery {
                limit: Some(PAGE),
                offset: Some(offset),
                order_by: Some("next_run_time".into()),
                order: Some("asc".into()),
                job_type: None,
            };
            let page = self.scheduled_jobs_page(&q).await?;
            let got = page.items.len() as u64;
            let pagination = page.pagination.unwrap_or_default();
            all.extend(page.items);
            let last = crate::pages::last_page(&pagination, offset, PAGE, got, "scheduled jobs")?;
            if last || all.len() >= MAX_SCHEDULED_JOBS {
                return Ok(all);
            }
        }
    }

    /// `GET /scheduled_jobs/environment_jobs/:id`; `id` is the number (a
    /// full URL works too).
    pub async fn scheduled_job(&self, id: &str) -> Result<ScheduledJob, Error> {
        self.get(
            &["scheduled_jobs", "environment_jobs", scheduled_id(id)?],
            &[],
        )
        .await
    }

    /// `PUT /scheduled_jobs/environment_jobs/:id` with the fields to change.
    pub async fn update_scheduled_job(
        &self,
        id: &str,
        change: &ScheduleRequest,
    ) -> Result<ScheduledJob, Error> {
        let url = self.url(
            &["scheduled_jobs", "environment_jobs", scheduled_id(id)?],
            &[],
        )?;
        self.call(Method::PUT, url, Some(to_body(change)?)).await
    }

    /// Enables or disables a scheduled job.
    pub async fn set_scheduled_job_enabled(
        &self,
        id: &str,
        enabled: bool,
    ) -> Result<ScheduledJob, Error> {
        let change = ScheduleRequest {
            enabled: Some(enabled),
            ..ScheduleRequest::default()
        };
        self.update_scheduled_job(id, &change).await
    }

    /// `DELETE /scheduled_jobs/environment_jobs/:id`. The job is looked up
    /// first, so an unknown id is the server's 404; a 404 from the delete
    /// itself then means it is gone already (an earlier attempt whose
    /// answer was lost, or someone else), which is what was asked.
    pub async fn delete_scheduled_job(&self, id: &str) -> Result<(), Error> {
        self.scheduled_job(id).await?;
        let url = self.url(
            &["scheduled_jobs", "environment_jobs", scheduled_id(id)?],
            &[],
        )?;
        match self.call::<()>(Method::DELETE, url, None).await {
            Err(Error::Api { status: 404, .. }) => Ok(()),
            other => other,
        }
    }

    /// `POST /scheduled_jobs/environment_jobs`, at most once (see the
    /// module docs).
    pub async fn schedule_job(&self, mut req: ScheduleRequest) -> Result<JobRef, Error> {
        let marker = ensure_userdata_marker(&mut req.userdata);
        let url = self.url(&["scheduled_jobs", "environment_jobs"], &[])?;
        let sent = self.send_at_most_once::<ScheduledJobCreated>("scheduled job", &url, &req);
        let cause = match sent.await? {
            Sent::Created(c) => return Ok(c.scheduled_job),
            Sent::Unknown(cause) => cause,
        };
        tracing::debug!(marker, %cause, "scheduling outcome unknown; looking the scheduled job up by marker");
        let found = self.scheduled_jobs().await.map(|all| {
            all.into_iter().find(|j| {
                j.userdata.get(MARKER_KEY).and_then(|m| m.as_str()) == Some(marker.as_str())
            })
        });
        match found {
            Ok(Some(j)) => Ok(JobRef {
                id: j.id,
                name: j.name,
            }),
            Ok(None) => Err(Error::ScheduleUncertain {
                marker,
                cause: format!("{cause}; no scheduled job carrying its marker is listed"),
            }),
            Err(e) => Err(Error::ScheduleUncertain {
                marker,
                cause: format!("{cause}; looking the scheduled job up failed too: {e}"),
            }),
        }
    }
}

/// A scheduled job's number from a number or its URL; checking it keeps
/// `..` and the like out of request paths.
fn scheduled_id(id: &str) -> Result<&str, Error> {
    let trimmed = id.trim().trim_end_matches('/');
    let n = trimmed.rsplit('/').next().unwrap_or(trimmed);
    if n.is_empty() || n.len() > 19 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Usage {
            message: format!(
                "{id:?} is not a scheduled job id; ids are numbers, as `kick schedule list` shows them"
            ),
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_ids_are_numbers_or_urls() {
        assert_eq!(scheduled_id(" 7 ").unwrap(), "7");
        assert_eq!(
            scheduled_id("https://pe:8143/orchestrator/v1/scheduled_jobs/environment_jobs/7")
                .unwrap(),
            "7"
        );
        for bad in ["", "..", "x", "-1", "99999999999999999999"] {
            assert!(scheduled_id(bad).is_err(), "{bad}");
        }
    }
}
