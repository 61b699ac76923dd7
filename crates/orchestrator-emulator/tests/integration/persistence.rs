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
async fn a_job_found_running_after_a_crash_is_failed_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(2).concurrency(1).state_dir(dir.path()).build()).await;
    let job = s
        .task(
            "fixture::sleep",
            json!({"seconds": 60}),
            &["node-0000.example", "node-0001.example"],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // What a crash leaves behind: the file written when the job started.
    let file = dir.path().join(format!("jobs/{job}.json"));
    let snapshot = std::fs::read(&file).unwrap();
    s.stop().await;
    std::fs::write(&file, snapshot).unwrap();

    let s = Server::start(config(2).state_dir(dir.path()).build()).await;
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "failed");
    let nodes = s.nodes(&job).await;
    let states: Vec<&str> = nodes.iter().map(|n| n["state"].as_str().unwrap()).collect();
    assert!(
        states.iter().all(|s| *s == "failed" || *s == "skipped"),
        "{states:?}"
    );
    for n in &nodes {
        assert!(
            n["details"]["message"]
                .as_str()
                .unwrap()
                .contains("stopped (shutdown or crash)"),
            "{n}"
        );
    }
    s.stop().await;
}
