//! Test server and helpers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kick_orchestrator::{Config, ConfigBuilder, NodeSpec};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const TOKEN: &str = "test-token";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A config with the fixture modules, the test token and `n` connected nodes
/// named `node-0000.example` ...
/// A module dir holding one task, `scratch::t`, that prints `{"v": <v>}`;
/// returns the dir and the task's file, to change while a job runs.
pub fn scratch_task(v: u32) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let modules = tempfile::tempdir().unwrap();
    let tasks = modules.path().join("scratch/tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    let script = tasks.join("t.sh");
    write_scratch(&script, v);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (modules, script)
}

/// Rewrites the task of [`scratch_task`] to print `{"v": <v>}`.
pub fn write_scratch(script: &Path, v: u32) {
    std::fs::write(script, format!("#!/bin/sh\necho '{{\"v\": {v}}}'\n")).unwrap();
}

/// The PIDs a stop lists in a node's `_error.details` (`stopped` on a
/// local node, `remote.stopped` on an SSH node).
pub fn stopped_pids(node: &Value) -> Vec<u64> {
    let d = &node["result"]["_error"]["details"];
    match (d["stopped"].as_array(), d["remote"]["stopped"].as_array()) {
        (Some(local), _) => local.iter().filter_map(|p| p["pid"].as_u64()).collect(),
        (None, Some(remote)) => remote.iter().filter_map(Value::as_u64).collect(),
        (None, None) => Vec::new(),
    }
}

pub fn config(n: usize) -> ConfigBuilder {
    let mut b = Config::builder()
        .token(TOKEN)
        .modulepath(fixtures().join("modules"))
        .kill_grace(Duration::from_millis(300));
    for i in 0..n {
        b = b.node(node(&format!("node-{i:04}.example")));
    }
    b
}

pub fn node(name: &str) -> NodeSpec {
    let mut n = NodeSpec::new(name);
    n.env.insert("NODE_NAME".into(), name.into());
    n
}

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<Result<(), kick_orchestrator::Error>>>,
}

impl Server {
    pub async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(kick_orchestrator::serve(listener, config, async move {
            let _ = rx.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            stop: Some(tx),
            done: Some(done),
        }
    }

    /// Stops the service the way SIGTERM does and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(d) = self.done.take() {
            d.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/orchestrator/v1{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .header("X-Authentication", TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("X-Authentication", TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Starts a task job on `nodes` and returns its name.
    pub async fn task(&self, task: &str, params: Value, nodes: &[&str]) -> String {
        let (s, b) = self
            .post(
                "/command/task",
                json!({"task": task, "params": params, "scope": {"nodes": nodes}, "environment": "production"}),
            )
            .await;
        assert_eq!(s, 202, "{b}");
        b["job"]["name"].as_str().unwrap().to_owned()
    }

    /// Polls until the job is in a terminal state; returns the job document.
    pub async fn wait(&self, job: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (s, j) = self.get(&format!("/jobs/{job}")).await;
            assert_eq!(s, 200, "{j}");
            if ["finished", "failed", "stopped"].contains(&j["state"].as_str().unwrap()) {
                return j;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job} did not end: {j}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// All nodes of a job (one page).
    pub async fn nodes(&self, job: &str) -> Vec<Value> {
        let (s, b) = self.get(&format!("/jobs/{job}/nodes")).await;
        assert_eq!(s, 200, "{b}");
        b["items"].as_array().unwrap().clone()
    }

    /// All events of a job.
    pub async fn events(&self, job: &str) -> Vec<Value> {
        let (s, b) = self.get(&format!("/jobs/{job}/events")).await;
        assert_eq!(s, 200, "{b}");
        b["items"].as_array().unwrap().clone()
    }
}

/// Keys and JSON types of a document, recursively for objects (arrays: the
/// first element), as `path: type` lines; used to compare with captures.
pub fn shape(v: &Value) -> Vec<String> {
    fn walk(v: &Value, path: String, out: &mut Vec<String>) {
        let t = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        out.push(format!("{path}: {t}"));
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    walk(x, format!("{path}.{k}"), out);
                }
            }
            Value::Array(a) => {
                if let Some(x) = a.first() {
                    walk(x, format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, "$".into(), &mut out);
    out.sort();
    out
}

pub fn capture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../orchestrator-types/tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

/// Asserts that every `path: type` of the capture also appears in ours,
/// except the listed paths (free-form content that differs by nature).
pub fn assert_covers(ours: &Value, capture: &Value, free_form: &[&str]) {
    let mine = shape(ours);
    let missing: Vec<String> = shape(capture)
        .into_iter()
        .filter(|l| !free_form.iter().any(|f| l.starts_with(f)))
        .filter(|l| !mine.contains(l))
        .collect();
    assert!(
        missing.is_empty(),
        "keys/types in the capture but not in our response: {missing:#?}\nours: {ours:#}"
    );
}

/// The orchestrator binary on a state directory, killed with SIGKILL on drop.
pub struct Binary {
    child: Child,
    pub base: String,
    client: reqwest::Client,
}

/// Writes the tokens file and an inventory of `nodes` (certname → SLEEP).
pub fn setup(dir: &Path, nodes: &[(String, String)]) {
    std::fs::write(dir.join("tokens"), format!("{TOKEN}\n")).unwrap();
    let inv: Vec<Value> = nodes
        .iter()
        .map(|(n, sleep)| json!({"certname": n, "env": {"NODE_NAME": n, "SLEEP": sleep}}))
        .collect();
    std::fs::write(
        dir.join("inventory.json"),
        serde_json::to_vec(&json!({ "nodes": inv })).unwrap(),
    )
    .unwrap();
}

impl Binary {
    /// Starts the binary (through a shell that leaves fd 7 open in it, as
    /// a careless parent would) and waits for its "listening" line.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        let state: PathBuf = dir.join("state");
        let mut child = Command::new("/bin/sh")
            .args(["-c", "exec 7</dev/null; exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_kick-orchestrator"))
            .args(["--plain", "--listen", "127.0.0.1:0", "--concurrency", "8"])
            .args(extra)
            .arg("--tokens-file")
            .arg(dir.join("tokens"))
            .arg("--inventory")
            .arg(dir.join("inventory.json"))
            .arg("--modulepath")
            .arg(fixtures().join("modules"))
            .arg("--state-dir")
            .arg(&state)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split("service-url=")
            .nth(1)
            .unwrap_or_else(|| panic!("no listening line, got {line:?}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        Self {
            child,
            base,
            client: reqwest::Client::new(),
        }
    }

    pub fn kill(mut self) {
        // SIGKILL by pid: std's kill sends it.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub async fn call(&self, post: Option<Value>, path: &str) -> (u16, Value) {
        self.send(post.map(|b| b.to_string()), path).await
    }

    /// A GET, or a POST of `post` as written (keys in its order).
    pub async fn send(&self, post: Option<String>, path: &str) -> (u16, Value) {
        let url = format!("{}/orchestrator/v1{path}", self.base);
        let req = match post {
            Some(b) => self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(b),
            None => self.client.get(url),
        };
        match req.header("X-Authentication", TOKEN).send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
