//! Errors: [`Error`] for starting the service, [`Failure`] for HTTP answers.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchestrator_types::ApiError;
use orchestrator_types::error::kind;
use serde_json::Value;

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A configuration file or value is wrong.
    #[error("{path}: {msg}")]
    Config {
        /// The file (or the flag).
        path: PathBuf,
        /// What is wrong and what to write instead.
        msg: String,
    },
    /// The state directory could not be used.
    #[error("state directory {path}: {msg}; check it exists and is writable")]
    State {
        /// The directory or file.
        path: PathBuf,
        /// What failed.
        msg: String,
    },
    /// TLS setup failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listener failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// An API error answer: HTTP status plus the `{kind, msg, details}` body.
#[derive(Debug, Clone)]
pub struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) body: ApiError,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, kind: &str, msg: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError::new(kind, msg, None),
        }
    }

    pub(crate) fn details(mut self, details: Value) -> Self {
        self.body.details = Some(details);
        self
    }

    pub(crate) fn message(mut self, msg: impl Into<String>) -> Self {
        self.body.msg = msg.into();
        self
    }

    /// A bad URL or query parameter (PE's documented kind).
    pub(crate) fn validation(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind::VALIDATION_ERROR, msg)
    }

    /// A request body that does not validate: the kind a real PE server
    /// answered for an invalid task name, which Puppet's own client maps.
    pub(crate) fn invalid_body(msg: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            kind::VALIDATORS_VALIDATION_ERROR,
            msg,
        )
    }

    pub(crate) fn unknown_job(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            kind::UNKNOWN_JOB,
            format!("No job exists with id {id}"),
        )
        .details(serde_json::json!({ "id": id }))
    }

    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, kind::UNKNOWN_ERROR, msg)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}
