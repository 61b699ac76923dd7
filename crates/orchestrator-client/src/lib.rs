//! Typed async client for the Puppet Enterprise Orchestrator API v1.
//!
//! - [`Settings`] are loaded like PE's client tools do (`orchestrator.conf`,
//!   global then user), then `KICK_*` environment variables, then flags.
//! - [`puppetdb::PuppetDb`] resolves PQL through PuppetDB's query API, configured
//!   like PE's client tools (`puppetdb.conf`), with the same token and CA.
//! - [`Client`] sends the RBAC token from the token file as
//!   `X-Authentication`, trusts only the configured CA (the Puppet CA), and
//!   turns every failure into an [`Error`] that says what to do.
//!
//! # Retries and submissions
//! Reads (every GET, `POST /inventory`, and the idempotent `command/stop`)
//! are retried on connection failures, timeouts, cut-off bodies and
//! 502/503/504, with capped exponential backoff and jitter ([`RetryPolicy`];
//! a `Retry-After` in seconds is honoured up to its `max_delay`). Clear
//! answers (4xx, 500) and TLS verification failures are not retried.
//! Job ids, task names and certnames are checked before they become part
//! of a request path; response bodies over 256 MiB are refused.
//!
//! Job submissions ([`Client::run_task`], [`Client::deploy`]) are never sent
//! twice once they may have reached the server. Each carries a unique marker
//! in `userdata.kick_marker` and at the end of its description
//! (`[kick:<marker>]`). When the outcome is unknown (the connection broke
//! after sending, a timeout, a 5xx, an unreadable 2xx body) the client lists
//! the newest jobs and looks for the marker, twice with a pause between; if
//! the job is not found it returns [`Error::SubmitUncertain`] rather than
//! risk starting the job a second time. Only a failure to connect at all
//! (nothing was sent) is retried. Creating a scheduled job
//! ([`Client::schedule_job`]) follows the same rule, its marker in
//! `userdata` only.
//!
//! Neither the token nor the token file's content appears in `Debug`
//! output, errors or `tracing` events; requests are logged at `debug` level
//! with method, path, status and elapsed time.

#![warn(missing_docs)]

mod client;
mod config;
mod error;
mod pages;
pub mod puppetdb;
mod retry;
mod tls;
mod token;

pub use orchestrator_types as types;

pub use client::{Client, JobsQuery, MARKER_KEY, NodesQuery, ScheduledJobsQuery, strip_marker};
pub use config::{
    DEFAULT_CACERT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_TOKEN_FILE, GLOBAL_CONFIG, Overrides,
    Settings, USER_CONFIG, Warning,
};
pub use error::Error;
pub use retry::RetryPolicy;
pub use token::{Token, read_token_file};
