//! Everything that can go wrong talking to the orchestrator, worded for the
//! person at the terminal: what happened and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

use orchestrator_types::ApiError;
use orchestrator_types::error::kind;

/// An error from configuration, the token or CA file, the network or the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The orchestrator answered with its `{kind, msg, details}` error body.
    #[error("{}", api_display(*status, error, hint.as_deref()))]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's error body.
        error: ApiError,
        /// What the user can do about it, when we know.
        hint: Option<String>,
    },

    /// Missing or malformed configuration.
    #[error("configuration error: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A caller passed something the API cannot take (e.g. a malformed task name).
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
    },

    /// The token file could not be read.
    #[error(
        "cannot read the token file {}: {source}; run `puppet access login` to get a token, or point --token-file at an existing one",
        path.display()
    )]
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The token file was read but holds no usable token.
    #[error(
        "the token file {} {problem}; run `puppet access login` to write a new token",
        path.display()
    )]
    Token {
        /// The token file.
        path: PathBuf,
        /// What is wrong with its content (never the content itself).
        problem: String,
    },

    /// The CA certificate file could not be read or holds no certificate.
    #[error(
        "cannot use the CA certificate file {}: {problem}; {CA_HOWTO}",
        path.display()
    )]
    CaFile {
        /// The CA file.
        path: PathBuf,
        /// Why it is unusable.
        problem: String,
    },

    /// An `http://` service URL reached a server that speaks TLS.
    #[error(
        "{url} answered in TLS, not plain HTTP: use https:// in the service URL (e.g. https://<primary>:8143)"
    )]
    PlainHttpToTls {
        /// What we connected to.
        url: String,
    },

    /// The server's certificate was not accepted.
    #[error(
        "TLS verification of {url} failed: {detail}; check that --cacert names the CA that signed the orchestrator's certificate (the Puppet CA), and that the service URL uses the host name in that certificate"
    )]
    Tls {
        /// What we connected to.
        url: String,
        /// The verifier's complaint.
        detail: String,
    },

    /// No connection could be made, or it broke before an answer came
    /// (`detail` says which).
    #[error(
        "no answer from the orchestrator at {url}: {detail}; check the service URL and that the orchestrator is running"
    )]
    Connect {
        /// What we connected to.
        url: String,
        /// The underlying error chain, flattened.
        detail: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// The orchestrator did not answer in time.
    #[error("the orchestrator at {url} did not answer within {}s; it may be overloaded, try again (or raise the request timeout)", after.as_secs_f64())]
    Timeout {
        /// The request.
        url: String,
        /// The per-request timeout.
        after: Duration,
    },

    /// The answer was not what the API sends: a proxy's HTML page, a cut-off
    /// body, JSON of the wrong shape.
    #[error(
        "unexpected response from the orchestrator (HTTP {status}): {reason}{}",
        excerpt_suffix(body_excerpt)
    )]
    BadResponse {
        /// HTTP status (0 if none was received).
        status: u16,
        /// What was wrong with it.
        reason: String,
        /// The start of the body, whitespace collapsed.
        body_excerpt: String,
    },

    /// A job submission failed in a way that leaves open whether the job was
    /// created, and looking for it by its marker did not settle the question.
    /// The request was not sent again, so at most one job exists.
    #[error(
        "the job may or may not have been started: {cause}. It was not resubmitted, to avoid starting it twice. Check `kick job list` for a job whose description ends in [kick:{marker}]"
    )]
    SubmitUncertain {
        /// The marker stored in the job's userdata and description.
        marker: String,
        /// The failure that made the outcome unknown.
        cause: String,
    },

    /// Creating a scheduled job failed in a way that leaves open whether it
    /// was created, and looking for it by its marker did not settle it. The
    /// request was not sent again, so at most one scheduled job exists.
    #[error(
        "the scheduled job may or may not have been created: {cause}. It was not sent again, to avoid scheduling it twice. Check `kick schedule list --format json` for one whose userdata.kick_marker is {marker}"
    )]
    ScheduleUncertain {
        /// The marker stored in the scheduled job's userdata.
        marker: String,
        /// The failure that made the outcome unknown.
        cause: String,
    },

    /// Creating a connection entry failed in a way that leaves open whether
    /// it was created. The request was not sent again.
    #[error(
        "the connection entry of {certnames} may or may not have been created: {cause}. It was not sent again; check `kick inventory list {certnames}`"
    )]
    ConnectionUncertain {
        /// The entry's certnames, comma separated.
        certnames: String,
        /// The failure that made the outcome unknown.
        cause: String,
    },
}

impl Error {
    /// True when the fix is a (new) token: the server rejected the token, or
    /// the token file is missing or unusable. A missing RBAC permission
    /// (403) is not: a new token would not help.
    pub fn is_auth(&self) -> bool {
        match self {
            Self::Api { status, error, .. } => {
                *status == 401
                    || matches!(
                        error.kind.as_str(),
                        kind::TOKEN_EXPIRED
                            | kind::INVALID_TOKEN
                            | kind::TOKEN_REVOKED
                            | kind::USER_UNAUTHENTICATED
                            | "puppetlabs.rbac/token-timed-out"
                    )
            }
            Self::TokenFile { .. } | Self::Token { .. } => true,
            _ => false,
        }
    }

    /// True when no (complete) answer came: connection failures, timeouts,
    /// cut-off bodies, 502/503/504 from a proxy. These were already retried
    /// within the [`RetryPolicy`](crate::RetryPolicy); a caller that polls
    /// may still try again later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } => true,
            Self::BadResponse { status, reason, .. } => {
                matches!(status, 0 | 502..=504) || reason.starts_with(CUT_OFF)
            }
            Self::Api { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// The orchestrator's error kind, if the server sent one.
    pub fn api_kind(&self) -> Option<&str> {
        match self {
            Self::Api { error, .. } => Some(&error.kind),
            _ => None,
        }
    }
}

/// How to get the Puppet CA certificate kick verifies the orchestrator with.
const CA_HOWTO: &str = "kick needs the Puppet CA certificate: on the primary server, `puppet config print localcacert` prints where it is (usually /etc/puppetlabs/puppet/ssl/certs/ca.pem); copy that file here and pass it with --cacert, or set `cacert` in orchestrator.conf";

/// How a [`Error::BadResponse`] for a body that ended early begins.
pub(crate) const CUT_OFF: &str = "the response body was cut off";

fn api_display(status: u16, error: &ApiError, hint: Option<&str>) -> String {
    let msg = error.msg.trim();
    let msg = if msg.is_empty() { "(no message)" } else { msg };
    match hint {
        // Said once: the server's message may already tell how to log in.
        Some(h) if !(h.contains("puppet access login") && msg.contains("puppet access login")) => {
            format!("{msg} ({}, HTTP {status}); {h}", error.kind)
        }
        _ => format!("{msg} ({}, HTTP {status})", error.kind),
    }
}

fn excerpt_suffix(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!("; the response began: {excerpt:?}")
    }
}

/// What the user can do about an API error, keyed by the server's kind.
pub(crate) fn hint_for(
    status: u16,
    error: &ApiError,
    token_file: Option<&std::path::Path>,
) -> Option<String> {
    let k = error.kind.as_str();
    let token_hint = || match token_file {
        Some(p) => format!(
            "run `puppet access login` (or write a new token to {})",
            p.display()
        ),
        None => "run `puppet access login` and pass the token file with --token-file".to_owned(),
    };
    Some(match k {
        kind::TOKEN_EXPIRED | kind::INVALID_TOKEN | kind::TOKEN_REVOKED => token_hint(),
        "puppetlabs.rbac/token-timed-out" => token_hint(),
        kind::USER_UNAUTHENTICATED => token_hint(),
        "puppetlabs.rbac/user-revoked" => {
            "this user account is revoked; ask your PE administrator to reinstate it".to_owned()
        }
        "puppetlabs.rbac/permission-denied" | kind::NOT_PERMITTED => {
            "ask your PE administrator for the RBAC permissions \"Job orchestrator: start, stop and view jobs\" and the task/Puppet agent permissions for these nodes".to_owned()
        }
        kind::UNKNOWN_JOB => "check the job id with `kick job list`".to_owned(),
        kind::UNKNOWN_ENVIRONMENT => {
            "check the environment name (--environment) and that its code is deployed".to_owned()
        }
        kind::UNKNOWN_TASK => {
            "check the task name with `kick tasks list` (and --environment)".to_owned()
        }
        kind::EMPTY_TARGET | kind::EMPTY_ENVIRONMENT => {
            "the target matched no nodes; check --nodes, --query or --node-group".to_owned()
        }
        kind::QUERY_ERROR => {
            "check the PQL query, and that you may query PuppetDB (RBAC \"Nodes: view node data from PuppetDB\")".to_owned()
        }
        kind::PUPPETDB_ERROR => {
            "the orchestrator could not reach PuppetDB; try again later".to_owned()
        }
        _ if status == 401 => token_hint(),
        _ => return None,
    })
}

/// The start of a response body, for error messages: lossy UTF-8,
/// whitespace collapsed, at most `max` characters.
pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= max {
                out.push('…');
                return out;
            }
            // Control characters from a binary body would garble the terminal.
            out.push(if c.is_control() { '?' } else { c });
            count += 1;
        }
    }
    out
}

/// The error's sources joined, so `Display` shows the root cause. reqwest's
/// own top-level message ("error sending request for url (...)") repeats
/// the URL the caller already shows and hyper's "client error (Connect)"
/// wrappers say nothing, so both are left out.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.starts_with("client error (") && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_collapses_whitespace_and_truncates() {
        let body = b"<html>\n  <body>\n\t502   Bad Gateway</body></html>";
        assert_eq!(
            excerpt(body, 200),
            "<html> <body> 502 Bad Gateway</body></html>"
        );
        assert_eq!(excerpt(b"abcdefgh", 3), "abc…");
        assert_eq!(excerpt(b"a\x01b", 10), "a?b");
    }

    #[test]
    fn token_expired_display_says_how_to_get_a_new_token() {
        let error = ApiError::new(kind::TOKEN_EXPIRED, "The provided token has expired.", None);
        let hint = hint_for(
            401,
            &error,
            Some(std::path::Path::new("/home/u/.puppetlabs/token")),
        );
        let e = Error::Api {
            status: 401,
            error,
            hint,
        };
        let s = e.to_string();
        assert!(s.contains("The provided token has expired."), "{s}");
        assert!(s.contains("puppetlabs.rbac/token-expired"), "{s}");
        assert!(s.contains("puppet access login"), "{s}");
        assert!(s.contains("/home/u/.puppetlabs/token"), "{s}");
        assert!(e.is_auth());
    }
}
