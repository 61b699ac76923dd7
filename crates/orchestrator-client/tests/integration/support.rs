//! Local servers and settings shared by the tests. Everything listens on
//! 127.0.0.1; nothing reaches the real network.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator_client::{RetryPolicy, Settings};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// One request as the raw server saw it.
pub use crate::http_request::Request as RawRequest;
use crate::http_request::read_request;

pub const TOKEN: &str = "0123456789abcdef-test-token";

/// Fast retries so fault tests take milliseconds.
pub fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: attempts,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(10),
        submit_settle: Duration::from_millis(20),
    }
}

/// Settings for a plain-http loopback server, without a token.
pub fn settings(service_url: &str) -> Settings {
    Settings {
        service_url: service_url.to_owned(),
        cacert: None,
        token_file: None,
        environment: None,
        insecure: false,
        request_timeout: Duration::from_secs(5),
        retry: fast_retry(3),
    }
}

/// Writes a token file with mode 0600 and returns its path.
pub fn write_token(dir: &Path, content: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("token");
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// What the raw server does with a request.
pub enum Action {
    /// Send these bytes (a complete HTTP response, or a deliberately broken
    /// one) and close the connection.
    Send(Vec<u8>),
    /// Close the connection without answering.
    Drop,
}

/// A JSON 200/202 response with `Connection: close`.
pub fn json_response(status: u16, body: &str) -> Action {
    Action::Send(
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// A minimal HTTP/1.1 server over a raw socket, for faults wiremock cannot
/// produce (dropped connections, bodies shorter than Content-Length).
pub struct RawServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<RawRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    pub async fn start(
        handler: impl Fn(&RawRequest, &[RawRequest]) -> Action + Send + Sync + 'static,
    ) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
        let handler = Arc::new(handler);
        let reqs = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let reqs = reqs.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    let action = {
                        let mut all = reqs.lock().unwrap();
                        let action = handler(&req, &all);
                        all.push(req);
                        action
                    };
                    if let Action::Send(bytes) = action {
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.flush().await;
                    }
                    // Dropping the socket closes it; with unread data
                    // pending the kernel sends a reset.
                });
            }
        });
        RawServer {
            url,
            requests,
            task,
        }
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.target.starts_with(path_prefix))
            .count()
    }
}

/// A port nothing listens on: bound, then released.
pub async fn refused_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// A job as GET /jobs lists it, carrying `marker` the way `where_` says.
pub fn job_json(name: &str, marker: Option<&str>, where_: &str) -> serde_json::Value {
    let mut job = serde_json::json!({
        "id": format!("https://pe:8143/orchestrator/v1/jobs/{name}"),
        "name": name,
        "state": "running",
        "command": "task",
        "type": "task",
        "options": {"task": "psick::puppet_agent", "noop": false},
        "node_count": 1,
    });
    if let Some(m) = marker {
        match where_ {
            "options.userdata" => {
                job["options"]["userdata"] = serde_json::json!({"kick_marker": m});
            }
            "userdata" => job["userdata"] = serde_json::json!({"kick_marker": m}),
            "description" => {
                job["options"]["description"] = format!("nightly run [kick:{m}]").into();
            }
            other => panic!("unknown marker place {other}"),
        }
    }
    job
}

/// The marker a submitted request body carries.
pub fn marker_of(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["userdata"]["kick_marker"].as_str().unwrap().to_owned()
}
