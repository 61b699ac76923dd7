//! Requests are logged (method, path, status, elapsed) and the token never is.

use std::io::Write;
use std::sync::{Arc, Mutex};

use orchestrator_client::Client;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{TOKEN, settings, write_token};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_output_has_requests_but_not_the_token() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    // Global, so the log records of reqwest and the events of hyper's
    // connection tasks are captured too (nextest runs each test in its own
    // process).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orchestrator/v1/jobs/5"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "kind": "puppetlabs.rbac/token-expired", "msg": "The provided token has expired."
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&server.uri());
    s.token_file = Some(write_token(dir.path(), TOKEN));
    let (client, _) = Client::new(&s).unwrap();
    let err = client.job("5").await.unwrap_err();
    tracing::info!(error = ?err, client = ?client, "done");

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("orchestrator request"), "{log}");
    assert!(log.contains("path=\"/orchestrator/v1/jobs/5\""), "{log}");
    assert!(log.contains("status=401"), "{log}");
    assert!(log.contains("elapsed_ms="), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
}
