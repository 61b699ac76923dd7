//! One HTTP exchange, its failures classified, and the retry of
//! idempotent requests.

use std::time::{Duration, Instant};

use orchestrator_types::ApiError;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::Client;
use crate::error::{CUT_OFF, Error, chain, excerpt, hint_for};

/// Largest response body accepted (a page of 1,000 nodes with 20 KiB of
/// output each is about 21 MiB).
const MAX_BODY_BYTES: usize = 256 << 20;

/// Longest body excerpt quoted in an error message.
const EXCERPT_CHARS: usize = 200;

/// Why one exchange did not produce a response.
pub(super) struct Unanswered {
    pub(super) error: Error,
    /// The request may have reached the server (false only when no
    /// connection was ever made).
    pub(super) maybe_sent: bool,
    /// Trying again may help.
    pub(super) transient: bool,
}

/// A failed attempt, and whether (after at least how long) to try again.
pub(super) struct Attempt {
    pub(super) error: Error,
    pub(super) retry: Option<Duration>,
}

impl Attempt {
    /// A failure not worth another attempt.
    pub(super) fn last(error: Error) -> Self {
        Self { error, retry: None }
    }
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl Client {
    pub(super) fn url(
        &self,
        segments: &[&str],
        params: &[(&'static str, String)],
    ) -> Result<Url, Error> {
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

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        params: &[(&'static str, String)],
    ) -> Result<T, Error> {
        let url = self.url(segments, params)?;
        self.call(Method::GET, url, None).await
    }

    /// An idempotent request: retried on connection failures, timeouts, cut
    /// off bodies and 502/503/504, as the client's [`RetryPolicy`] says.
    ///
    /// [`RetryPolicy`]: crate::RetryPolicy
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        let attempt = || async {
            match self.exchange(&method, &url, body.as_deref()).await {
                // 204 has no body: it decodes as `null`, which `()` reads.
                Ok((status, bytes, _)) if status == StatusCode::NO_CONTENT && bytes.is_empty() => {
                    decode(StatusCode::NO_CONTENT, b"null").map_err(Attempt::last)
                }
                Ok((status, bytes, _)) if status.is_success() => {
                    decode(status, &bytes).map_err(Attempt::last)
                }
                Ok((status, bytes, retry_after)) => Err(Attempt {
                    error: self.status_error(status, &bytes),
                    // A server's Retry-After is honoured up to the policy's cap.
                    retry: retryable_status(status).then(|| retry_after.unwrap_or_default()),
                }),
                Err(f) => Err(Attempt {
                    retry: f.transient.then_some(Duration::ZERO),
                    error: f.error,
                }),
            }
        };
        let span = tracing::debug_span!("request", method = %method, path = url.path());
        self.retry
            .run(attempt, |a| a.retry)
            .instrument(span)
            .await
            .map_err(|a| a.error)
    }

    /// One HTTP exchange, the whole body read; also returns the
    /// `Retry-After` delay if the server sent one in seconds.
    pub(super) async fn exchange(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
    ) -> Result<(StatusCode, Vec<u8>, Option<Duration>), Unanswered> {
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
                Err(Unanswered {
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

    fn send_failure(&self, url: &Url, e: reqwest::Error) -> Unanswered {
        let detail = chain(&e);
        let plain = url.scheme() == "http";
        let url = url_for_message(url);
        if e.is_connect() {
            if looks_like_tls(&detail) {
                return Unanswered {
                    error: Error::Tls { url, detail },
                    maybe_sent: false,
                    transient: false,
                };
            }
            // Includes connect timeouts: nothing reached the server.
            return Unanswered {
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
            return Unanswered {
                error: Error::Timeout {
                    url,
                    after: self.inner.timeout,
                },
                maybe_sent: true,
                transient: true,
            };
        }
        // A TLS server answers a plain-HTTP request with a TLS record (an
        // alert), which is no HTTP status line; it cannot have acted on it.
        if plain && detail.contains("invalid HTTP version") {
            return Unanswered {
                error: Error::PlainHttpToTls { url },
                maybe_sent: false,
                transient: false,
            };
        }
        // The connection broke after the request (or part of it) was written.
        Unanswered {
            error: Error::Connect {
                url,
                detail: format!("the connection broke before an answer came ({detail})"),
                source: e.without_url(),
            },
            maybe_sent: true,
            transient: true,
        }
    }

    fn body_failure(&self, url: &Url, status: StatusCode, e: reqwest::Error) -> Unanswered {
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
        Unanswered {
            error,
            maybe_sent: true,
            transient: true,
        }
    }

    /// The error for a non-2xx answer: the API's error body if there is
    /// one, else a description of what came instead.
    pub(super) fn status_error(&self, status: StatusCode, body: &[u8]) -> Error {
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

pub(super) fn decode<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, Error> {
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

pub(super) fn to_body<B: serde::Serialize>(body: &B) -> Result<Vec<u8>, Error> {
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
