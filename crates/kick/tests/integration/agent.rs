//! `kick agent` and `kick deploy` on the psick::puppet_agent test double:
//! every format, outcome rules, exit codes.

use serde_json::Value;

use crate::harness::{Emu, node, redact, run_bin};
use crate::schema::assert_valid;

fn three() -> Vec<kick_orchestrator::NodeSpec> {
    vec![
        node("a.example.com", "unchanged", 0.0),
        node("b.example.com", "changed", 0.0),
        node("c.example.com", "failed", 0.0),
    ]
}

const NODES: &str = "a.example.com,b.example.com,c.example.com";

#[tokio::test(flavor = "multi_thread")]
async fn agent_human_output_has_a_line_per_node_the_failed_and_changed_output_and_a_summary() {
    // One node at a time keeps the line order stable for the snapshot.
    let emu = Emu::start_with(three(), |b| b.concurrency(1)).await;
    let r = emu
        .kick(&["agent", "--nodes", NODES, "--color", "never"])
        .await;
    assert_eq!(r.code, 6, "{r:?}");
    insta::assert_snapshot!("agent_human_stdout", redact(&r.stdout));
    insta::assert_snapshot!("agent_human_stderr", redact(&r.stderr));
    assert!(
        !r.stdout.contains('\u{1b}'),
        "ANSI in output: {:?}",
        r.stdout
    );
    // --color always colours the outcomes, and only kick's own styling: the
    // nodes' output stays ANSI-free.
    let r = emu
        .kick(&["agent", "--nodes", NODES, "--color", "always"])
        .await;
    assert_eq!(r.code, 6);
    assert!(
        r.stdout.contains("\u{1b}[1m\u{1b}[33mchanged"),
        "{:?}",
        r.stdout
    );
    assert!(!r.stdout.contains("\u{1b}[0;32mInfo"), "{:?}", r.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_json_matches_the_schema_and_counts_outcomes() {
    let emu = Emu::start(three()).await;
    let r = emu
        .kick(&["agent", "--nodes", NODES, "--format", "json"])
        .await;
    assert_eq!(r.code, 6, "{r:?}");
    let doc = r.json();
    assert_valid(&doc);
    assert_eq!(doc["exit_code"], 6);
    assert_eq!(doc["job"]["task"], "psick::puppet_agent");
    assert_eq!(doc["job"]["state"], "failed");
    let s = &doc["summary"];
    assert_eq!(
        (
            s["total"].as_u64(),
            s["unchanged"].as_u64(),
            s["changed"].as_u64(),
            s["failed"].as_u64()
        ),
        (Some(3), Some(1), Some(1), Some(1))
    );
    let nodes = doc["nodes"].as_array().unwrap();
    let b = nodes.iter().find(|n| n["name"] == "b.example.com").unwrap();
    assert_eq!(b["outcome"], "changed");
    assert_eq!(b["resources"]["changed"], 2);
    assert_eq!(b["exitcode"], 2);
    assert!(
        b["output"]
            .as_str()
            .unwrap()
            .starts_with("Info: Using environment 'production'")
    );
    assert!(
        b["result"]["_output"].as_str().unwrap().contains('\u{1b}'),
        "raw result keeps ANSI"
    );
    let c = nodes.iter().find(|n| n["name"] == "c.example.com").unwrap();
    assert_eq!(c["outcome"], "failed");
    assert_eq!(c["error"]["kind"], "psick/resource-failures");
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_jsonl_streams_a_job_line_node_lines_and_a_summary() {
    let emu = Emu::start(three()).await;
    let r = emu
        .kick(&["agent", "--nodes", NODES, "--format", "jsonl"])
        .await;
    assert_eq!(r.code, 6, "{r:?}");
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.first().unwrap()["type"], "job");
    let nodes: Vec<&Value> = lines.iter().filter(|l| l["type"] == "node").collect();
    assert_eq!(nodes.len(), 3);
    let mut names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a.example.com", "b.example.com", "c.example.com"]);
    let schema = crate::schema::schema();
    let node_schema = serde_json::json!({"$defs": schema["$defs"], "$ref": "#/$defs/node"});
    let v = jsonschema::validator_for(&node_schema).unwrap();
    for n in &nodes {
        let mut n = (*n).clone();
        n.as_object_mut().unwrap().remove("type");
        assert!(v.is_valid(&n), "{n:#}");
    }
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["exit_code"], 6);
    assert_eq!(last["summary"]["total"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn noop_runs_with_pending_changes_count_as_changed() {
    let emu = Emu::start(vec![node("a", "changed", 0.0), node("b", "unchanged", 0.0)]).await;
    let r = emu
        .kick(&["agent", "--nodes", "a,b", "--noop", "--format", "json"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    let doc = r.json();
    assert_valid(&doc);
    assert_eq!(doc["job"]["noop"], true);
    let a = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "a")
        .unwrap()
        .clone();
    assert_eq!(a["outcome"], "changed");
    assert_eq!(a["resources"]["noop_pending"], 2);
    assert_eq!(a["resources"]["changed"], 0);
    assert_eq!(a["result"]["noop"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_flags_reach_the_task_as_parameters() {
    let emu = Emu::start(vec![node("a", "unchanged", 0.0)]).await;
    let r = emu
        .kick(&[
            "agent",
            "--nodes",
            "a",
            "--server",
            "puppet.test:8140",
            "-e",
            "production",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["nodes"][0]["result"]["server"], "puppet.test:8140");
    assert_eq!(doc["job"]["environment"], "production");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_jobs_use_the_run_summary() {
    let emu = Emu::start(vec![node("a", "changed", 0.0), node("b", "unchanged", 0.0)]).await;
    let r = emu
        .kick(&["deploy", "--nodes", "a,b", "--format", "json"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    let doc = r.json();
    assert_valid(&doc);
    assert_eq!(doc["job"]["task"], Value::Null);
    let a = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "a")
        .unwrap()
        .clone();
    assert_eq!(a["outcome"], "changed");
    assert_eq!(a["resources"]["changed"], 2);
    let r = emu.kick(&["deploy", "--nodes", "b", "--noop"]).await;
    assert_eq!(r.code, 0, "{r:?}");
}

/// The binary's exit codes for each mix of outcomes.
#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_follow_the_outcomes() {
    let emu = Emu::start(vec![
        node("u1", "unchanged", 0.0),
        node("u2", "unchanged", 0.0),
        node("c1", "changed", 0.0),
        node("f1", "failed", 0.0),
    ])
    .await;
    for (nodes, want) in [
        ("u1,u2", 0),
        ("u1,c1", 2),
        ("u1,f1", 4),
        ("c1,f1", 6),
        ("missing-node", 4),
    ] {
        let r = run_bin(&emu, &["agent", "--nodes", nodes]).await;
        assert_eq!(r.code, want, "nodes {nodes}: {r:?}");
    }
    // kick itself failing: a bad token, an unknown task, a usage error.
    let bad_token = emu.dir.path().join("bad-token");
    crate::harness::write_private(&bad_token, "not-the-token");
    let argv = [
        "agent",
        "--nodes",
        "u1",
        "--service-url",
        &emu.url,
        "--token-file",
        bad_token.to_str().unwrap(),
    ];
    let r = crate::harness::run_bin_raw(&emu, argv.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("puppet access login"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("not-the-token"),
        "token printed: {}",
        r.stderr
    );
    let r = run_bin(&emu, &["agent", "--nodes", "u1", "--task", "nosuch::task"]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("kick tasks list"), "{}", r.stderr);
    let r = run_bin(&emu, &["agent"]).await;
    assert_eq!(r.code, 1, "usage errors exit 1, not clap's 2: {r:?}");
}
