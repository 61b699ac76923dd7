//! The orchestrator calls the watcher needs, as a trait so that the watcher
//! can be driven by a scripted fake in unit tests.

use std::future::Future;

use orchestrator_client::{Client, Error, NodesQuery};
use orchestrator_types::{EventList, Job, NodeList, NodeState, StopResponse};

use crate::outcome::RawResult;

/// A page of nodes whose results are kept as the server wrote them.
pub type RawNodeList = NodeList<RawResult>;

/// The calls the job watcher makes. The futures are `Send` so that the
/// next page of results can be fetched on another task.
pub trait Api {
    /// `GET /jobs/:id`.
    fn job(&self, job: &str) -> impl Future<Output = Result<Job, Error>> + Send;
    /// `GET /jobs/:id/events?start=N`.
    fn events(
        &self,
        job: &str,
        start: Option<u64>,
    ) -> impl Future<Output = Result<EventList, Error>> + Send;
    /// One page of `GET /jobs/:id/nodes`, ordered by name.
    fn nodes_page(
        &self,
        job: &str,
        offset: u64,
        limit: u64,
    ) -> impl Future<Output = Result<NodeList, Error>> + Send;
    /// [`Api::nodes_page`] with the results kept as the server wrote them
    /// ([`RawResult`]), for the JSON formats, which copy them through:
    /// parsing a large result into a value and serializing it again costs
    /// more than fetching it. The default converts parsed pages (fakes).
    fn nodes_page_raw(
        &self,
        job: &str,
        offset: u64,
        limit: u64,
    ) -> impl Future<Output = Result<RawNodeList, Error>> + Send
    where
        Self: Sync,
    {
        async move {
            let page = self.nodes_page(job, offset, limit).await?;
            Ok(NodeList {
                items: page
                    .items
                    .into_iter()
                    .map(|n| n.map_result(|r| r.map(RawResult::from_value)))
                    .collect(),
                next_events: page.next_events,
                pagination: page.pagination,
            })
        }
    }
    /// The `limit` nodes in `state` that ended last (`GET /jobs/:id/nodes`
    /// ordered by finish time, newest first), to report nodes whose events
    /// carried no result. The state filter keeps out nodes without a finish
    /// time, which a database may sort first.
    fn recent_nodes(
        &self,
        job: &str,
        state: NodeState,
        limit: u64,
    ) -> impl Future<Output = Result<NodeList, Error>> + Send;
    /// `POST /command/stop`.
    fn stop(
        &self,
        job: &str,
        force: bool,
    ) -> impl Future<Output = Result<StopResponse, Error>> + Send;
}

impl Api for Client {
    async fn job(&self, job: &str) -> Result<Job, Error> {
        Client::job(self, job).await
    }

    async fn events(&self, job: &str, start: Option<u64>) -> Result<EventList, Error> {
        Client::events(self, job, start).await
    }

    async fn nodes_page(&self, job: &str, offset: u64, limit: u64) -> Result<NodeList, Error> {
        Client::nodes_page(self, job, &NodesQuery::by_name(offset, limit)).await
    }

    async fn nodes_page_raw(
        &self,
        job: &str,
        offset: u64,
        limit: u64,
    ) -> Result<RawNodeList, Error> {
        Client::nodes_page_as(self, job, &NodesQuery::by_name(offset, limit)).await
    }

    async fn recent_nodes(
        &self,
        job: &str,
        state: NodeState,
        limit: u64,
    ) -> Result<NodeList, Error> {
        let q = NodesQuery {
            order_by: Some("finish_timestamp".into()),
            order: Some("desc".into()),
            state: Some(state.as_str().into()),
            ..NodesQuery::by_name(0, limit)
        };
        Client::nodes_page(self, job, &q).await
    }

    async fn stop(&self, job: &str, force: bool) -> Result<StopResponse, Error> {
        Client::stop(self, job, force).await
    }
}

/// How the watcher should treat a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Stop now: the token, the configuration or the request is wrong.
    Fatal,
    /// The endpoint answered but cannot serve this (404, 5xx, garbage):
    /// for events, switch to following the job's state.
    Unavailable,
    /// No answer (network, timeout): try again later.
    Transient,
}

/// Classifies a client error for the watcher.
pub fn classify(e: &Error) -> ErrorClass {
    if e.is_auth() {
        return ErrorClass::Fatal;
    }
    match e {
        Error::Api { status, .. } if *status == 404 || *status >= 500 => ErrorClass::Unavailable,
        Error::Api { .. } => ErrorClass::Fatal,
        Error::BadResponse { status, .. } if *status == 0 => ErrorClass::Transient,
        Error::BadResponse { .. } => ErrorClass::Unavailable,
        Error::Connect { .. } | Error::Timeout { .. } => ErrorClass::Transient,
        _ => ErrorClass::Fatal,
    }
}
