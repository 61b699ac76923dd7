//! The service binary killed with SIGKILL and started again: nothing whose
//! end was seen is lost, ids never repeat, the service always comes back.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Binary, setup};

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("node-{i:04}.example")).collect()
}

async fn submit(b: &Binary, nodes: &[String]) -> u64 {
    let (s, body) = b
        .call(
            Some(json!({"task": "fixture::slow_on", "params": {},
                        "scope": {"nodes": nodes}, "environment": "production"})),
            "/command/task",
        )
        .await;
    assert_eq!(s, 202, "{body}");
    body["job"]["name"].as_str().unwrap().parse().unwrap()
}

/// The case: 15 of 20 nodes had ended when the service was killed.
#[tokio::test]
async fn a_kill_keeps_finished_nodes_and_fails_only_running_ones() {
    let dir = tempfile::tempdir().unwrap();
    let all = names(20);
    let inv: Vec<(String, String)> = all
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), if i < 15 { "0" } else { "60" }.to_owned()))
        .collect();
    setup(dir.path(), &inv);
    let b = Binary::start(dir.path(), &[]);
    let job = submit(&b, &all).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, ev) = b.call(None, &format!("/jobs/{job}/events")).await;
        let ended = ev["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "node_finished")
            .count();
        if ended == 15 {
            break;
        }
        assert!(Instant::now() < deadline, "15 nodes did not finish: {ev}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.kill();

    let b = Binary::start(dir.path(), &[]);
    let (s, j) = b.call(None, &format!("/jobs/{job}")).await;
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["state"], "failed");
    let (_, nodes) = b.call(None, &format!("/jobs/{job}/nodes")).await;
    let nodes = nodes["items"].as_array().unwrap();
    assert_eq!(nodes.len(), 20);
    for (i, n) in nodes.iter().enumerate() {
        if i < 15 {
            assert_eq!(n["state"], "finished", "{n}");
            assert_eq!(n["result"]["node"], all[i].as_str(), "{n}");
        } else {
            assert_eq!(n["state"], "failed", "{n}");
            let msg = n["result"]["_error"]["msg"].as_str().unwrap();
            assert!(
                msg.contains("interrupted") && msg.contains("crash"),
                "{msg}"
            );
        }
    }
    let (_, ev) = b.call(None, &format!("/jobs/{job}/events")).await;
    let last = ev["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "job_finished", "{last}");
    let next = submit(&b, &all[..1]).await;
    assert_eq!(next, job + 1);
    b.kill();
}

/// SIGKILL at random moments of many jobs (bounded rounds and time).
#[tokio::test]
async fn random_kills_lose_no_acknowledged_node_end() {
    let dir = tempfile::tempdir().unwrap();
    let all = names(12);
    let inv: Vec<(String, String)> = all
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), format!("0.{:02}", (i * 7) % 25)))
        .collect();
    setup(dir.path(), &inv);
    let started = Instant::now();
    let mut seen_ids = BTreeSet::new();
    // job → node → the result seen in its end event.
    let mut acked: BTreeMap<u64, BTreeMap<String, Value>> = BTreeMap::new();
    let mut rounds = 0;
    while rounds < 12 && started.elapsed() < Duration::from_secs(60) {
        rounds += 1;
        let b = Binary::start(dir.path(), &[]);
        let mut jobs = Vec::new();
        for _ in 0..3 {
            let id = submit(&b, &all).await;
            assert!(seen_ids.insert(id), "job id {id} handed out twice");
            assert!(
                seen_ids.iter().all(|&s| s <= id),
                "job id {id} is not past every id seen"
            );
            jobs.push(id);
        }
        let kill_at = Instant::now() + Duration::from_millis(fastrand::u64(20..700));
        while Instant::now() < kill_at {
            for &job in &jobs {
                let (s, ev) = b.call(None, &format!("/jobs/{job}/events")).await;
                if s != 200 {
                    continue;
                }
                for e in ev["items"].as_array().unwrap() {
                    if e["type"] == "node_finished" {
                        let node = e["details"]["node"].as_str().unwrap().to_owned();
                        acked
                            .entry(job)
                            .or_default()
                            .insert(node, e["details"]["detail"].clone());
                    }
                }
            }
        }
        b.kill();
    }
    // Every acknowledged end is there, with the result its event showed.
    let b = Binary::start(dir.path(), &[]);
    let mut checked = 0;
    for (job, ended) in &acked {
        let (s, nodes) = b.call(None, &format!("/jobs/{job}/nodes")).await;
        assert_eq!(s, 200, "{nodes}");
        let by_name: BTreeMap<&str, &Value> = nodes["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["name"].as_str().unwrap(), n))
            .collect();
        for (node, result) in ended {
            let n = by_name[node.as_str()];
            assert_eq!(n["state"], "finished", "job {job}: {n}");
            assert_eq!(&n["result"], result, "job {job} node {node}");
            checked += 1;
        }
        let (_, j) = b.call(None, &format!("/jobs/{job}")).await;
        assert!(
            ["finished", "failed"].contains(&j["state"].as_str().unwrap()),
            "job {job} did not end after the restart: {j}"
        );
    }
    assert!(
        checked > 0,
        "no node end was acknowledged in {rounds} rounds"
    );
    let next = submit(&b, &all[..1]).await;
    assert!(seen_ids.iter().all(|&s| s < next), "{next} reuses an id");
    b.kill();
}

/// A service that cannot start never says it is listening.
#[test]
fn no_listening_line_when_the_state_dir_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &[("node-0000.example".into(), "0".into())]);
    // A file where the state directory should be.
    let state = dir.path().join("state");
    std::fs::write(&state, "not a directory").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kick-orchestrator"))
        .args(["--plain", "--listen", "127.0.0.1:0"])
        .arg("--tokens-file")
        .arg(dir.path().join("tokens"))
        .arg("--inventory")
        .arg(dir.path().join("inventory.json"))
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "no ready line");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("state directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
