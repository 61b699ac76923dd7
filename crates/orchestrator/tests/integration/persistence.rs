//! Job history survives restarts; interrupted jobs are recorded as failed.

use std::time::Duration;

use serde_json::json;

use crate::common::{Server, config};

#[tokio::test]
async fn restart_keeps_history_and_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(2).state_dir(dir.path()).build()).await;
    let job = s
        .task(
            "fixture::echo_json",
            json!({"message": "kept"}),
            &["node-0000.example", "node-0001.example"],
        )
        .await;
    s.wait(&job).await;
    let (_, before) = s.get(&format!("/jobs/{job}")).await;
    let nodes_before = s.nodes(&job).await;
    let events_before = s.events(&job).await;
    s.stop().await;

    let s = Server::start(config(2).state_dir(dir.path()).build()).await;
    let (st, after) = s.get(&format!("/jobs/{job}")).await;
    assert_eq!(st, 200);
    let strip = |mut v: serde_json::Value| {
        // Links carry the listener's port, which changes across restarts.
        for k in ["id", "nodes", "report", "events"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(strip(after), strip(before));
    let nodes_after = s.nodes(&job).await;
    assert_eq!(nodes_after, nodes_before);
    assert_eq!(s.events(&job).await, events_before);
    let next = s
        .task("fixture::trivial", json!({}), &["node-0000.example"])
        .await;
    assert_eq!(
        next.parse::<u64>().unwrap(),
        job.parse::<u64>().unwrap() + 1
    );
    s.stop().await;
}

#[tokio::test]
async fn a_job_running_at_shutdown_is_failed_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(3).concurrency(1).state_dir(dir.path()).build()).await;
    let job = s
        .task(
            "fixture::sleep",
            json!({"seconds": 60}),
            &["node-0000.example", "node-0001.example"],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    s.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown kills running tasks"
    );

    let s = Server::start(config(3).state_dir(dir.path()).build()).await;
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "failed");
    let ev = s.events(&job).await;
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "job_finished");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("stopped (shutdown or crash)"),
        "{last}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_damaged_record_is_kept_aside_and_its_id_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(1).state_dir(dir.path()).build()).await;
    let job = s
        .task("fixture::trivial", json!({}), &["node-0000.example"])
        .await;
    s.wait(&job).await;
    s.stop().await;
    // Damage the newest record behind the service's back.
    let db = rusqlite::Connection::open(dir.path().join("jobs.db")).unwrap();
    db.execute(
        "UPDATE jobs SET head = '{\"name\": broken' WHERE name = ?1",
        [job.parse::<i64>().unwrap()],
    )
    .unwrap();
    drop(db);

    let s = Server::start(config(1).state_dir(dir.path()).build()).await;
    let (st, b) = s.get(&format!("/jobs/{job}")).await;
    assert_eq!(st, 404, "{b}");
    assert_eq!(b["kind"], "puppetlabs.orchestrator/unknown-job");
    assert!(b["msg"].as_str().unwrap().contains("damaged_jobs"), "{b}");
    let next = s
        .task("fixture::trivial", json!({}), &["node-0000.example"])
        .await;
    assert_eq!(
        next.parse::<u64>().unwrap(),
        job.parse::<u64>().unwrap() + 1
    );
    s.wait(&next).await;
    s.stop().await;
    let db = rusqlite::Connection::open(dir.path().join("jobs.db")).unwrap();
    let kept: String = db
        .query_row(
            "SELECT head FROM damaged_jobs WHERE name = ?1",
            [job.parse::<i64>().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, "{\"name\": broken");
}

#[tokio::test]
async fn the_json_history_of_older_versions_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("5.json"),
        r#"{"name":5,"command":"task","options":{"task":"fixture::trivial"},"owner":"admin",
        "description":"","environment":"production","userdata":null,"state":"finished",
        "status":[{"state":"new","enter":1.0,"exit":2.0},{"state":"finished","enter":2.0,"exit":null}],
        "timestamp":2.0,"started":1.5,"finished":2.0,
        "nodes":[{"name":"node-0000.example","state":"finished","timestamp":2.0,"start":1.5,
                  "finish":2.0,"details":{},"result":{"ok":true},"latest_event":1}],
        "events":[{"type":"node_finished","ts":2.0,"node":0,"detail":"node_result","message":"done"}]}"#,
    )
    .unwrap();
    std::fs::write(jobs.join("6.json"), "{ truncated").unwrap();
    let s = Server::start(config(1).state_dir(dir.path()).build()).await;
    let (st, j) = s.get("/jobs/5").await;
    assert_eq!((st, j["state"].as_str()), (200, Some("finished")), "{j}");
    assert_eq!(j["node_states"], json!({"finished": 1}));
    assert_eq!(s.nodes("5").await[0]["result"], json!({"ok": true}));
    let ev = s.events("5").await;
    assert_eq!(ev[0]["details"]["detail"], json!({"ok": true}));
    let (st, b) = s.get("/jobs/6").await;
    assert_eq!(st, 404, "{b}");
    let next = s
        .task("fixture::trivial", json!({}), &["node-0000.example"])
        .await;
    assert_eq!(next, "7", "the damaged job 6 keeps its id");
    s.wait(&next).await;
    s.stop().await;
}
