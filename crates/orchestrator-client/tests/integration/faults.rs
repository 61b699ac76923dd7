//! Reads under fault injection: 5xx bursts, resets, slow and cut-off bodies,
//! HTML error pages, expired tokens.

use std::time::Duration;

use futures::StreamExt;
use orchestrator_client::{Client, Error};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{Action, RawServer, TOKEN, json_response, settings, write_token};

const JOB_PATH: &str = "/orchestrator/v1/jobs/81";

fn job_body() -> serde_json::Value {
    crate::support::job_json("81", None, "")
}

fn client(url: &str, attempts: u32) -> Client {
    let mut s = settings(url);
    s.retry = crate::support::fast_retry(attempts);
    Client::new(&s).unwrap().0
}

async fn requests_to(server: &MockServer, p: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == p)
        .count()
}

#[tokio::test]
async fn a_burst_of_502_503_504_is_retried_until_success() {
    let server = MockServer::start().await;
    for status in [502, 503, 504] {
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(ResponseTemplate::new(status).set_body_string("busy"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(job_body()))
        .with_priority(2)
        .mount(&server)
        .await;
    let job = client(&server.uri(), 5).job("81").await.unwrap();
    assert_eq!(job.name, "81");
    assert_eq!(requests_to(&server, JOB_PATH).await, 4);
}

#[tokio::test]
async fn persistent_503_gives_up_after_the_attempt_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_string("<html><body>Service Unavailable</body></html>"),
        )
        .mount(&server)
        .await;
    let err = client(&server.uri(), 3).job("81").await.unwrap_err();
    assert!(
        matches!(err, Error::BadResponse { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(requests_to(&server, JOB_PATH).await, 3);
}

#[tokio::test]
async fn clear_errors_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "kind": "puppetlabs.orchestrator/unknown-job",
            "msg": "No job exists for id 81",
            "details": {"id": "81"}
        })))
        .mount(&server)
        .await;
    let err = client(&server.uri(), 5).job("81").await.unwrap_err();
    assert_eq!(err.api_kind(), Some("puppetlabs.orchestrator/unknown-job"));
    assert!(!err.is_auth());
    let msg = err.to_string();
    assert!(msg.contains("No job exists for id 81"), "{msg}");
    assert!(msg.contains("kick job list"), "{msg}");
    assert_eq!(requests_to(&server, JOB_PATH).await, 1);
}

#[tokio::test]
async fn expired_token_says_how_to_get_a_new_one() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "kind": "puppetlabs.rbac/token-expired",
            "msg": "The provided token has expired."
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = write_token(dir.path(), TOKEN);
    let mut s = settings(&server.uri());
    s.token_file = Some(token_file.clone());
    let (client, _) = Client::new(&s).unwrap();
    let err = client.job("81").await.unwrap_err();
    assert!(err.is_auth());
    assert!(matches!(err, Error::Api { status: 401, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("The provided token has expired."), "{msg}");
    assert!(msg.contains("puppet access login"), "{msg}");
    assert!(msg.contains(&token_file.display().to_string()), "{msg}");
    assert!(!msg.contains(TOKEN), "{msg}");
    assert_eq!(requests_to(&server, JOB_PATH).await, 1);
}

#[tokio::test]
async fn html_error_page_is_a_clear_bad_response() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(
            ResponseTemplate::new(500)
                .insert_header("content-type", "text/html")
                .set_body_string("<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n<body>nginx</body></html>"),
        )
        .mount(&server)
        .await;
    let err = client(&server.uri(), 3).job("81").await.unwrap_err();
    let Error::BadResponse {
        status,
        reason,
        body_excerpt,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 500);
    assert!(reason.contains("HTML page"), "{reason}");
    assert!(!err.is_transient());
    assert!(
        body_excerpt.starts_with("<!DOCTYPE html> <html>"),
        "{body_excerpt}"
    );
    assert!(
        err.to_string().contains("500 Internal Server Error"),
        "{err}"
    );
    // 500 is the orchestrator's own answer: not retried.
    assert_eq!(requests_to(&server, JOB_PATH).await, 1);
}

#[tokio::test]
async fn wrong_shape_json_is_a_bad_response() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"unexpected": true})),
        )
        .mount(&server)
        .await;
    let err = client(&server.uri(), 3).job("81").await.unwrap_err();
    assert!(
        matches!(err, Error::BadResponse { status: 200, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("not what the Orchestrator API sends"),
        "{err}"
    );
}

#[tokio::test]
async fn slow_responses_hit_the_timeout_and_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(job_body())
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let mut s = settings(&server.uri());
    s.request_timeout = Duration::from_millis(200);
    s.retry = crate::support::fast_retry(2);
    let (client, _) = Client::new(&s).unwrap();
    let err = client.job("81").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().contains("did not answer within 0.2s"),
        "{err}"
    );
    assert_eq!(requests_to(&server, JOB_PATH).await, 2);
}

#[tokio::test]
async fn one_slow_response_then_a_fast_one_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(job_body())
                .set_delay(Duration::from_secs(5)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(job_body()))
        .with_priority(2)
        .mount(&server)
        .await;
    let mut s = settings(&server.uri());
    s.request_timeout = Duration::from_millis(200);
    let (client, _) = Client::new(&s).unwrap();
    assert_eq!(client.job("81").await.unwrap().name, "81");
}

#[tokio::test]
async fn connection_resets_are_retried_then_reported() {
    let server = RawServer::start(|_, _| Action::Drop).await;
    let err = client(&server.url, 3).job("81").await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_transient());
    let msg = err.to_string();
    assert!(
        msg.contains("the connection broke before an answer came"),
        "{msg}"
    );
    assert!(!msg.contains("error sending request"), "{msg}");
    assert_eq!(server.count("GET", JOB_PATH), 3);
}

#[tokio::test]
async fn a_reset_then_an_answer_succeeds() {
    let body = job_body().to_string();
    let server = RawServer::start(move |_, seen| {
        if seen.len() < 2 {
            Action::Drop
        } else {
            json_response(200, &body)
        }
    })
    .await;
    assert_eq!(client(&server.url, 5).job("81").await.unwrap().name, "81");
    assert_eq!(server.count("GET", JOB_PATH), 3);
}

#[tokio::test]
async fn truncated_body_is_retried_then_reported_as_cut_off() {
    let server = RawServer::start(|_, _| {
        Action::Send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\": \"https://pe/jobs/81\", \"na"
                .to_vec(),
        )
    })
    .await;
    let err = client(&server.url, 3).job("81").await.unwrap_err();
    let Error::BadResponse { status, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 200);
    assert!(err.is_transient());
    assert!(reason.contains("cut off"), "{reason}");
    assert_eq!(server.count("GET", JOB_PATH), 3);
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let url = crate::support::refused_url().await;
    let err = client(&url, 2).root().await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.contains("refused"), "{msg}");
}

#[tokio::test]
async fn retrying_stops_at_the_time_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let mut s = settings(&server.uri());
    s.retry = orchestrator_client::RetryPolicy {
        max_attempts: 100,
        initial_delay: Duration::from_millis(40),
        max_delay: Duration::from_millis(80),
        max_elapsed: Duration::from_millis(150),
        submit_settle: Duration::ZERO,
    };
    let (client, _) = Client::new(&s).unwrap();
    let started = std::time::Instant::now();
    client.job("81").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let n = requests_to(&server, JOB_PATH).await;
    // 100 attempts were allowed; the 150 ms budget leaves room for a few.
    assert!(n <= 5, "{n} attempts");
}

#[test]
fn client_and_its_futures_can_move_between_threads() {
    fn send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let client = client("http://127.0.0.1:1", 1);
    send_sync(&client);
    send(client.run_task(Default::default()));
    send(client.job("1"));
    send(client.nodes("1", 10));
}

#[tokio::test]
async fn an_oversized_body_is_refused_not_buffered() {
    let server = RawServer::start(|_, _| {
        Action::Send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999999999999\r\n\r\n{\"items\": ["
                .to_vec(),
        )
    })
    .await;
    let err = client(&server.url, 3).job("81").await.unwrap_err();
    assert!(err.to_string().contains("larger than 256 MiB"), "{err}");
    assert!(!err.is_transient());
    assert_eq!(server.count("GET", JOB_PATH), 1);
}

#[test]
fn errors_can_cross_threads_and_be_boxed() {
    fn send_sync_static<T: Send + Sync + 'static>() {}
    send_sync_static::<Error>();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::Usage {
        message: "x".into(),
    });
    assert_eq!(boxed.to_string(), "x");
}

#[test]
fn plain_http_to_another_host_warns_that_the_token_travels_unencrypted() {
    let (client, warnings) = Client::new(&settings("http://pe.example:8143/")).unwrap();
    assert_eq!(client.base_url(), "http://pe.example:8143/orchestrator/v1");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].0.contains("unencrypted"), "{warnings:?}");
    let (_, warnings) = Client::new(&settings("http://localhost:8143")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[tokio::test]
async fn malformed_ids_never_reach_the_server() {
    let server = MockServer::start().await;
    let client = client(&server.uri(), 3);
    for bad in ["..", "81/../../tasks", "abc"] {
        let err = client.job(bad).await.unwrap_err();
        assert!(matches!(err, Error::Usage { .. }), "{err:?}");
    }
    let first = client.nodes("../x", 10).next().await.unwrap();
    assert!(matches!(first, Err(Error::Usage { .. })), "{first:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_cap() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(JOB_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(job_body()))
        .with_priority(2)
        .mount(&server)
        .await;
    let mut s = settings(&server.uri());
    s.retry.max_delay = Duration::from_millis(700);
    let (client, _) = Client::new(&s).unwrap();
    let started = std::time::Instant::now();
    client.job("81").await.unwrap();
    // Without Retry-After the first retry waits at most 5 ms; with it, the
    // 1 s asked for, capped at max_delay.
    assert!(
        started.elapsed() >= Duration::from_millis(650),
        "{:?}",
        started.elapsed()
    );
}
