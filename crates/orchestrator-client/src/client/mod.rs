//! The client: [`endpoints`] has one method per endpoint, on top of the
//! [`transport`] (one exchange function that classifies failures as "not
//! sent", "maybe sent" or "answered", and the retry of idempotent requests);
//! [`submit`] holds the at-most-once protocol of job submissions;
//! [`schedules`] the scheduled-job endpoints; [`connections`] PE's Node
//! Inventory API (connection entries of SSH nodes).

mod connections;
mod endpoints;
mod schedules;
mod submit;
mod transport;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::config::{Settings, Warning};
use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::token::{Token, read_token_file};

pub use schedules::ScheduledJobsQuery;
pub use submit::{MARKER_KEY, strip_marker};

/// A typed client for one orchestrator. Cheap to clone (the connection pool
/// and settings are shared).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// How idempotent requests and unsent submissions are retried.
    retry: RetryPolicy,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    base_str: String,
    token: Option<Token>,
    token_file: Option<PathBuf>,
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

impl NodesQuery {
    /// A page of `limit` nodes from `offset`, ordered by name: a fixed order
    /// keeps pages stable while nodes change state.
    pub fn by_name(offset: u64, limit: u64) -> Self {
        Self {
            limit: Some(limit),
            offset: Some(offset),
            order_by: Some("name".to_owned()),
            order: Some("asc".to_owned()),
            state: None,
        }
    }
}

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
                    timeout: settings.request_timeout,
                }),
                retry: settings.retry.clone(),
            },
            warnings,
        ))
    }

    /// The same client sending `token` instead of a token file's: for a
    /// service started in-process, whose token is never written anywhere.
    pub fn with_token(self, token: crate::token::Token) -> Client {
        let inner = &self.inner;
        Client {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                base: inner.base.clone(),
                base_str: inner.base_str.clone(),
                token: Some(token),
                token_file: None,
                timeout: inner.timeout,
            }),
            retry: self.retry,
        }
    }

    /// `https://host:8143/orchestrator/v1`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_str
    }

    /// This client with another retry policy (sharing the connections):
    /// [`RetryPolicy::none`] for a caller that does its own retrying.
    pub fn with_retry(&self, retry: RetryPolicy) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            retry,
        }
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
}
