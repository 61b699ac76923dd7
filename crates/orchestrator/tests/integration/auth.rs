//! RBAC-like authentication, permissions and the body size limit.

use kick_orchestrator::TokenSpec;
use serde_json::{Value, json};

use crate::common::{Server, config};

#[tokio::test]
async fn missing_and_wrong_tokens_are_refused() {
    let s = Server::start(config(1).build()).await;
    let r = s.client.get(s.url("/jobs")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["kind"], "puppetlabs.rbac/user-unauthenticated");
    let r = s
        .client
        .get(s.url("/jobs"))
        .header("X-Authentication", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["kind"], "puppetlabs.rbac/invalid-token");
    assert!(!e.to_string().contains("wrong"), "the token is not echoed");
    let r = s
        .client
        .get(s.url("/jobs?token=test-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "token query parameter");
    let r = s
        .client
        .post(s.url("/command/task"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(format!("{}/orchestrator/v1", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn task_permissions() {
    let limited = TokenSpec {
        token: "limited".into(),
        login: "operator".into(),
        tasks: Some(vec!["fixture::trivial".into()]),
        deploy: false,
        task_target: None,
        inventory: true,
        view_sensitive: false,
    };
    let s = Server::start(
        config(1)
            .token_spec(limited)
            .module("psick", crate::common::fixtures().join("modules/psick"))
            .build(),
    )
    .await;
    let post = |task: &str| {
        s.client
            .post(s.url("/command/task"))
            .header("X-Authentication", "limited")
            .json(&json!({"task": task, "params": {}, "scope": {"nodes": ["node-0000.example"]}}))
            .send()
    };
    let r = post("fixture::plain").await.unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["kind"], "puppetlabs.orchestrator/not-permitted");
    let r = post("fixture::trivial").await.unwrap();
    assert_eq!(r.status(), 202);
    let b: Value = r.json().await.unwrap();
    let j = s.wait(b["job"]["name"].as_str().unwrap()).await;
    assert_eq!(j["owner"]["login"], "operator");
    let r = s
        .client
        .post(s.url("/command/deploy"))
        .header("X-Authentication", "limited")
        .json(&json!({"environment": "production", "scope": {"nodes": ["node-0000.example"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .client
        .get(s.url("/tasks"))
        .header("X-Authentication", "limited")
        .send()
        .await
        .unwrap();
    let t: Value = r.json().await.unwrap();
    let plain = t["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "fixture::plain")
        .unwrap();
    assert_eq!(plain["permitted"], false);
    s.stop().await;
}

#[tokio::test]
async fn large_bodies_are_refused() {
    let s = Server::start(config(1).max_body_bytes(1024).build()).await;
    let big = "x".repeat(4096);
    let (st, e) = s
        .post(
            "/command/task",
            json!({"task": "fixture::echo_json", "params": {"message": big},
        "scope": {"nodes": ["node-0000.example"]}}),
        )
        .await;
    assert_eq!(st, 413);
    assert!(
        e["msg"].as_str().unwrap().contains("1024 byte limit"),
        "{e}"
    );
    s.stop().await;
}
