//! Job and node state machines, events cursor, stop and force stop, validation.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Server, config};

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn running_then_finished_with_events_in_order() {
    let s = Server::start(config(3).build()).await;
    let job = s
        .task(
            "fixture::sleep",
            json!({"seconds": 0.5}),
            &[
                "node-0000.example",
                "node-0001.example",
                "node-0002.example",
            ],
        )
        .await;
    // While running: job running, nodes running with elapsed durations and no result.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, j) = s.get(&format!("/jobs/{job}")).await;
    assert_eq!(j["state"], "running");
    let nodes = s.nodes(&job).await;
    for n in &nodes {
        assert_eq!(n["state"], "running");
        assert!(n["result"].is_null());
        assert!(n["finish_timestamp"].is_null());
        assert!(n["duration"].as_f64().unwrap() > 0.0);
    }
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "finished");
    assert_eq!(j["node_states"], json!({"finished": 3}));
    let ev = s.events(&job).await;
    let ids: Vec<&str> = ev.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7"]);
    assert_eq!(types(&ev[..3]), ["node_running"; 3]);
    assert_eq!(types(&ev[3..6]), ["node_finished"; 3]);
    assert_eq!(ev[6]["type"], "job_finished");
    assert!(ev[6]["details"].get("node").is_none());
    // node_finished carries the result.
    assert_eq!(ev[3]["details"]["detail"], json!({"slept": true}));
    // latest-event-id points at the node's last event.
    for n in s.nodes(&job).await {
        let id = n["latest-event-id"].as_u64().unwrap();
        assert_eq!(ev[id as usize - 1]["details"]["node"], n["name"]);
    }
    s.stop().await;
}

#[tokio::test]
async fn events_cursor_returns_only_new_events() {
    let s = Server::start(config(2).build()).await;
    let job = s
        .task(
            "fixture::sleep",
            json!({"seconds": 0.3}),
            &["node-0000.example", "node-0001.example"],
        )
        .await;
    let mut start = 1u64;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (st, b) = s.get(&format!("/jobs/{job}/events?start={start}")).await;
        assert_eq!(st, 200);
        for e in b["items"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().parse::<u64>().unwrap());
        }
        let next: u64 = b["next-events"]["event"].as_str().unwrap().parse().unwrap();
        assert!(
            b["next-events"]["id"]
                .as_str()
                .unwrap()
                .ends_with(&format!("events?start={next}"))
        );
        if let Some(last) = seen.last() {
            assert_eq!(next, last + 1);
        }
        start = next;
        if b["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "job_finished")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        seen,
        (1..=5).collect::<Vec<_>>(),
        "each event exactly once, in order"
    );
    let (_, b) = s.get(&format!("/jobs/{job}/events?start={start}")).await;
    assert!(b["items"].as_array().unwrap().is_empty());
    assert_eq!(b["next-events"]["event"], start.to_string());
    s.stop().await;
}

#[tokio::test]
async fn stop_lets_running_nodes_finish_and_skips_the_rest() {
    let s = Server::start(config(6).concurrency(2).build()).await;
    let nodes: Vec<String> = (0..6).map(|i| format!("node-{i:04}.example")).collect();
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let job = s.task("fixture::sleep", json!({"seconds": 1}), &refs).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (st, b) = s.post("/command/stop", json!({"job": job})).await;
    assert_eq!(st, 202);
    assert_eq!(b["job"]["nodes"]["running"], 2, "{b}");
    let (_, j) = s.get(&format!("/jobs/{job}")).await;
    assert_eq!(j["state"], "stopping");
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "stopped");
    assert_eq!(
        j["node_states"],
        json!({"finished": 2, "skipped": 4}),
        "{j}"
    );
    let ev = s.events(&job).await;
    let t = types(&ev);
    assert!(t.contains(&"job_stopping".to_owned()));
    assert_eq!(t.iter().filter(|x| *x == "node_skipped").count(), 4);
    assert_eq!(t.last().unwrap(), "job_finished");
    for n in s.nodes(&job).await {
        if n["state"] == "skipped" {
            assert!(
                n["start_timestamp"].is_null() && n["duration"].is_null() && n["result"].is_null()
            );
        }
    }
    // Stopping again is idempotent.
    let (st, b) = s
        .post(
            "/command/stop",
            json!({"job": job.parse::<u64>().unwrap(), "force": true}),
        )
        .await;
    assert_eq!(st, 202);
    assert_eq!(b["job"]["nodes"]["skipped"], 4);
    s.stop().await;
}

#[tokio::test]
async fn force_stop_kills_running_nodes() {
    let s = Server::start(config(4).concurrency(2).build()).await;
    let nodes: Vec<String> = (0..4).map(|i| format!("node-{i:04}.example")).collect();
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let job = s
        .task("fixture::sleep", json!({"seconds": 30}), &refs)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let (st, _) = s
        .post("/command/stop", json!({"job": job, "force": true}))
        .await;
    assert_eq!(st, 202);
    let j = s.wait(&job).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(j["state"], "stopped");
    assert_eq!(j["node_states"], json!({"stopped": 2, "skipped": 2}), "{j}");
    let killed = s
        .nodes(&job)
        .await
        .into_iter()
        .find(|n| n["state"] == "stopped")
        .unwrap();
    assert_eq!(
        killed["result"]["_error"]["kind"],
        "puppetlabs.orchestrator/job-stopped"
    );
    assert!(killed["finish_timestamp"].is_string());
    s.stop().await;
}

#[tokio::test]
async fn force_stop_ends_what_the_task_started_in_other_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(1).build()).await;
    let job = s
        .task(
            "fixture::grandchild",
            json!({"dir": dir.path()}),
            &["node-0000.example"],
        )
        .await;
    let detached = dir.path().join("node-0000.example.detached.pid");
    let t0 = std::time::Instant::now();
    while !detached.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the task never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pids = [
        crate::execution::read_pid(&dir.path().join("node-0000.example.pid")),
        crate::execution::read_pid(&detached),
    ];
    assert!(pids.iter().all(|p| crate::execution::alive(*p)));
    let (st, _) = s
        .post("/command/stop", json!({"job": job, "force": true}))
        .await;
    assert_eq!(st, 202);
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "stopped");
    let n = &s.nodes(&job).await[0];
    let stopped = crate::common::stopped_pids(n);
    for pid in pids {
        assert!(
            !crate::execution::alive(pid),
            "{pid} survived the force stop"
        );
        assert!(stopped.contains(&pid.into()), "{pid} not listed: {n:#}");
    }
    s.stop().await;
}

#[tokio::test]
async fn failed_and_errored_nodes_fail_the_job() {
    let mut c = config(2).build();
    let mut off = crate::common::node("off.example");
    off.connected = false;
    c.inventory.nodes.push(off);
    let s = Server::start(c).await;
    let job = s
        .task(
            "fixture::trivial",
            json!({}),
            &["node-0000.example", "off.example", "unknown.example"],
        )
        .await;
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "failed");
    assert_eq!(j["node_states"], json!({"finished": 1, "errored": 2}));
    let ev = s.events(&job).await;
    assert_eq!(
        types(&ev).iter().filter(|t| *t == "node_errored").count(),
        2
    );
    s.stop().await;
}

#[tokio::test]
async fn deploy_failure_fails_the_node_and_job() {
    let mut n = crate::common::node("bad.example");
    n.env.insert("FAIL_RUN".into(), "1".into());
    let s = Server::start(
        config(0)
            .node(n)
            .module("psick", crate::common::fixtures().join("modules/psick"))
            .build(),
    )
    .await;
    let (st, b) = s
        .post(
            "/command/deploy",
            json!({"environment": "production", "scope": {"nodes": ["bad.example"]}}),
        )
        .await;
    assert_eq!(st, 202);
    let job = b["job"]["name"].as_str().unwrap().to_owned();
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "failed");
    let n = &s.nodes(&job).await[0];
    assert_eq!(n["state"], "failed");
    assert_eq!(n["result"]["_error"]["kind"], "psick/run-failed");
    assert_eq!(n["result"]["status"], "failed");
    let ev = s.events(&job).await;
    assert_eq!(ev[1]["type"], "node_failed");
    assert!(ev[1]["message"].as_str().unwrap().contains("Failed!"));
    s.stop().await;
}

#[tokio::test]
async fn validation_errors() {
    let s = Server::start(config(1).build()).await;
    let post = |b: Value| s.post("/command/task", b);
    let scope = json!({"nodes": ["node-0000.example"]});
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"task": "fixture::typed", "params": {"name": ""}, "scope": scope}),
            400,
            "validation-error",
            "expects a value of type String[1]",
        ),
        (
            json!({"task": "fixture::typed", "params": {"name": "x", "count": 11}, "scope": scope}),
            400,
            "validation-error",
            "Integer[1,10]",
        ),
        (
            json!({"task": "fixture::typed", "params": {"name": "x", "count": "3"}, "scope": scope}),
            400,
            "validation-error",
            "count",
        ),
        (
            json!({"task": "fixture::typed", "params": {"name": "x", "mode": "medium"}, "scope": scope}),
            400,
            "validation-error",
            "Enum",
        ),
        (
            json!({"task": "fixture::typed", "params": {"name": "x", "tags": [1]}, "scope": scope}),
            400,
            "validation-error",
            "tags",
        ),
        (
            json!({"task": "fixture::typed", "params": {"name": "x", "bogus": 1}, "scope": scope}),
            400,
            "validation-error",
            "does not accept a parameter named 'bogus'",
        ),
        (
            json!({"task": "fixture::typed", "params": {}, "scope": scope}),
            400,
            "validation-error",
            "requires a value for parameter 'name'",
        ),
        (
            json!({"task": "Bad Name", "params": {}, "scope": scope}),
            400,
            "validation-error",
            "Invalid task name",
        ),
        (
            json!({"task": "fixture::nope", "params": {}, "scope": scope}),
            404,
            "unknown-task",
            "fixture::nope",
        ),
        (
            json!({"task": "fixture::plain", "params": [], "scope": scope}),
            400,
            "validation-error",
            "not valid",
        ),
        (
            json!({"params": {}, "scope": scope}),
            400,
            "validation-error",
            "task",
        ),
        (
            json!({"task": "fixture::plain", "params": {}, "scope": {"nodes": ["a"], "node_group": "g"}}),
            400,
            "validation-error",
            "exactly one",
        ),
        (
            json!({"task": "fixture::plain", "params": {}, "scope": {"node_group": "nobody"}}),
            400,
            "empty-target",
            "No nodes",
        ),
        (
            json!({"task": "fixture::plain", "params": {}, "timeout": 0, "scope": scope}),
            400,
            "validation-error",
            "timeout",
        ),
    ];
    for (body, status, kind, msg) in cases {
        let (st, e) = post(body.clone()).await;
        assert_eq!(st, status, "{body} → {e}");
        assert!(e["kind"].as_str().unwrap().ends_with(kind), "{body} → {e}");
        assert!(e["msg"].as_str().unwrap().contains(msg), "{body} → {e}");
    }
    let job = s
        .task(
            "fixture::typed",
            json!({"name": "x", "count": 3, "mode": "fast", "tags": ["a"], "secret": "hunter2"}),
            &["node-0000.example"],
        )
        .await;
    let j = s.wait(&job).await;
    assert_eq!(
        j["options"]["params"]["secret"],
        "Sensitive [value redacted]"
    );
    assert_eq!(j["options"]["sensitive"], json!(["secret"]));

    let r = s
        .client
        .post(s.url("/command/task"))
        .header("X-Authentication", crate::common::TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    // Body validation answers the kind a real PE server sent for a bad body.
    assert_eq!(e["kind"], "puppetlabs.validators/validation-error");

    for path in [
        "/jobs/abc",
        "/jobs/1x/nodes",
        "/jobs/-1/events",
        "/jobs/abc/report",
    ] {
        let (st, e) = s.get(path).await;
        assert_eq!(
            (st, e["kind"].as_str().unwrap()),
            (400, "puppetlabs.orchestrator/validation-error"),
            "{path}"
        );
    }
    for path in [
        "/jobs/999",
        "/jobs/999/nodes",
        "/jobs/999/events",
        "/jobs/999/report",
    ] {
        let (st, e) = s.get(path).await;
        assert_eq!(
            (st, e["kind"].as_str().unwrap()),
            (404, "puppetlabs.orchestrator/unknown-job"),
            "{path}"
        );
    }
    for path in [
        &format!("/jobs/{job}/events?start=x"),
        &format!("/jobs/{job}/nodes?limit=-1"),
        &format!("/jobs/{job}/nodes?state=bogus"),
        &format!("/jobs/{job}/nodes?order_by=color"),
        "/jobs?type=plan",
        "/jobs?order=up",
        "/jobs?offset=z",
    ] {
        let (st, e) = s.get(path).await;
        assert_eq!(
            (st, e["kind"].as_str().unwrap()),
            (400, "puppetlabs.orchestrator/validation-error"),
            "{path}"
        );
    }
    let (st, e) = s.post("/command/stop", json!({"job": "nope"})).await;
    assert_eq!(
        (st, e["kind"].as_str().unwrap()),
        (400, "puppetlabs.orchestrator/validation-error")
    );
    let (st, e) = s.post("/command/stop", json!({"job": "4242"})).await;
    assert_eq!(
        (st, e["kind"].as_str().unwrap()),
        (404, "puppetlabs.orchestrator/unknown-job")
    );
    let (st, e) = s
        .post(
            "/command/deploy",
            json!({"scope": {"nodes": ["node-0000.example"]}}),
        )
        .await;
    assert_eq!(
        (st, e["kind"].as_str().unwrap()),
        (400, "puppetlabs.validators/validation-error")
    );
    s.stop().await;
}

#[tokio::test]
async fn jobs_list_filters_sorts_and_pages() {
    let s = Server::start(
        config(1)
            .module("psick", crate::common::fixtures().join("modules/psick"))
            .build(),
    )
    .await;
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(
            s.task("fixture::trivial", json!({}), &["node-0000.example"])
                .await,
        );
    }
    let (_, d) = s
        .post(
            "/command/deploy",
            json!({"environment": "production", "scope": {"nodes": ["node-0000.example"]}}),
        )
        .await;
    let deploy = d["job"]["name"].as_str().unwrap().to_owned();
    for n in names.iter().chain([&deploy]) {
        s.wait(n).await;
    }
    let (_, l) = s
        .get("/jobs?limit=1&offset=0&order=desc&order_by=name")
        .await;
    assert_eq!(l["items"][0]["name"], deploy, "newest job first");
    assert_eq!(
        l["pagination"],
        json!({"limit": 1, "offset": 0, "order": "desc", "order_by": "name", "total": 4})
    );
    let (_, l) = s.get("/jobs?type=task").await;
    assert_eq!(l["items"].as_array().unwrap().len(), 3);
    assert_eq!(l["pagination"]["type"], "task");
    let (_, l) = s.get("/jobs?type=task&task=trivial&offset=1&limit=5").await;
    let got: Vec<&str> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, [names[1].as_str(), names[2].as_str()]);
    let (_, l) = s.get("/jobs?type=deploy").await;
    assert_eq!(l["items"][0]["type"], "deploy");
    s.stop().await;
}

#[tokio::test]
async fn query_scope_asks_puppetdb() {
    use axum::routing::post;
    // A stand-in PuppetDB answering PQL with certnames, recording what it was asked.
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let a = asked.clone();
    let pdb = axum::Router::new().route(
        "/pdb/query/v4",
        post(move |axum::Json(body): axum::Json<Value>| {
            let a = a.clone();
            async move {
                a.lock().unwrap().push(body);
                axum::Json(
                    json!([{"certname": "node-0001.example"}, {"certname": "node-0002.example"}]),
                )
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pdb_url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, pdb).await });
    let s = Server::start(config(3).puppetdb_url(pdb_url).build()).await;
    let pql = "inventory[certname] { facts.os.family = \"Debian\" }";
    let (st, b) = s
        .post(
            "/command/task",
            json!({"task": "fixture::trivial", "params": {}, "scope": {"query": pql}}),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let job = b["job"]["name"].as_str().unwrap().to_owned();
    s.wait(&job).await;
    let names: Vec<String> = s
        .nodes(&job)
        .await
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["node-0001.example", "node-0002.example"]);
    assert_eq!(asked.lock().unwrap()[0], json!({"query": pql}));
    s.stop().await;
}
