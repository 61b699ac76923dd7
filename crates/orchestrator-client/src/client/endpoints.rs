//! One method per endpoint of the Orchestrator API.

use orchestrator_types::{
    EventList, InventoryList, InventoryNode, InventoryRequest, Job, JobList, JobNode, JobReport,
    NodeList, StopRequest, StopResponse, TaskDetails, TaskList,
};
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::transport::to_body;
use super::{Client, JobsQuery, NodesQuery};
use crate::error::Error;

impl Client {
    /// `GET /orchestrator/v1`: service metadata; a cheap connectivity and token check.
    pub async fn root(&self) -> Result<serde_json::Value, Error> {
        self.get(&[], &[]).await
    }
    /// `POST /command/stop`; `force` ends running nodes too. Stopping is
    /// idempotent on the server, so this is retried like a read.
    pub async fn stop(&self, job: &str, force: bool) -> Result<StopResponse, Error> {
        let body = StopRequest {
            job: job_id(job)?.to_owned(),
            force: force.then_some(true),
        };
        let url = self.url(&["command", "stop"], &[])?;
        self.call(Method::POST, url, Some(to_body(&body)?)).await
    }

    /// `GET /jobs/:id`. `job` is the job number (a full job URL works too).
    pub async fn job(&self, job: &str) -> Result<Job, Error> {
        self.get(&["jobs", job_id(job)?], &[]).await
    }

    /// `GET /jobs`.
    pub async fn jobs(&self, q: &JobsQuery) -> Result<JobList, Error> {
        let params = listing(q.limit, q.offset, &q.order_by, &q.order, &q.job_type);
        self.get(&["jobs"], &params).await
    }

    /// One page of `GET /jobs/:id/nodes`.
    pub async fn nodes_page(&self, job: &str, q: &NodesQuery) -> Result<NodeList, Error> {
        self.nodes_page_as(job, q).await
    }

    /// [`Client::nodes_page`] with the results held as `R`, e.g.
    /// `Box<serde_json::value::RawValue>` to keep large results as the
    /// server's text instead of building values from them.
    pub async fn nodes_page_as<R: DeserializeOwned>(
        &self,
        job: &str,
        q: &NodesQuery,
    ) -> Result<NodeList<R>, Error> {
        let mut params = Vec::new();
        push(&mut params, "limit", q.limit);
        push(&mut params, "offset", q.offset);
        push(&mut params, "order_by", q.order_by.as_ref());
        push(&mut params, "order", q.order.as_ref());
        push(&mut params, "state", q.state.as_ref());
        self.get(&["jobs", job_id(job)?, "nodes"], &params).await
    }

    /// Every node of a job, fetched lazily `page_size` at a time (one page
    /// in memory), ordered by name. Ends after the first error.
    pub fn nodes(
        &self,
        job: &str,
        page_size: u64,
    ) -> impl futures::Stream<Item = Result<JobNode, Error>> + Send + Unpin + 'static {
        crate::pages::nodes(self.clone(), job.to_owned(), page_size)
    }

    /// `GET /jobs/:id/events?start=N` (N = last seen id + 1; `None` from the start).
    pub async fn events(&self, job: &str, start: Option<u64>) -> Result<EventList, Error> {
        let mut params = Vec::new();
        push(&mut params, "start", start);
        self.get(&["jobs", job_id(job)?, "events"], &params).await
    }

    /// `GET /jobs/:id/report`.
    pub async fn report(&self, job: &str) -> Result<JobReport, Error> {
        self.get(&["jobs", job_id(job)?, "report"], &[]).await
    }

    /// `GET /inventory`: the nodes connected to the PCP broker.
    pub async fn inventory(&self) -> Result<InventoryList, Error> {
        self.get(&["inventory"], &[]).await
    }

    /// `POST /inventory`: one entry per named node, connected or not. A
    /// read, so retried like one.
    pub async fn inventory_nodes(&self, nodes: &[String]) -> Result<InventoryList, Error> {
        let body = InventoryRequest {
            nodes: nodes.to_vec(),
        };
        let url = self.url(&["inventory"], &[])?;
        self.call(Method::POST, url, Some(to_body(&body)?)).await
    }

    /// `GET /inventory/:node`.
    pub async fn inventory_node(&self, node: &str) -> Result<InventoryNode, Error> {
        let node = node.trim();
        if matches!(node, "" | "." | "..") {
            return Err(Error::Usage {
                message: format!("{node:?} is not a certname"),
            });
        }
        self.get(&["inventory", node], &[]).await
    }

    /// `GET /tasks?environment=`.
    pub async fn tasks(&self, environment: Option<&str>) -> Result<TaskList, Error> {
        let mut params = Vec::new();
        push(&mut params, "environment", environment);
        self.get(&["tasks"], &params).await
    }

    /// `GET /tasks/:module/:task`; `name` is `module::task`, or `module`
    /// for the module's `init` task.
    pub async fn task(&self, name: &str, environment: Option<&str>) -> Result<TaskDetails, Error> {
        let (module, task) = split_task_name(name)?;
        let mut params = Vec::new();
        push(&mut params, "environment", environment);
        self.get(&["tasks", module, task], &params).await
    }
}

/// The paging, ordering and type parameters of the job listings (`GET /jobs`,
/// `GET /scheduled_jobs/environment_jobs`).
pub(super) fn listing(
    limit: Option<u64>,
    offset: Option<u64>,
    order_by: &Option<String>,
    order: &Option<String>,
    job_type: &Option<String>,
) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    push(&mut params, "limit", limit);
    push(&mut params, "offset", offset);
    push(&mut params, "order_by", order_by.as_ref());
    push(&mut params, "order", order.as_ref());
    push(&mut params, "type", job_type.as_ref());
    params
}

pub(super) fn push(
    params: &mut Vec<(&'static str, String)>,
    key: &'static str,
    value: Option<impl ToString>,
) {
    if let Some(v) = value {
        params.push((key, v.to_string()));
    }
}

/// A job number from a number or a job URL (`.../jobs/81` → `81`), as
/// users paste either. Job ids are integers; checking that here also keeps
/// `..` and the like out of request paths.
fn job_id(job: &str) -> Result<&str, Error> {
    let trimmed = job.trim().trim_end_matches('/');
    let id = trimmed.rsplit('/').next().unwrap_or(trimmed);
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Usage {
            message: format!(
                "{job:?} is not a job id; job ids are numbers, as `kick job list` shows them"
            ),
        });
    }
    Ok(id)
}

fn split_task_name(name: &str) -> Result<(&str, &str), Error> {
    let parts: Vec<&str> = name.trim().split("::").collect();
    let (module, task) = match parts.as_slice() {
        [m] => (*m, "init"),
        [m, t] => (*m, *t),
        _ => ("", ""),
    };
    // Puppet's naming rule for modules and tasks; it also keeps `..` and
    // `/` out of the request path.
    let valid = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if !valid(module) || !valid(task) {
        return Err(Error::Usage {
            message: format!(
                "{name:?} is not a task name; use module::task, or module for its init task"
            ),
        });
    }
    Ok((module, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_and_task_names() {
        assert_eq!(job_id("81").unwrap(), "81");
        assert_eq!(job_id(" 81 ").unwrap(), "81");
        for bad in ["", "..", "abc", "81/../1x", "-1"] {
            assert!(matches!(job_id(bad), Err(Error::Usage { .. })), "{bad}");
        }
        assert_eq!(
            job_id("https://pe:8143/orchestrator/v1/jobs/81/").unwrap(),
            "81"
        );
        assert_eq!(
            split_task_name("psick::puppet_agent").unwrap(),
            ("psick", "puppet_agent")
        );
        assert_eq!(split_task_name("package").unwrap(), ("package", "init"));
        assert!(split_task_name("a::b::c").is_err());
        assert!(split_task_name("::x").is_err());
        assert!(split_task_name("..").is_err());
        assert!(split_task_name("Mod::x").is_err());
        assert!(split_task_name("a/b::c").is_err());
    }
}
