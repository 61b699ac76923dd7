//! Hostile numbers and odd input: refused with PE's JSON errors, never a
//! panic, a hang or plain text.

use serde_json::{Value, json};

use crate::common::{Server, TOKEN, config};

const VALIDATORS: &str = "puppetlabs.validators/validation-error";
const VALIDATION: &str = "puppetlabs.orchestrator/validation-error";

fn psick_config(n: usize) -> kick_orchestrator::ConfigBuilder {
    config(n).module("psick", crate::common::fixtures().join("modules/psick"))
}

#[tokio::test]
async fn out_of_range_numbers_are_refused() {
    let s = Server::start(psick_config(1).build()).await;
    let scope = json!({"nodes": ["node-0000.example"]});
    let huge = i64::MAX as u64;
    let cases = [
        (
            "/command/task",
            json!({"task": "fixture::trivial", "params": {}, "scope": scope, "timeout": huge}),
            "timeout",
        ),
        (
            "/command/deploy",
            json!({"environment": "production", "scope": scope, "timeout": huge}),
            "timeout",
        ),
        (
            "/command/deploy",
            json!({"environment": "production", "scope": scope, "concurrency": 1u64 << 61}),
            "concurrency",
        ),
        (
            "/command/deploy",
            json!({"environment": "production", "scope": scope, "concurrency": 0}),
            "concurrency",
        ),
        (
            "/command/deploy",
            json!({"environment": "production", "scope": scope, "http_connect_timeout": huge}),
            "http_connect_timeout",
        ),
        (
            "/command/deploy",
            json!({"environment": "", "scope": scope}),
            "environment",
        ),
        (
            "/command/task",
            json!({"task": "fixture::echo_json", "params": {"message": "a\u{0}b"}, "scope": scope}),
            "NUL",
        ),
    ];
    for (path, body, word) in cases {
        let (st, e) = s.post(path, body.clone()).await;
        assert_eq!(
            (st, e["kind"].as_str()),
            (400, Some(VALIDATORS)),
            "{body} → {e}"
        );
        assert!(e["msg"].as_str().unwrap().contains(word), "{body} → {e}");
    }
    // The largest accepted timeout runs (and ends) normally.
    let (st, b) = s
        .post(
            "/command/task",
            json!({"task": "fixture::trivial", "params": {}, "scope": scope, "timeout": 365 * 24 * 3600}),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let j = s.wait(b["job"]["name"].as_str().unwrap()).await;
    assert_eq!(j["state"], "finished");
    s.stop().await;
}

#[tokio::test]
async fn odd_urls_and_methods_answer_pe_json() {
    let s = Server::start(config(1).build()).await;
    for path in ["/jobs/+1", "/jobs/%FF", "/jobs/%FF/nodes", "/jobs/1%00"] {
        let (st, e) = s.get(path).await;
        assert_eq!(
            (st, e["kind"].as_str()),
            (400, Some(VALIDATION)),
            "{path} → {e}"
        );
    }
    for (method, path) in [("DELETE", "/jobs"), ("GET", "/command/task"), ("PUT", "/")] {
        let r = s
            .client
            .request(method.parse().unwrap(), s.url(path))
            .header("X-Authentication", TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["kind"], "puppetlabs.orchestrator/method-not-allowed");
        assert!(e["msg"].as_str().unwrap().contains(method), "{e}");
        assert_eq!(e["details"]["method"], method);
    }

    let (st, root) = s.get("/").await;
    assert_eq!(st, 200, "{root}");
    assert!(root["info"]["title"].is_string());
    let r = s
        .client
        .get(format!("{}/orchestrator/v1/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the root with a slash needs a token too");
    s.stop().await;
}

#[tokio::test]
async fn an_empty_header_falls_back_to_the_token_parameter() {
    let s = Server::start(config(1).build()).await;
    let r = s
        .client
        .get(s.url(&format!("/jobs?token={TOKEN}")))
        .header("X-Authentication", "")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}
