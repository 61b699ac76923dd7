//! A 10,000-node job: every node reported exactly once, counts right.

use std::collections::HashSet;

use kick_orchestrator::NodeSpec;
use serde_json::Value;

use crate::harness::Emu;

const NODES: usize = 10_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_ten_thousand_node_job_reports_every_node_once() {
    let names: Vec<String> = (0..NODES)
        .map(|i| format!("node{i:05}.example.com"))
        .collect();
    let emu = Emu::start_with(names.iter().map(NodeSpec::new).collect(), |b| {
        b.concurrency(250)
    })
    .await;
    let list = emu.dir.path().join("nodes.txt");
    std::fs::write(&list, names.join("\n")).unwrap();
    let at = format!("@{}", list.display());

    // Live: one jsonl line per node as its event arrives.
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::sleep",
            "seconds=0",
            "--nodes",
            &at,
            "--format",
            "jsonl",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut seen = HashSet::new();
    for l in lines.iter().filter(|l| l["type"] == "node") {
        assert!(
            seen.insert(l["name"].as_str().unwrap().to_owned()),
            "reported twice: {l}"
        );
    }
    assert_eq!(seen.len(), NODES);
    let summary = lines.last().unwrap();
    assert_eq!(summary["summary"]["total"], NODES);
    assert_eq!(summary["summary"]["unchanged"], NODES);
    let id = lines[0]["job"]["name"].as_str().unwrap().to_owned();

    // From the pages: the JSON document lists each node once, in name order.
    let r = emu.kick(&["job", "show", &id, "--format", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.json();
    crate::schema::assert_valid(&doc);
    let got: Vec<&str> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(doc["summary"]["total"], NODES);
}
