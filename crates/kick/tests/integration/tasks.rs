//! `kick task run` with generic tasks, `kick tasks`, `kick inventory`,
//! completions and the man page.

use serde_json::{Value, json};

use crate::harness::{Emu, kick, node, redact};
use crate::schema::assert_valid;

#[tokio::test(flavor = "multi_thread")]
async fn plain_text_output_is_shown_ansi_free_and_counts_as_unchanged() {
    let emu = Emu::start(vec![node("a", "unchanged", 0.0)]).await;
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::echo",
            "message=hi",
            "--nodes",
            "a",
            "--show-output",
            "all",
            "--color",
            "never",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    insta::assert_snapshot!("task_echo_human", redact(&r.stdout));
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::echo",
            "--nodes",
            "a",
            "--format",
            "json",
        ])
        .await;
    let doc = r.json();
    assert_valid(&doc);
    assert_eq!(doc["nodes"][0]["output"], "hello from a\nsecond line\n");
    // The raw result keeps what the task printed.
    assert_eq!(
        doc["nodes"][0]["result"]["_output"],
        "\u{1b}[0;32mhello\u{1b}[0m from a\nsecond line\n"
    );
    let job = doc["job"]["name"].as_str().unwrap();
    let r = emu.kick(&["job", "watch", job, "--format", "jsonl"]).await;
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let node = lines.iter().find(|l| l["type"] == "node").unwrap();
    assert_eq!(node["output"], "hello from a\nsecond line\n");
    assert_eq!(node["result"], doc["nodes"][0]["result"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_task_is_failed_with_its_exit_code_and_stderr() {
    let emu = Emu::start(vec![node("a", "unchanged", 0.0)]).await;
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::fail",
            "--nodes",
            "a",
            "--color",
            "never",
        ])
        .await;
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stdout.contains("failed"), "{}", r.stdout);
    assert!(
        r.stdout.contains("something went wrong on a"),
        "stderr of the task shown: {}",
        r.stdout
    );
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::fail",
            "--nodes",
            "a",
            "--format",
            "json",
        ])
        .await;
    let doc = r.json();
    assert_valid(&doc);
    assert_eq!(doc["nodes"][0]["exitcode"], 3);
    assert_eq!(
        doc["nodes"][0]["error"]["kind"],
        "puppetlabs.tasks/task-error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_parameters_are_typed_like_pe() {
    let emu = Emu::start(vec![node("a", "unchanged", 0.0)]).await;
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::types",
            "flag=true",
            "count=3",
            "ratio=1.5",
            "list=[1,\"x\"]",
            "map={\"k\":1}",
            "word=007x",
            "--nodes",
            "a",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    let res = &doc["nodes"][0]["result"];
    assert_eq!(res["flag"], json!(true));
    assert_eq!(res["count"], json!(3));
    assert_eq!(res["ratio"], json!(1.5));
    assert_eq!(res["list"], json!([1, "x"]));
    assert_eq!(res["map"], json!({"k": 1}));
    assert_eq!(res["word"], json!("007x"));

    let file = emu.dir.path().join("params.json");
    std::fs::write(&file, r#"{"count": 5}"#).unwrap();
    let at = format!("@{}", file.display());
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::types",
            "--params",
            &at,
            "--nodes",
            "a",
            "--format",
            "json",
        ])
        .await;
    let doc = r.json();
    assert_eq!(doc["nodes"][0]["result"]["count"], 5);

    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::types",
            "count=1",
            "--params",
            "{}",
            "--nodes",
            "a",
        ])
        .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("one or the other"), "{}", r.stderr);
    // The orchestrator checks types against the metadata, as PE does.
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::types",
            "count=many",
            "--nodes",
            "a",
        ])
        .await;
    assert_eq!(r.code, 1, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_from_a_file_and_unknown_nodes() {
    let emu = Emu::start(vec![
        node("a", "unchanged", 0.0),
        node("b", "unchanged", 0.0),
    ])
    .await;
    let file = emu.dir.path().join("nodes.txt");
    std::fs::write(&file, "# web\na\n\nb  # second\n").unwrap();
    let at = format!("@{}", file.display());
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::sleep",
            "seconds=0",
            "--nodes",
            &at,
            "--format",
            "json",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["summary"]["total"], 2);
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::sleep",
            "--nodes",
            "@/nonexistent/list",
        ])
        .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("/nonexistent/list"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_list_and_show() {
    let emu = Emu::start(vec![node("a", "unchanged", 0.0)]).await;
    let r = emu.kick(&["tasks", "list"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    for t in ["fixture::echo", "fixture::sleep", "psick::puppet_agent"] {
        // One row per task: its name, then its description.
        assert!(
            r.stdout
                .lines()
                .any(|l| l == t || l.starts_with(&format!("{t} "))),
            "{t} missing: {}",
            r.stdout
        );
    }
    let r = emu.kick(&["tasks", "show", "fixture::sleep"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("seconds: Optional[Numeric]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("sleep.sh"), "{}", r.stdout);
    let r = emu
        .kick(&["tasks", "show", "fixture::sleep", "--format", "json"])
        .await;
    let v = r.json();
    assert_eq!(v["name"], "fixture::sleep");
    let r = emu.kick(&["tasks", "show", "fixture::nope"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unknown-task"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_lists_connected_and_requested_nodes() {
    let mut off = node("off", "unchanged", 0.0);
    off.connected = false;
    let emu = Emu::start(vec![node("a", "unchanged", 0.0), off]).await;
    let r = emu.kick(&["inventory"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("a ") && r.stdout.contains("connected"),
        "{}",
        r.stdout
    );
    let r = emu
        .kick(&["inventory", "off", "ghost", "--format", "json"])
        .await;
    let v = r.json();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["connected"] == false), "{v:#}");
    let r = emu.kick(&["inventory", "--format", "jsonl"]).await;
    assert!(
        r.stdout
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
}

#[tokio::test]
async fn completions_and_man_page_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = kick(&["completions".to_owned(), shell.to_owned()]).await;
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains("kick"), "{shell}");
        assert!(r.stdout.contains("show-output"), "{shell} completes flags");
    }
    let r = kick(&["man".to_owned()]).await;
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH kick"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    assert!(r.stdout.contains("agent"));
}

#[test]
fn agent_help_lists_the_flags_and_targets() {
    let help = kick::Cli::try_parse_args(["kick", "agent", "--help"])
        .unwrap_err()
        .to_string();
    insta::assert_snapshot!("agent_help", help);
}

#[tokio::test(flavor = "multi_thread")]
async fn node_group_and_query_targets() {
    let mut grouped = node("g1", "unchanged", 0.0);
    grouped.groups.push("web-group".into());
    let emu = Emu::start(vec![grouped, node("other", "unchanged", 0.0)]).await;
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::sleep",
            "seconds=0",
            "--node-group",
            "web-group",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(doc["nodes"][0]["name"], "g1");
    // Without PuppetDB the orchestrator refuses queries; kick says so and exits 1.
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::sleep",
            "--query",
            "nodes[certname] {}",
        ])
        .await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("query"), "{}", r.stderr);
}
