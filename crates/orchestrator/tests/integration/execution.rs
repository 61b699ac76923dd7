//! How tasks run and how their output becomes results (PE's rules).

use std::time::Duration;

use serde_json::json;

use crate::common::{Server, config};

async fn one(
    s: &Server,
    task: &str,
    params: serde_json::Value,
) -> (serde_json::Value, serde_json::Value) {
    let job = s.task(task, params, &["node-0000.example"]).await;
    let j = s.wait(&job).await;
    let nodes = s.nodes(&job).await;
    (j, nodes[0].clone())
}

#[tokio::test]
async fn result_rules() {
    let s = Server::start(config(1).build()).await;

    let (j, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": "hi", "count": 2}),
    )
    .await;
    assert_eq!(
        (j["state"].as_str(), n["state"].as_str()),
        (Some("finished"), Some("finished"))
    );
    let r = &n["result"];
    assert_eq!(
        r["stdin"],
        json!({"message": "hi", "count": 2, "_task": "fixture::echo_json"})
    );
    assert_eq!(r["pt_message"], "hi");
    assert_eq!(r["pt_count"], "2");
    assert_eq!(r["node"], "node-0000.example");

    let (_, n) = one(&s, "fixture::plain", json!({})).await;
    assert_eq!(
        n["result"],
        json!({"_output": "hello from node-0000.example\nsecond line\n"})
    );

    let (j, n) = one(&s, "fixture::exit3", json!({})).await;
    assert_eq!(
        (j["state"].as_str(), n["state"].as_str()),
        (Some("failed"), Some("failed"))
    );
    assert_eq!(
        n["result"],
        json!({"_output": "", "_error": {"kind": "puppetlabs.tasks/task-error",
            "msg": "The task errored with a code 3:\nboom on stderr",
            "details": {"exitcode": 3, "exit_code": 3}}})
    );

    let (_, n) = one(&s, "fixture::exit3_stdout", json!({})).await;
    assert_eq!(
        n["result"]["_error"]["msg"], "The task errored with a code 3",
        "stderr only when stdout is empty"
    );
    assert_eq!(n["result"]["_output"], "some stdout\n");

    let (_, n) = one(&s, "fixture::error", json!({})).await;
    assert_eq!(n["state"], "failed");
    assert_eq!(
        n["result"],
        json!({"_error": {"kind": "fixture/oops", "msg": "it broke", "details": {"a": 1}}})
    );

    let (_, n) = one(&s, "fixture::string_error", json!({})).await;
    assert_eq!(
        n["state"], "failed",
        "an _error with exit 0 still fails the node"
    );
    assert_eq!(
        n["result"]["_error"],
        json!({"kind": "puppetlabs.tasks/task-error", "msg": "plain string error", "details": {}})
    );

    let (_, n) = one(&s, "fixture::multi", json!({})).await;
    assert_eq!(n["result"], json!({"implementation": "multi_impl.sh"}));

    let (_, n) = one(&s, "fixture", json!({})).await;
    assert_eq!(
        n["result"],
        json!({"init": true}),
        "module name alone runs init"
    );

    let (_, n) = one(&s, "fixture::envonly", json!({"message": "via env"})).await;
    assert_eq!(
        n["result"],
        json!({"stdin_len": 0, "pt_message": "via env"})
    );

    let (_, n) = one(&s, "fixture::typed", json!({"name": "x"})).await;
    assert_eq!(
        n["result"]["pt_name"], "unset",
        "input_method stdin: no PT_ variables"
    );
    s.stop().await;
}

#[tokio::test]
async fn noop_is_passed_when_supported_and_refused_otherwise() {
    let s = Server::start(config(1).build()).await;
    let (st, b) = s
        .post(
            "/command/task",
            json!({"task": "fixture::echo_json", "params": {}, "noop": true,
        "scope": {"nodes": ["node-0000.example"]}}),
        )
        .await;
    assert_eq!(st, 202);
    let job = b["job"]["name"].as_str().unwrap().to_owned();
    s.wait(&job).await;
    let n = &s.nodes(&job).await[0];
    assert_eq!(n["result"]["stdin"]["_noop"], true);
    let ev = s.events(&job).await;
    assert_eq!(ev[0]["details"]["detail"], json!({"noop": true}));

    let (st, b) = s
        .post(
            "/command/task",
            json!({"task": "fixture::plain", "params": {}, "noop": true,
        "scope": {"nodes": ["node-0000.example"]}}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(b["msg"], "Task fixture::plain does not support noop");
    s.stop().await;
}

#[tokio::test]
async fn timeout_ends_the_whole_process_tree() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(1).build()).await;
    let (st, b) = s
        .post(
            "/command/task",
            json!({"task": "fixture::grandchild",
        "params": {"dir": dir.path()}, "timeout": 1, "scope": {"nodes": ["node-0000.example"]}}),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let job = b["job"]["name"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let j = s.wait(&job).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(j["state"], "failed");
    let n = &s.nodes(&job).await[0];
    assert_eq!(n["state"], "failed");
    assert_eq!(n["result"]["_error"]["kind"], "puppetlabs.tasks/task-error");
    assert_eq!(n["result"]["_error"]["details"]["timeout"], 1);
    assert!(
        n["result"]["_error"]["msg"]
            .as_str()
            .unwrap()
            .contains("timed out after 1 seconds")
    );
    // The background grandchild was in the task's process group, the detached one in a
    // session of its own: both are gone the moment the node ends, no waiting.
    let stopped = crate::common::stopped_pids(n);
    for file in ["node-0000.example.pid", "node-0000.example.detached.pid"] {
        let pid = read_pid(&dir.path().join(file));
        assert!(!alive(pid), "{file}: {pid} survived the timeout");
        assert!(
            stopped.contains(&pid.into()),
            "{file}: {pid} not listed: {n:#}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn output_beyond_the_cap_fails_the_node() {
    let s = Server::start(config(1).max_output_bytes(1000).build()).await;
    let (_, n) = one(&s, "fixture::bigout", json!({"bytes": 5000})).await;
    assert_eq!(n["state"], "failed");
    assert_eq!(
        n["result"]["_error"]["kind"],
        "puppetlabs.pxp-agent/execution-error"
    );
    let (_, n) = one(&s, "fixture::bigout", json!({"bytes": 900})).await;
    assert_eq!(n["state"], "finished");
    assert_eq!(n["result"]["_output"].as_str().unwrap().len(), 900);
    s.stop().await;
}

#[tokio::test]
async fn node_env_and_workdir_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = crate::common::node("node-0000.example");
    n.workdir = Some(dir.path().to_owned());
    n.env.insert("NODE_NAME".into(), "custom".into());
    let s = Server::start(config(0).node(n).build()).await;
    let (_, n) = one(&s, "fixture::echo_json", json!({})).await;
    assert_eq!(n["result"]["node"], "custom");
    assert_eq!(n["result"]["pwd"], dir.path().to_str().unwrap());
    s.stop().await;
}

/// Max number of intervals overlapping at once.
fn max_overlap(dir: &std::path::Path) -> (usize, usize) {
    let mut points = Vec::new();
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let mut lines = text.lines();
        let start: u128 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let end: u128 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        points.push((start, 1i64));
        points.push((end, -1i64));
        n += 1;
    }
    points.sort();
    let (mut cur, mut max) = (0i64, 0i64);
    for (_, d) in points {
        cur += d;
        max = max.max(cur);
    }
    (max as usize, n)
}

#[tokio::test]
async fn concurrency_limit_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(20).concurrency(4).build()).await;
    let nodes: Vec<String> = (0..20).map(|i| format!("node-{i:04}.example")).collect();
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let job = s
        .task(
            "fixture::sleep",
            json!({"seconds": 0.2, "dir": dir.path()}),
            &refs,
        )
        .await;
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "finished", "{j}");
    let (max, n) = max_overlap(dir.path());
    assert_eq!(n, 20);
    assert!(max <= 4, "{max} nodes ran at once with concurrency 4");
    assert!(max >= 2, "expected parallelism, saw {max}");
    s.stop().await;
}

#[tokio::test]
async fn deploy_concurrency_limits_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        config(6)
            .module("psick", crate::common::fixtures().join("modules/psick"))
            .build(),
    )
    .await;
    let nodes: Vec<String> = (0..6).map(|i| format!("node-{i:04}.example")).collect();
    let (st, b) = s
        .post(
            "/command/deploy",
            json!({"environment": "production", "concurrency": 1,
        "scope": {"nodes": nodes}}),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let job = b["job"]["name"].as_str().unwrap().to_owned();
    s.wait(&job).await;
    let nodes = s.nodes(&job).await;
    let mut spans: Vec<(String, String)> = nodes
        .iter()
        .map(|n| {
            (
                n["start_timestamp"].as_str().unwrap().to_owned(),
                n["finish_timestamp"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    spans.sort();
    // Node runs are sequential: each starts no earlier than the previous finished.
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "{spans:?}");
    }
    let _ = dir;
    s.stop().await;
}

pub(crate) fn read_pid(file: &std::path::Path) -> u32 {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Alive and not a zombie.
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}
