//! Fault injection with a scripted raw HTTP server: 5xx bursts, resets,
//! slow and truncated bodies, HTML error pages, a token expiring mid-watch,
//! a lost POST response. kick must not panic, must not start a job twice,
//! and must end with exit 1 and a clear message when it cannot go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::harness::{Run, kick, write_private};

/// What the server does with one request.
pub enum Reply {
    Json(u16, Value),
    Raw(u16, &'static str, String),
    /// Headers promise more bytes than are sent, then the connection closes.
    Truncated(String),
    /// Close the connection without answering.
    Reset,
    /// Answer after a delay.
    Slow(Duration, Value),
}

// orchestrator-client's raw servers read requests with the same file; kick's answer by method
// and target alone, and leave the head and body unread.
#[allow(dead_code)]
#[path = "../../../orchestrator-client/tests/integration/http_request.rs"]
pub mod http_request;

use http_request::{Request as Req, read_request};

type Handler = dyn Fn(&Req, usize) -> Reply + Send + Sync;

/// A server answering with `handler(request, n)`, where `n` counts the
/// requests to the same method and path (without query) so far.
pub struct Scripted {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub posts: Arc<AtomicUsize>,
}

impl Scripted {
    pub async fn start(handler: impl Fn(&Req, usize) -> Reply + Send + Sync + 'static) -> Scripted {
        let handler: Arc<Handler> = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let posts = Arc::new(AtomicUsize::new(0));
        let counts = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
            String,
            usize,
        >::new()));
        let p = posts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let counts = counts.clone();
                let posts = p.clone();
                tokio::spawn(async move {
                    loop {
                        let Some(req) = read_request(&mut sock).await else {
                            return;
                        };
                        if req.method == "POST" && req.target.contains("/command/task") {
                            posts.fetch_add(1, Ordering::SeqCst);
                        }
                        let key = format!(
                            "{} {}",
                            req.method,
                            req.target.split('?').next().unwrap_or("")
                        );
                        let n = {
                            let mut c = counts.lock().unwrap();
                            let e = c.entry(key).or_insert(0);
                            *e += 1;
                            *e - 1
                        };
                        let (status, ctype, body, truncated) = match handler(&req, n) {
                            Reply::Json(s, v) => (s, "application/json", v.to_string(), false),
                            Reply::Raw(s, ct, b) => (s, ct, b, false),
                            Reply::Truncated(b) => (200, "application/json", b, true),
                            Reply::Reset => return,
                            Reply::Slow(d, v) => {
                                tokio::time::sleep(d).await;
                                (200, "application/json", v.to_string(), false)
                            }
                        };
                        let len = if truncated {
                            body.len() + 500
                        } else {
                            body.len()
                        };
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {len}\r\n\r\n"
                        );
                        if sock.write_all(head.as_bytes()).await.is_err()
                            || sock.write_all(body.as_bytes()).await.is_err()
                            || truncated
                        {
                            return;
                        }
                    }
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        write_private(&dir.path().join("token"), "tok");
        Scripted { url, dir, posts }
    }

    pub fn args(&self, parts: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        v.extend([
            "--service-url".to_owned(),
            self.url.clone(),
            "--token-file".to_owned(),
            self.dir.path().join("token").display().to_string(),
        ]);
        v
    }
}

const BASE: &str = "http://x/orchestrator/v1";

fn job(state: &str) -> Value {
    json!({"id": format!("{BASE}/jobs/5"), "name": "5", "state": state, "type": "task",
           "options": {"task": "fixture::sleep", "noop": false}, "node_count": 1,
           "node_states": {"finished": 1}})
}

fn created() -> Value {
    json!({"job": {"id": format!("{BASE}/jobs/5"), "name": "5"}})
}

fn nodes() -> Value {
    json!({"items": [{"name": "a", "state": "finished", "result": {"status": "changed"}, "details": {}}],
           "pagination": {"offset": 0, "total": 1}})
}

fn finished_events() -> Value {
    json!({"items": [
        {"id": "1", "type": "node_running", "timestamp": "2026-01-01T00:00:00Z", "details": {"node": "a", "detail": {}}, "message": ""},
        {"id": "2", "type": "node_finished", "timestamp": "2026-01-01T00:00:01Z", "details": {"node": "a", "detail": {"status": "changed"}}, "message": ""},
        {"id": "3", "type": "job_finished", "timestamp": "2026-01-01T00:00:01Z", "details": {"detail": {}}, "message": ""}]})
}

/// The happy path of the fake orchestrator, for requests a scenario does not script.
fn normal(req: &Req) -> Reply {
    let p = req.target.as_str();
    if req.method == "POST" && p.contains("/command/task") {
        Reply::Json(202, created())
    } else if p.contains("/jobs/5/events") {
        Reply::Json(200, finished_events())
    } else if p.contains("/jobs/5/nodes") {
        Reply::Json(200, nodes())
    } else if p.contains("/jobs/5") {
        Reply::Json(200, job("finished"))
    } else if p.contains("/jobs") {
        Reply::Json(200, json!({"items": [], "pagination": {"total": 0}}))
    } else {
        Reply::Json(
            404,
            json!({"kind": "puppetlabs.orchestrator/unknown", "msg": "no"}),
        )
    }
}

async fn run(server: &Scripted) -> Run {
    kick(&server.args(&["task", "run", "fixture::sleep", "--nodes", "a"])).await
}

#[tokio::test(flavor = "multi_thread")]
async fn bursts_of_5xx_resets_and_truncated_bodies_are_ridden_out() {
    let server = Scripted::start(|req, n| {
        let p = req.target.as_str();
        match n {
            0 if p.contains("/events") => Reply::Raw(503, "text/html", "<html>busy</html>".into()),
            1 if p.contains("/events") => Reply::Reset,
            2 if p.contains("/events") => Reply::Truncated("{\"items\": [".into()),
            3 if p.contains("/events") => {
                Reply::Json(502, json!({"kind": "proxy", "msg": "bad gateway"}))
            }
            0 if p.contains("/nodes") => Reply::Reset,
            1 if p.contains("/nodes") => Reply::Raw(500, "text/plain", "oops".into()),
            _ => normal(req),
        }
    })
    .await;
    let r = run(&server).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(server.posts.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_events_endpoint_serving_html_falls_back_to_the_job() {
    let server = Scripted::start(|req, n| {
        let p = req.target.as_str();
        if p.contains("/events") {
            return Reply::Raw(
                404,
                "text/html",
                "<html><body>Not Found</body></html>".into(),
            );
        }
        if p.contains("/jobs/5") && !p.contains("/nodes") && n < 3 {
            return Reply::Json(200, job("running"));
        }
        normal(req)
    })
    .await;
    let r = run(&server).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("following the job's state instead"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("a "),
        "the node is reported at the end: {}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_expiring_mid_watch_ends_with_exit_1_and_what_to_do() {
    let server = Scripted::start(|req, n| {
        let p = req.target.as_str();
        if p.contains("/events") && n >= 1 {
            return Reply::Json(401, json!({"kind": "puppetlabs.rbac/token-expired", "msg": "The provided token has expired."}));
        }
        if p.contains("/events") {
            return Reply::Json(200, json!({"items": []}));
        }
        if p.contains("/jobs/5") && !p.contains("/nodes") {
            return Reply::Json(200, job("running"));
        }
        normal(req)
    })
    .await;
    let r = run(&server).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("token has expired"), "{}", r.stderr);
    assert!(r.stderr.contains("puppet access login"), "{}", r.stderr);
    assert!(r.stderr.contains("kick job watch 5"), "{}", r.stderr);
    assert_eq!(server.posts.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_orchestrator_gone_for_good_ends_with_exit_1() {
    let server = Scripted::start(|req, _| {
        if req.method == "POST" {
            return Reply::Json(202, created());
        }
        if req.target.ends_with("/jobs/5") {
            // The first look works, then everything fails.
            static SEEN: AtomicUsize = AtomicUsize::new(0);
            if SEEN.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::Json(200, job("running"));
            }
        }
        Reply::Raw(503, "text/html", "<html>maintenance</html>".into())
    })
    .await;
    let r = run(&server).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("kick job watch 5"), "{}", r.stderr);
    assert_eq!(server.posts.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_post_response_is_not_resubmitted() {
    // The POST reaches the server, the answer is lost; the job exists but is
    // not listed (yet): kick must say it may exist and not send it again.
    let server = Scripted::start(|req, _| {
        if req.method == "POST" {
            return Reply::Reset;
        }
        normal(req)
    })
    .await;
    let r = run(&server).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("may or may not have been started"),
        "{}",
        r.stderr
    );
    assert_eq!(
        server.posts.load(Ordering::SeqCst),
        1,
        "the job was submitted twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_answers_are_waited_for() {
    let server = Scripted::start(|req, n| {
        if req.target.contains("/events") && n == 0 {
            return Reply::Slow(Duration::from_millis(800), json!({"items": []}));
        }
        normal(req)
    })
    .await;
    let r = run(&server).await;
    assert_eq!(r.code, 2, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_json_in_a_success_answer_is_a_clear_error() {
    let server = Scripted::start(|req, _| {
        if req.target.ends_with("/jobs/5") {
            return Reply::Raw(200, "application/json", "{\"name\": 5, \"state\": [".into());
        }
        normal(req)
    })
    .await;
    let r = run(&server).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("unexpected response"), "{}", r.stderr);
}
