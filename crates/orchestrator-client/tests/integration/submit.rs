//! Job submission is at most once: after an ambiguous failure the job is
//! looked up by its marker, and never re-sent once it may have arrived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator_client::types::{DeployRequest, Scope, TaskRequest};
use orchestrator_client::{Client, Error};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{Action, RawServer, job_json, json_response, marker_of, settings};

const TASK_PATH: &str = "/orchestrator/v1/command/task";
const JOBS_PATH: &str = "/orchestrator/v1/jobs";

fn task_request() -> TaskRequest {
    let mut userdata = serde_json::Map::new();
    userdata.insert("requested_by".into(), "alice".into());
    TaskRequest {
        environment: Some("production".into()),
        scope: Scope::nodes(["a.example", "b.example"]),
        task: "psick::puppet_agent".into(),
        description: Some("nightly run".into()),
        userdata: Some(userdata),
        ..TaskRequest::default()
    }
}

fn client(url: &str) -> Client {
    Client::new(&settings(url)).unwrap().0
}

/// A GET /jobs page listing some unrelated jobs and, when `marker` is
/// known, job 42 carrying it at `where_`.
fn jobs_page(marker: Option<&str>, where_: &str) -> String {
    let mut items = vec![job_json("40", Some("someone-elses-marker"), "userdata")];
    if let Some(m) = marker {
        items.push(job_json("42", Some(m), where_));
    }
    items.push(job_json("39", None, ""));
    serde_json::json!({"items": items, "pagination": {"limit": 50, "offset": 0, "total": items.len()}})
        .to_string()
}

/// A raw server that reads every POST and drops the connection (the
/// response is lost), and lists the jobs; `job_exists` says whether the
/// lost POST created a job.
async fn lost_post_server(job_exists: bool, where_: &'static str) -> RawServer {
    RawServer::start(move |req, seen| {
        if req.method == "POST" {
            return Action::Drop;
        }
        let marker = seen
            .iter()
            .find(|r| r.method == "POST")
            .map(|r| marker_of(&r.body));
        let marker = marker.as_deref().filter(|_| job_exists);
        json_response(200, &jobs_page(marker, where_))
    })
    .await
}

#[tokio::test]
async fn success_sends_the_marker_in_userdata_and_description() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TASK_PATH))
        .respond_with(ResponseTemplate::new(202).set_body_json(serde_json::json!(
            {"job": {"id": "https://pe:8143/orchestrator/v1/jobs/81", "name": "81"}}
        )))
        .expect(1)
        .mount(&server)
        .await;
    let job = client(&server.uri())
        .run_task(task_request())
        .await
        .unwrap();
    assert_eq!(job.name, "81");
    let reqs = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    let marker = body["userdata"]["kick_marker"].as_str().unwrap();
    assert_eq!(marker.len(), 32);
    assert_eq!(body["userdata"]["requested_by"], "alice");
    assert_eq!(body["description"], format!("nightly run [kick:{marker}]"));
    assert_eq!(body["task"], "psick::puppet_agent");
    assert_eq!(
        reqs[0].headers.get("content-type").unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn lost_response_is_found_by_marker_and_not_resent() {
    let server = lost_post_server(true, "options.userdata").await;
    let job = client(&server.url).run_task(task_request()).await.unwrap();
    assert_eq!(job.name, "42");
    assert_eq!(server.count("POST", TASK_PATH), 1);
    let reqs = server.requests.lock().unwrap().clone();
    let lookup = reqs.iter().find(|r| r.method == "GET").unwrap();
    assert!(lookup.target.starts_with(JOBS_PATH), "{}", lookup.target);
    for param in ["order_by=timestamp", "order=desc", "limit=50", "type=task"] {
        assert!(
            lookup.target.contains(param),
            "{} lacks {param}",
            lookup.target
        );
    }
}

#[tokio::test]
async fn marker_found_at_top_level_userdata() {
    let server = lost_post_server(true, "userdata").await;
    let job = client(&server.url).run_task(task_request()).await.unwrap();
    assert_eq!(job.name, "42");
    assert_eq!(server.count("POST", TASK_PATH), 1);
}

#[tokio::test]
async fn lookup_finding_nothing_is_uncertain_and_never_resends() {
    let server = lost_post_server(false, "").await;
    let err = client(&server.url)
        .run_task(task_request())
        .await
        .unwrap_err();
    let Error::SubmitUncertain { marker, .. } = &err else {
        panic!("{err:?}")
    };
    let sent_marker = {
        let reqs = server.requests.lock().unwrap();
        marker_of(&reqs.iter().find(|r| r.method == "POST").unwrap().body)
    };
    assert_eq!(*marker, sent_marker);
    let msg = err.to_string();
    assert!(msg.contains("kick job list"), "{msg}");
    assert!(msg.contains(&format!("[kick:{sent_marker}]")), "{msg}");
    assert!(msg.contains("not resubmitted"), "{msg}");
    assert_eq!(server.count("POST", TASK_PATH), 1);
    // Looked twice: once at once, once after settling.
    assert_eq!(server.count("GET", JOBS_PATH), 2);
}

/// Records the marker of the POST it answers, and answers too late.
struct SlowAccept {
    marker: Arc<Mutex<Option<String>>>,
}

impl Respond for SlowAccept {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        *self.marker.lock().unwrap() = Some(marker_of(&request.body));
        ResponseTemplate::new(202)
            .set_body_json(serde_json::json!({"job": {"id": "https://pe/jobs/42", "name": "42"}}))
            .set_delay(Duration::from_secs(5))
    }
}

/// Lists the job created by [`SlowAccept`], marked only in its description.
struct ListByDescription {
    marker: Arc<Mutex<Option<String>>>,
}

impl Respond for ListByDescription {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let marker = self.marker.lock().unwrap().clone();
        ResponseTemplate::new(200).set_body_raw(
            jobs_page(marker.as_deref(), "description"),
            "application/json",
        )
    }
}

#[tokio::test]
async fn timed_out_deploy_is_found_by_description() {
    let server = MockServer::start().await;
    let marker = Arc::new(Mutex::new(None));
    Mock::given(method("POST"))
        .and(path("/orchestrator/v1/command/deploy"))
        .respond_with(SlowAccept {
            marker: marker.clone(),
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(JOBS_PATH))
        .respond_with(ListByDescription { marker })
        .mount(&server)
        .await;
    let mut s = settings(&server.uri());
    s.request_timeout = Duration::from_millis(300);
    let (client, _) = Client::new(&s).unwrap();
    let req = DeployRequest {
        environment: Some("production".into()),
        scope: Scope::nodes(["a.example"]),
        ..DeployRequest::default()
    };
    let job = client.deploy(req).await.unwrap();
    assert_eq!(job.name, "42");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        reqs.iter().filter(|r| r.method.as_str() == "POST").count(),
        1
    );
    let lookup = reqs.iter().find(|r| r.method.as_str() == "GET").unwrap();
    assert!(lookup.url.query().unwrap().contains("type=deploy"));
}

#[tokio::test]
async fn gateway_error_on_submit_is_looked_up_not_resent() {
    let server = RawServer::start(|req, seen| {
        if req.method == "POST" {
            return Action::Send(
                b"HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            );
        }
        let marker = seen
            .iter()
            .find(|r| r.method == "POST")
            .map(|r| marker_of(&r.body));
        json_response(200, &jobs_page(marker.as_deref(), "options.userdata"))
    })
    .await;
    let job = client(&server.url).run_task(task_request()).await.unwrap();
    assert_eq!(job.name, "42");
    assert_eq!(server.count("POST", TASK_PATH), 1);
}

#[tokio::test]
async fn accepted_but_cut_off_answer_is_looked_up() {
    let server = RawServer::start(|req, seen| {
        if req.method == "POST" {
            return Action::Send(
                b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"job\": {\"id\""
                    .to_vec(),
            );
        }
        let marker = seen
            .iter()
            .find(|r| r.method == "POST")
            .map(|r| marker_of(&r.body));
        json_response(200, &jobs_page(marker.as_deref(), "options.userdata"))
    })
    .await;
    let job = client(&server.url).run_task(task_request()).await.unwrap();
    assert_eq!(job.name, "42");
    assert_eq!(server.count("POST", TASK_PATH), 1);
}

#[tokio::test]
async fn clear_rejection_is_returned_without_lookup() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TASK_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "kind": "puppetlabs.orchestrator/empty-target",
            "msg": "A target must be specified"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .run_task(task_request())
        .await
        .unwrap_err();
    assert_eq!(err.api_kind(), Some("puppetlabs.orchestrator/empty-target"));
    assert!(err.to_string().contains("--nodes"), "{err}");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1, "no lookup after a clear answer");
}

#[tokio::test]
async fn refused_connection_is_not_uncertain() {
    let url = crate::support::refused_url().await;
    let err = client(&url).run_task(task_request()).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}
