//! Integration tests of the orchestrator client against local servers only
//! (127.0.0.1): a real HTTPS server for TLS, wiremock and a raw socket
//! server for faults.

mod config;
mod faults;
mod http_request;
mod inventory;
mod logging;
mod orchestrator;
mod paging;
mod puppetdb;
mod submit;
mod support;
mod tls;
mod token;
