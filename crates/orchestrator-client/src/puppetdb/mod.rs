//! A client for PuppetDB's query API (`/pdb/query/v4`), for resolving PQL targets and
//! showing each node's last report, with the orchestrator client's token and CA handling.
//!
//! Answers are paged (`order_by` certname, `limit`/`offset` of
//! [`PuppetDbSettings::page_size`]) unless the query pages itself; certnames come back
//! sorted and without duplicates, so a rollout's waves follow a stable order. Servers in
//! `server_urls` are tried in order when one cannot be reached, as PE's tools do.

mod config;
mod error;

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};

pub use config::{
    DEFAULT_PAGE_SIZE, GLOBAL_PUPPETDB_CONFIG, PuppetDbSettings, USER_PUPPETDB_CONFIG,
};
pub use error::PuppetDbError;

use crate::config::Warning;
use crate::error::{chain, excerpt};
use crate::token::{Token, read_token_file};

/// Largest answer accepted from PuppetDB for one page.
const MAX_BODY_BYTES: usize = 256 << 20;
/// Certnames per `certname in [...]` lookup.
const LOOKUP_CHUNK: usize = 500;
/// Connecting gets its own, shorter limit so a dead server is skipped fast.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One node's latest report as PuppetDB knows it (for `--dry-run`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeReport {
    /// The node.
    pub certname: String,
    /// When its last report was stored (RFC 3339), if it ever sent one.
    #[serde(default)]
    pub report_timestamp: Option<String>,
    /// `changed`, `unchanged` or `failed`.
    #[serde(default)]
    pub latest_report_status: Option<String>,
    /// Whether that report was a noop run.
    #[serde(default)]
    pub latest_report_noop: Option<bool>,
}

/// A PuppetDB query client. Cheap to clone.
#[derive(Clone)]
pub struct PuppetDb {
    http: reqwest::Client,
    urls: Vec<Url>,
    token: Option<Token>,
    page_size: u64,
}

impl std::fmt::Debug for PuppetDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PuppetDb")
            .field("urls", &self.urls)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct CertnameRow {
    certname: Option<String>,
}

impl PuppetDb {
    /// Builds a client: reads the token file and the CA (and client certificate, if set),
    /// and returns the warnings the user should see.
    pub fn new(settings: &PuppetDbSettings) -> Result<(PuppetDb, Vec<Warning>), PuppetDbError> {
        let mut warnings = Vec::new();
        let urls = settings
            .server_urls
            .iter()
            .map(|u| {
                Url::parse(&format!("{}/pdb/query/v4", u.trim_end_matches('/'))).map_err(|e| {
                    PuppetDbError::Config {
                        message: format!("{u:?} is not a PuppetDB URL ({e})"),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(PuppetDbError::NotConfigured);
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("kick/", env!("CARGO_PKG_VERSION")))
            // As for the orchestrator: a redirect would carry the token elsewhere, and an
            // environment proxy would see it in plain text.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.request_timeout.min(MAX_CONNECT_TIMEOUT))
            .timeout(settings.request_timeout);
        if urls.iter().any(|u| u.scheme() == "https") {
            if settings.insecure {
                warnings.push(Warning(
                    "--insecure: PuppetDB's TLS certificate is not verified either".to_owned(),
                ));
                builder = builder.danger_accept_invalid_certs(true);
            } else if let Some(ca) = &settings.cacert {
                builder = builder.tls_certs_only(crate::tls::read_ca(ca)?);
            }
            if let (Some(cert), Some(key)) = (&settings.cert, &settings.key) {
                builder = builder.identity(read_identity(cert, key)?);
            }
        } else {
            // No TLS at all: the system's roots are not loaded.
            builder = builder.tls_certs_only(Vec::new());
        }
        // A missing token file is no error here: PuppetDB may take a client certificate, or
        // listen on a loopback port that needs nothing; PuppetDB says so if it wants one.
        let token = match &settings.token_file {
            Some(path) if path.exists() => {
                let (t, w) = read_token_file(path)?;
                warnings.extend(w);
                Some(t)
            }
            _ => None,
        };
        for u in &urls {
            if u.scheme() == "http" && !crate::tls::is_loopback(u) && token.is_some() {
                warnings.push(Warning(format!(
                    "the PuppetDB URL {} is plain http: the token travels unencrypted; use https://<puppetdb>:8081",
                    origin(u)
                )));
            }
        }
        let http = builder.build().map_err(|e| PuppetDbError::Config {
            message: format!("cannot set up the HTTP client: {}", chain(&e)),
        })?;
        Ok((
            PuppetDb {
                http,
                urls,
                token,
                page_size: settings.page_size.max(1),
            },
            warnings,
        ))
    }

    /// The certnames a PQL query (or an AST query given as a JSON array) answers, sorted and
    /// without duplicates. Every row must carry `certname`.
    pub async fn certnames(&self, query: &str) -> Result<Vec<String>, PuppetDbError> {
        let query_value = parse_query(query);
        let mut names = Vec::new();
        if pages_itself(query) {
            let body = json!({ "query": query_value });
            self.collect_certnames(&body, &mut names).await?;
        } else {
            // Each page asks for one row more than it keeps: that row says whether another
            // page follows, so an answer that fills its last page costs no empty request.
            let mut offset = 0u64;
            loop {
                let body = json!({
                    "query": query_value,
                    "order_by": [{"field": "certname", "order": "asc"}],
                    "limit": self.page_size.saturating_add(1),
                    "offset": offset,
                });
                let kept = names.len();
                let rows = self.collect_certnames(&body, &mut names).await?;
                if (rows as u64) <= self.page_size {
                    break;
                }
                names.truncate(kept + usize::try_from(self.page_size).unwrap_or(usize::MAX));
                offset += self.page_size;
            }
        }
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    /// The latest report of each of `certnames` PuppetDB knows (nodes it has never heard of
    /// are absent), ordered by certname.
    pub async fn node_reports(
        &self,
        certnames: &[String],
    ) -> Result<Vec<NodeReport>, PuppetDbError> {
        let mut out = Vec::new();
        for chunk in certnames.chunks(LOOKUP_CHUNK) {
            let list = chunk
                .iter()
                .map(|c| pql_string(c))
                .collect::<Vec<_>>()
                .join(",");
            let pql = format!(
                "nodes[certname, report_timestamp, latest_report_status, latest_report_noop] {{ certname in [{list}] }}"
            );
            let (url, bytes) = self.post(&json!({ "query": pql })).await?;
            let rows: Vec<NodeReport> =
                serde_json::from_slice(&bytes).map_err(|e| PuppetDbError::BadResponse {
                    url: origin(&url),
                    reason: format!("not a list of nodes ({e})"),
                })?;
            out.extend(rows);
        }
        out.sort_by(|a, b| a.certname.cmp(&b.certname));
        Ok(out)
    }

    /// The raw rows of one query request (no paging), for callers that want other fields.
    pub async fn query(&self, query: &str) -> Result<Vec<Value>, PuppetDbError> {
        let (url, bytes) = self.post(&json!({ "query": parse_query(query) })).await?;
        serde_json::from_slice(&bytes).map_err(|e| PuppetDbError::BadResponse {
            url: origin(&url),
            reason: format!("not a JSON list ({e})"),
        })
    }

    /// Sends one page and appends its certnames; returns the page's row count.
    async fn collect_certnames(
        &self,
        body: &Value,
        names: &mut Vec<String>,
    ) -> Result<usize, PuppetDbError> {
        let (url, bytes) = self.post(body).await?;
        let rows: Vec<CertnameRow> =
            serde_json::from_slice(&bytes).map_err(|e| PuppetDbError::BadResponse {
                url: origin(&url),
                reason: format!("not a list of rows ({e})"),
            })?;
        let count = rows.len();
        names.reserve(count);
        for row in rows {
            match row.certname {
                Some(c) if !c.is_empty() => names.push(c),
                _ => {
                    return Err(PuppetDbError::Query {
                        status: 200,
                        message: "the query answers rows without a certname; project it, e.g. `inventory[certname] { ... }` or `nodes[certname] { ... }`".into(),
                    });
                }
            }
        }
        Ok(count)
    }

    /// POSTs `body` to the first server that answers; a server that cannot be reached, times
    /// out or answers 5xx is skipped for the next one.
    async fn post(&self, body: &Value) -> Result<(Url, Vec<u8>), PuppetDbError> {
        let payload = serde_json::to_vec(body).map_err(|e| PuppetDbError::Config {
            message: format!("cannot encode the query ({e})"),
        })?;
        let mut last = String::new();
        for url in &self.urls {
            let started = std::time::Instant::now();
            let mut req = self
                .http
                .post(url.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .header(ACCEPT, HeaderValue::from_static("application/json"))
                .body(payload.clone());
            if let Some(t) = &self.token {
                req = req.header("X-Authentication", t.header().clone());
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    let detail = chain(&e);
                    if looks_like_tls(&detail) {
                        return Err(PuppetDbError::Tls {
                            url: origin(url),
                            detail,
                        });
                    }
                    tracing::debug!(url = %origin(url), error = %detail, "PuppetDB not reachable");
                    last = format!("{}: {detail}", origin(url));
                    continue;
                }
            };
            let status = resp.status();
            let bytes = match read_body(resp).await {
                Ok(b) => b,
                Err(detail) => {
                    last = format!("{}: {detail}", origin(url));
                    continue;
                }
            };
            tracing::debug!(
                url = %origin(url),
                status = status.as_u16(),
                bytes = bytes.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "PuppetDB query"
            );
            if status.is_success() {
                return Ok((url.clone(), bytes));
            }
            let message = excerpt(&bytes, 400);
            match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(PuppetDbError::Denied {
                        url: origin(url),
                        status: status.as_u16(),
                        message,
                    });
                }
                s if s.is_server_error() => {
                    last = format!("{}: HTTP {}: {message}", origin(url), s.as_u16());
                }
                s => {
                    return Err(PuppetDbError::Query {
                        status: s.as_u16(),
                        message,
                    });
                }
            }
        }
        Err(PuppetDbError::Unreachable {
            urls: self.urls.iter().map(origin).collect::<Vec<_>>().join(", "),
            detail: last,
        })
    }
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(resp.content_length().unwrap_or(0).min(1 << 20) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|e| chain(&e))? {
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!(
                "the answer is larger than {} MiB; narrow the query",
                MAX_BODY_BYTES >> 20
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn read_identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<reqwest::Identity, PuppetDbError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| PuppetDbError::Config {
            message: format!("cannot read {} ({e})", p.display()),
        })
    };
    let mut pem = read(cert)?;
    pem.push(b'\n');
    pem.extend(read(key)?);
    reqwest::Identity::from_pem(&pem).map_err(|e| PuppetDbError::Config {
        message: format!(
            "{} and {} are not a PEM certificate and key ({})",
            cert.display(),
            key.display(),
            chain(&e)
        ),
    })
}

fn looks_like_tls(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("certificate") || d.contains("tls") || d.contains("handshake")
}

/// `scheme://host:port` of a query URL, for messages.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// An AST query when the text is a JSON array, else PQL.
fn parse_query(query: &str) -> Value {
    let q = query.trim();
    if q.starts_with('[')
        && let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(q)
    {
        return v;
    }
    Value::String(q.to_owned())
}

/// Whether a PQL query has its own `limit`, `offset` or `order by` (outside string
/// literals); such a query is sent as it is, since PuppetDB cannot combine both pagings.
fn pages_itself(query: &str) -> bool {
    if query.trim_start().starts_with('[') {
        return query.contains("\"limit\"") || query.contains("\"order_by\"");
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in query.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c.to_ascii_lowercase());
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.iter().enumerate().any(|(i, w)| {
        w == "limit"
            || w == "offset"
            || (w == "order" && words.get(i + 1).is_some_and(|n| n == "by"))
    })
}

/// A PQL string literal.
fn pql_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_paging_is_detected_outside_strings_only() {
        assert!(pages_itself("nodes[certname] { limit 10 }"));
        assert!(pages_itself("nodes[certname] { order by certname }"));
        assert!(pages_itself("nodes[certname] { OFFSET 5 }"));
        assert!(!pages_itself(
            "inventory[certname] { facts.role = \"limit order by\" }"
        ));
        assert!(!pages_itself("nodes[certname] { certname ~ 'offset' }"));
        assert!(!pages_itself(
            "resources[certname] { type = \"Class\" and title = \"Limits\" }"
        ));
        assert!(pages_itself(r#"["from", "nodes", ["limit", 3]]"#));
    }

    #[test]
    fn ast_queries_go_as_json() {
        assert_eq!(
            parse_query(r#"["from", "nodes"]"#),
            json!(["from", "nodes"])
        );
        assert_eq!(parse_query(" nodes {} "), json!("nodes {}"));
        assert_eq!(parse_query("[oops"), json!("[oops"));
    }

    #[test]
    fn pql_strings_are_escaped() {
        assert_eq!(pql_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
