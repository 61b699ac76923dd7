//! The client: one method per endpoint, on top of one exchange function
//! that classifies failures as "not sent", "maybe sent" or "answered".

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator_types::{
    ApiError, DeployRequest, EventList, InventoryList, InventoryNode, InventoryRequest, Job,
    JobList, JobNode, JobRef, JobReport, NodeList, StopRequest, StopResponse, TaskDetails,
    TaskList, TaskRequest,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::config::{Settings, Warning};
use crate::error::{CUT_OFF, Error, chain, excerpt, hint_for};
use crate::retry::RetryPolicy;
use crate::token::{Token, read_token_file};

/// Largest response body accepted (a page of 1,000 nodes with 20 KiB of
/// output each is about 21 MiB).
const MAX_BODY_BYTES: usize = 256 << 20;

/// Longest body excerpt quoted in an error message.
const EXCERPT_CHARS: usize = 200;

/// A typed client for one orchestrator. Cheap to clone (the connection pool
/// and settings are shared).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    base_str: String,
    token: Option<Token>,
    token_file: Option<PathBuf>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base_str)
            .field("token", &self.inner.token)
            .field("token_file", &self.inner.token_file)
            .finish_non_exhaustive()
    }
}

/// Query parameters of `GET /jobs`; `None` leaves the server's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobsQuery {
    /// Page size.
    pub limit: Option<u64>,
    /// Items to skip.
    pub offset: Option<u64>,
    /// `owner`, `timestamp`, `environment`, `name` or `state`.
    pub order_by: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    /// `deploy`, `task` or `plan_task`.
    pub job_type: Option<String>,
}

/// Query parameters of `GET /jobs/:id/nodes`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodesQuery {
    /// Page size.
    pub limit: Option<u64>,
    /// Items to skip.
    pub offset: Option<u64>,
    /// `name`, `duration`, `state`, `start_timestamp` or `finish_timestamp`.
    pub order_by: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    /// Only nodes in this state (e.g. `failed`).
    pub state: Option<String>,
}

/// Why one exchange did not produce a response.
struct Failure {
    error: Error,
    /// The request may have reached the server (false only when no
    /// connection was ever made).
    maybe_sent: bool,
    /// Trying again may help.
    transient: bool,
}

/// The key under `userdata` holding kick's submission marker.
pub const MARKER_KEY: &str = "kick_marker";

impl Client {
    /// Builds a client: reads the token file, pins the CA, and returns the
    /// warnings the user should see (insecure TLS, token file permissions).
    pub fn new(settings: &Settings) -> Result<(Client, Vec<Warning>), Error> {
        let base = parse_base(&settings.service_url)?;
        let mut warnings = Vec::new();
        let http = crate::tls::http_client(settings, &base, &mut warnings)?;
        let token = match &settings.token_file {
            Some(path) => {
                let (token, w) = read_token_file(path)?;
                warnings.extend(w);
                Some(token)
            }
            None => None,
        };
        let base_str = base.as_str().trim_end_matches('/').to_owned();
        Ok((
            Client {
                inner: Arc::new(Inner {
                    http,
                    base,
                    base_str,
                    token,
                    token_file: settings.token_file.clone(),
                    retry: settings.retry.clone(),
                    timeout: settings.request_timeout,
                }),
            },
            warnings,
        ))
    }

    /// `https://host:8143/orchestrator/v1`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_str
    }

    /// `GET /orchestrator/v1`: service metadata; a cheap connectivity and token check.
    pub async fn root(&self) -> Result<serde_json::Value, Error> {
        self.get(&[], &[]).await
    }

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
        let mut params = Vec::new();
        push(&mut params, "limit", q.limit);
        push(&mut params, "offset", q.offset);
        push(&mut params, "order_by", q.order_by.as_ref());
        push(&mut params, "order", q.order.as_ref());
        push(&mut params, "type", q.job_type.as_ref());
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

    // ---- plumbing -------------------------------------------------------

    fn url(&self, segments: &[&str], params: &[(&'static str, String)]) -> Result<Url, Error> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config {
                message: format!("{} cannot be a base URL", self.inner.base_str),
            })?
            .pop_if_empty()
            .extend(segments);
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        Ok(url)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        params: &[(&'static str, String)],
    ) -> Result<T, Error> {
        let url = self.url(segments, params)?;
        self.call(Method::GET, url, None).await
    }

    /// An idempotent request: retried on connection failures, timeouts, cut
    /// off bodies and 502/503/504, within the retry policy.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        let policy = &self.inner.retry;
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let outcome = match self.exchange(&method, &url, body.as_deref()).await {
                Ok((status, bytes, _)) if status.is_success() => return decode(status, &bytes),
                Ok((status, bytes, retry_after)) => {
                    let error = self.status_error(status, &bytes);
                    if !retryable_status(status) {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(f) if f.transient => (f.error, None),
                Err(f) => return Err(f.error),
            };
            let (error, retry_after) = outcome;
            // A server's Retry-After is honoured up to the policy's cap.
            let delay = policy
                .delay(attempt)
                .max(retry_after.unwrap_or_default().min(policy.max_delay));
            if attempt >= policy.max_attempts || started.elapsed() + delay > policy.max_elapsed {
                return Err(error);
            }
            tracing::debug!(
                method = %method,
                path = url.path(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying orchestrator request"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
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
        let bytes = to_body(body)?;
        let policy = &self.inner.retry;
        let started = Instant::now();
        let mut attempt = 1;
        let cause = loop {
            match self.exchange(&Method::POST, &url, Some(&bytes)).await {
                Ok((status, body, _)) if status.is_success() => {
                    match serde_json::from_slice::<orchestrator_types::JobCreated>(&body) {
                        Ok(created) => return Ok(created.job),
                        Err(e) => {
                            break format!(
                                "the orchestrator accepted the request (HTTP {}) but its answer could not be read ({e})",
                                status.as_u16()
                            );
                        }
                    }
                }
                // A 5xx may come from a proxy after the orchestrator created the job.
                Ok((status, body, _)) if status.is_server_error() => {
                    break self.status_error(status, &body).to_string();
                }
                // Any other answer is the orchestrator's (or a proxy's) clear "no".
                Ok((status, body, _)) => return Err(self.status_error(status, &body)),
                Err(f) if f.maybe_sent => break f.error.to_string(),
                Err(f) if f.transient => {
                    let delay = policy.delay(attempt);
                    if attempt >= policy.max_attempts
                        || started.elapsed() + delay > policy.max_elapsed
                    {
                        return Err(f.error);
                    }
                    tracing::debug!(
                        command,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = %f.error,
                        "job submission could not connect; sending again"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(f) => return Err(f.error),
            }
        };
        tracing::debug!(command, marker, %cause, "job submission outcome unknown; looking the job up by marker");
        self.find_submitted(job_type, marker, cause).await
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
                tokio::time::sleep(self.inner.retry.submit_settle).await;
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

    /// One HTTP exchange, the whole body read; also returns the
    /// `Retry-After` delay if the server sent one in seconds.
    async fn exchange(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
    ) -> Result<(StatusCode, Vec<u8>, Option<Duration>), Failure> {
        let started = Instant::now();
        let mut req = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .header(ACCEPT, "application/json");
        if let Some(token) = &self.inner.token {
            req = req.header("X-Authentication", token.header().clone());
        }
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let log = |status: Option<u16>, outcome: &str| {
            tracing::debug!(
                method = %method,
                path = url.path(),
                query = url.query().unwrap_or(""),
                status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                outcome,
                "orchestrator request"
            );
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let f = self.send_failure(url, e);
                log(None, "no response");
                return Err(f);
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match read_body(resp).await {
            Ok(Ok(bytes)) => {
                log(Some(status.as_u16()), "ok");
                Ok((status, bytes, retry_after))
            }
            Ok(Err(too_big)) => {
                log(Some(status.as_u16()), "body too large");
                Err(Failure {
                    error: too_big,
                    maybe_sent: true,
                    transient: false,
                })
            }
            Err(e) => {
                log(Some(status.as_u16()), "body failed");
                Err(self.body_failure(url, status, e))
            }
        }
    }

    fn send_failure(&self, url: &Url, e: reqwest::Error) -> Failure {
        let detail = chain(&e);
        let url = url_for_message(url);
        if e.is_connect() {
            if looks_like_tls(&detail) {
                return Failure {
                    error: Error::Tls { url, detail },
                    maybe_sent: false,
                    transient: false,
                };
            }
            // Includes connect timeouts: nothing reached the server.
            return Failure {
                error: Error::Connect {
                    url,
                    detail,
                    source: e.without_url(),
                },
                maybe_sent: false,
                transient: true,
            };
        }
        if e.is_timeout() {
            return Failure {
                error: Error::Timeout {
                    url,
                    after: self.inner.timeout,
                },
                maybe_sent: true,
                transient: true,
            };
        }
        // The connection broke after the request (or part of it) was written.
        Failure {
            error: Error::Connect {
                url,
                detail: format!("the connection broke before an answer came ({detail})"),
                source: e.without_url(),
            },
            maybe_sent: true,
            transient: true,
        }
    }

    fn body_failure(&self, url: &Url, status: StatusCode, e: reqwest::Error) -> Failure {
        let error = if e.is_timeout() {
            Error::Timeout {
                url: url_for_message(url),
                after: self.inner.timeout,
            }
        } else {
            Error::BadResponse {
                status: status.as_u16(),
                reason: format!("{CUT_OFF} before its end ({})", chain(&e)),
                body_excerpt: String::new(),
            }
        };
        Failure {
            error,
            maybe_sent: true,
            transient: true,
        }
    }

    /// The error for a non-2xx answer: the API's error body if there is
    /// one, else a description of what came instead.
    fn status_error(&self, status: StatusCode, body: &[u8]) -> Error {
        let code = status.as_u16();
        if let Ok(error) = serde_json::from_slice::<ApiError>(body)
            && !error.kind.is_empty()
        {
            let hint = hint_for(code, &error, self.inner.token_file.as_deref());
            return Error::Api {
                status: code,
                error,
                hint,
            };
        }
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim_start().to_ascii_lowercase();
        let mut reason = if body.iter().all(u8::is_ascii_whitespace) {
            "the error response has an empty body".to_owned()
        } else if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html") {
            "an HTML page came back instead of the API's JSON, probably from a proxy or load balancer, or from a service that is not the orchestrator".to_owned()
        } else {
            "the error response is not the API's JSON error format".to_owned()
        };
        if let Some(canonical) = status.canonical_reason() {
            reason = format!("{canonical}: {reason}");
        }
        if matches!(code, 404 | 405) {
            reason.push_str(
                "; check that the service URL points at the orchestrator (https://<primary>:8143)",
            );
        }
        if code == 401 || code == 403 {
            reason.push_str("; check your token (`puppet access login`) and RBAC permissions");
        }
        Error::BadResponse {
            status: code,
            reason,
            body_excerpt: excerpt(body, EXCERPT_CHARS),
        }
    }
}

/// Reads a whole body, refusing more than [`MAX_BODY_BYTES`] so a broken
/// server or proxy cannot exhaust memory.
async fn read_body(mut resp: reqwest::Response) -> Result<Result<Vec<u8>, Error>, reqwest::Error> {
    let status = resp.status().as_u16();
    let too_big = || Error::BadResponse {
        status,
        reason: format!(
            "the response is larger than {} MiB; ask for smaller pages",
            MAX_BODY_BYTES >> 20
        ),
        body_excerpt: String::new(),
    };
    let expected = resp.content_length().unwrap_or(0);
    if expected > MAX_BODY_BYTES as u64 {
        return Ok(Err(too_big()));
    }
    let mut body = Vec::with_capacity(expected as usize);
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(Err(too_big()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(body))
}

fn decode<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::BadResponse {
        status: status.as_u16(),
        reason: if e.is_eof() {
            format!("the response body ends early ({e})")
        } else {
            format!("the response is not what the Orchestrator API sends ({e})")
        },
        body_excerpt: excerpt(body, EXCERPT_CHARS),
    })
}

fn to_body<B: serde::Serialize>(body: &B) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body).map_err(|e| Error::Usage {
        message: format!("cannot encode the request body: {e}"),
    })
}

fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

/// rustls reports certificate problems as connect errors; the wording is
/// the only stable thing reqwest exposes about them.
fn looks_like_tls(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "alert",
    ]
    .iter()
    .any(|w| d.contains(w))
}

/// The URL as shown in messages: scheme, host, port and path only.
fn url_for_message(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn push(params: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<impl ToString>) {
    if let Some(v) = value {
        params.push((key, v.to_string()));
    }
}

fn parse_base(service_url: &str) -> Result<Url, Error> {
    let bad = |why: &str| Error::Config {
        message: format!(
            "the service URL {service_url:?} {why}; expected something like https://<primary>:8143"
        ),
    };
    let mut url =
        Url::parse(service_url.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("must start with https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // The message must not repeat the password (a token pasted there, say).
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        return Err(Error::Config {
            message: format!(
                "the service URL {:?} must not contain credentials (the token file is used); expected something like https://<primary>:8143",
                url.as_str()
            ),
        });
    }
    url.set_query(None);
    url.set_fragment(None);
    // PE's Ruby client appends `orchestrator/v1`; its older releases took a
    // URL that already ended in it. Accept both.
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.ends_with(orchestrator_types::API_PREFIX) {
        path
    } else {
        format!("{path}{}", orchestrator_types::API_PREFIX)
    };
    url.set_path(&path);
    Ok(url)
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

/// Puts kick's marker into `userdata.kick_marker` and the description, and
/// returns it; a marker the caller already set is kept.
fn ensure_marker(
    userdata: &mut Option<serde_json::Map<String, serde_json::Value>>,
    description: &mut Option<String>,
) -> String {
    let data = userdata.get_or_insert_with(Default::default);
    let marker = match data.get(MARKER_KEY).and_then(serde_json::Value::as_str) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => uuid::Uuid::new_v4().simple().to_string(),
    };
    data.insert(MARKER_KEY.to_owned(), marker.clone().into());
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
    fn base_url_forms() {
        for (input, want) in [
            ("https://pe:8143", "https://pe:8143/orchestrator/v1"),
            ("https://pe:8143/", "https://pe:8143/orchestrator/v1"),
            (
                "https://pe:8143/orchestrator/v1/",
                "https://pe:8143/orchestrator/v1",
            ),
            (
                "http://127.0.0.1:9000/prefix",
                "http://127.0.0.1:9000/prefix/orchestrator/v1",
            ),
        ] {
            assert_eq!(parse_base(input).unwrap().as_str(), want, "{input}");
        }
        for bad in ["pe:8143", "ftp://pe", "https://u:p@pe:8143", "not a url"] {
            assert!(
                matches!(parse_base(bad), Err(Error::Config { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_service_url_with_credentials_is_refused_without_repeating_them() {
        let err = parse_base("https://admin:s3cr3t@pe:8143/?token=t0k3n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not contain credentials"), "{err}");
        assert!(err.contains("pe:8143"), "{err}");
        assert!(!err.contains("s3cr3t") && !err.contains("t0k3n"), "{err}");
    }

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
    }
}
