//! Integration tests: the orchestrator served on 127.0.0.1:0, driven over HTTP
//! with reqwest, running the shell-script tasks under `tests/fixtures/modules`.

mod common;
// The documents' command lines, read as kick's documentation tests read them.
#[path = "../../../kick/tests/integration/doc_examples.rs"]
mod doc_examples;

mod arches;
mod auth;
mod behaviour;
mod crash;
mod docs;
mod execution;
mod hostile;
mod inventory;
mod paging;
mod persistence;
mod pxp;
mod ssh;
mod tls;
mod whole_api;
mod wire;
