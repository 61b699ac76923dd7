//! Large jobs: paging 10,000 nodes, and a real 1,200-node execution.

use std::collections::HashSet;

use serde_json::json;

use crate::common::{Server, config};

#[tokio::test]
async fn ten_thousand_nodes_page_exactly_once() {
    // Nodes outside the inventory end `errored` at once, which keeps this fast;
    // the paging code is the same for every state.
    let s = Server::start(config(0).build()).await;
    let names: Vec<String> = (0..10_000).map(|i| format!("n{i:05}.example")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let job = s.task("fixture::trivial", json!({}), &refs).await;
    let j = s.wait(&job).await;
    assert_eq!(j["node_count"], 10_000);
    for (order, limit) in [("asc", 1000), ("desc", 777)] {
        let mut seen = HashSet::new();
        let mut offset = 0;
        let mut prev: Option<String> = None;
        loop {
            let (st, page) = s
                .get(&format!(
                    "/jobs/{job}/nodes?limit={limit}&offset={offset}&order={order}&order_by=name"
                ))
                .await;
            assert_eq!(st, 200);
            assert_eq!(page["pagination"]["total"], 10_000);
            assert_eq!(page["pagination"]["offset"], offset);
            let items = page["items"].as_array().unwrap();
            if items.is_empty() {
                break;
            }
            for n in items {
                let name = n["name"].as_str().unwrap().to_owned();
                if let Some(p) = &prev {
                    assert!(if order == "asc" { *p < name } else { *p > name });
                }
                prev = Some(name.clone());
                assert!(seen.insert(name), "node seen twice");
            }
            offset += items.len();
        }
        assert_eq!(seen.len(), 10_000);
    }
    let (_, page) = s
        .get(&format!("/jobs/{job}/nodes?state=errored&limit=1"))
        .await;
    assert_eq!(page["pagination"]["total"], 10_000);
    let (_, page) = s.get(&format!("/jobs/{job}/nodes?state=finished")).await;
    assert_eq!(page["pagination"]["total"], 0);
    // Events page at 1,000 and continue through next-events.
    let mut start = 1u64;
    let mut count = 0;
    loop {
        let (_, b) = s.get(&format!("/jobs/{job}/events?start={start}")).await;
        let items = b["items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        assert!(items.len() <= 1000);
        count += items.len();
        start = b["next-events"]["event"].as_str().unwrap().parse().unwrap();
    }
    assert_eq!(count, 10_001, "one node_errored per node plus job_finished");
    s.stop().await;
}

#[tokio::test]
async fn twelve_hundred_nodes_really_run() {
    let s = Server::start(config(1200).concurrency(100).build()).await;
    let names: Vec<String> = (0..1200).map(|i| format!("node-{i:04}.example")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let job = s.task("fixture::trivial", json!({}), &refs).await;
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "finished", "{}", j["node_states"]);
    assert_eq!(j["node_states"], json!({"finished": 1200}));
    let mut seen = HashSet::new();
    for offset in (0..1200).step_by(500) {
        let (_, page) = s
            .get(&format!(
                "/jobs/{job}/nodes?limit=500&offset={offset}&order_by=finish_timestamp"
            ))
            .await;
        for n in page["items"].as_array().unwrap() {
            assert_eq!(n["result"], json!({"ok": true}));
            assert!(seen.insert(n["name"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(seen.len(), 1200);
    s.stop().await;
}

#[tokio::test]
async fn nodes_list_sorted_whatever_the_request_order() {
    let s = Server::start(config(5).build()).await;
    let refs = [
        "node-0003.example",
        "node-0000.example",
        "node-0004.example",
        "node-0001.example",
        "node-0002.example",
    ];
    let job = s.task("fixture::trivial", json!({}), &refs).await;
    s.wait(&job).await;
    let names = |b: serde_json::Value| -> Vec<String> {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, b) = s.get(&format!("/jobs/{job}/nodes")).await;
    let mut sorted: Vec<String> = refs.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(names(b), sorted);
    let (_, b) = s
        .get(&format!("/jobs/{job}/nodes?order=desc&limit=2&offset=1"))
        .await;
    assert_eq!(names(b), ["node-0003.example", "node-0002.example"]);
    s.stop().await;
}
