//! The Kick orchestrator running the real psick::puppet_agent binary against the real
//! puppetserver on three simulated nodes: a noop task job, a real one, then a `puppet job
//! run`-style deploy job; each node's result is what the task printed.

use std::time::Duration;

use kick_e2e::{LocalNodes, Stack, task_bin};
use orchestrator_types::psick::{PuppetAgentResult, RunStatus};
use serde_json::{Value, json};

const TOKEN: &str = "e2e-token";

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/orchestrator/v1{path}", self.base))
            .header("X-Authentication", TOKEN)
            .json(&body)
            .send()
            .await
            .expect("POST to the orchestrator");
        let status = r.status();
        let b: Value = r.json().await.expect("JSON answer");
        assert_eq!(status.as_u16(), 202, "{path}: {b}");
        b
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/orchestrator/v1{path}", self.base))
            .header("X-Authentication", TOKEN)
            .send()
            .await
            .expect("GET from the orchestrator")
            .json()
            .await
            .expect("JSON answer")
    }

    /// Runs a job to its end; returns (job, nodes by name).
    async fn run(&self, path: &str, body: Value) -> (Value, Vec<Value>) {
        let created = self.post(path, body).await;
        let name = created["job"]["name"]
            .as_str()
            .expect("job name")
            .to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        let job = loop {
            let j = self.get(&format!("/jobs/{name}")).await;
            if matches!(j["state"].as_str(), Some("finished" | "failed" | "stopped")) {
                break j;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {name} did not end: {j}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let nodes = self.get(&format!("/jobs/{name}/nodes")).await["items"]
            .as_array()
            .expect("node items")
            .clone();
        (job, nodes)
    }
}

fn agent_result(node: &Value) -> PuppetAgentResult {
    serde_json::from_value(node["result"].clone())
        .unwrap_or_else(|e| panic!("node result is not a psick result ({e}): {node:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_run_psick_puppet_agent_through_the_orchestrator() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let bin = task_bin();
    let emu = LocalNodes::start(&stack, "emu", 3, TOKEN).await;
    let api = Api {
        base: emu.url.clone(),
        http: reqwest::Client::new(),
    };
    let names = emu.certnames();

    // The files the orchestrator serves: the entry, then both architectures' built binaries;
    // each node's run gets all three in its install directory and runs this machine's binary.
    let t = api.get("/tasks/psick/puppet_agent").await;
    let files: Vec<(&str, &str)> = t["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["filename"].as_str().unwrap(),
                f["sha256"].as_str().unwrap(),
            )
        })
        .collect();
    let root = kick_e2e::workspace_root();
    let (entry, x86, arm) = (
        kick_e2e::sha256_file(&kick_e2e::task_entry()),
        kick_e2e::sha256_file(&root.join("files/x86_64/psick-task")),
        kick_e2e::sha256_file(&root.join("files/aarch64/psick-task")),
    );
    assert_eq!(
        files,
        [
            ("puppet_agent", entry.as_str()),
            ("psick/files/x86_64/psick-task", x86.as_str()),
            ("psick/files/aarch64/psick-task", arm.as_str())
        ],
        "{t}"
    );
    assert!([&x86, &arm].contains(&&kick_e2e::sha256_file(&bin)));

    // 1. Noop: pending changes shown, nothing changed.
    let (job, items) = api
        .run(
            "/command/task",
            json!({"task": "psick::puppet_agent", "noop": true, "environment": "production",
                   "params": {"environment": "idem"}, "scope": {"nodes": names}}),
        )
        .await;
    assert_eq!(job["state"], "finished", "{job:#}\n{items:#?}");
    assert_eq!(items.len(), 3);
    for n in &items {
        let r = agent_result(n);
        assert_eq!(r.status, RunStatus::Changed, "{n:#}");
        assert!(r.noop, "_noop reached the task: {n:#}");
        let res = r.resources.expect("resources from this run's summary");
        assert!(res.noop_pending > 0 && res.changed == 0, "{n:#}");
        assert!(r.command.iter().any(|a| a == "--noop"), "{:?}", r.command);
        assert_eq!(r.environment.as_deref(), Some("idem"));
    }
    // 2. Real run: changes applied.
    let (job, items) = api
        .run(
            "/command/task",
            json!({"task": "psick::puppet_agent", "environment": "production",
                   "params": {"environment": "idem", "noop": false}, "scope": {"nodes": names}}),
        )
        .await;
    assert_eq!(job["state"], "finished", "{items:#?}");
    for n in &items {
        let r = agent_result(n);
        assert_eq!(r.status, RunStatus::Changed, "{n:#}");
        assert!(!r.noop);
        assert!(r.resources.expect("resources").changed > 0, "{n:#}");
        assert_eq!(
            r.exitcode,
            Some(2),
            "puppet's detailed exit code for changes"
        );
    }

    // 3. `puppet job run`-style deploy in the same environment: converged, so unchanged,
    //    and node_finished carries the run summary in PE's deploy shape.
    let (job, items) = api
        .run(
            "/command/deploy",
            json!({"environment": "idem", "scope": {"nodes": names}}),
        )
        .await;
    assert_eq!(job["state"], "finished", "{items:#?}");
    let name = job["name"].as_str().expect("name");
    let events = api.get(&format!("/jobs/{name}/events")).await;
    let finished: Vec<&Value> = events["items"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "node_finished")
        .collect();
    assert_eq!(finished.len(), 3, "{events:#}");
    for e in finished {
        let d = &e["details"]["detail"];
        assert_eq!(d["status"], "unchanged", "{e:#}");
        assert_eq!(d["environment"], "idem");
        assert_eq!(d["metrics"]["changed"], 0);
        assert!(d["metrics"]["total"].as_u64().unwrap_or(0) > 0, "{e:#}");
        assert!(d["configuration_version"].is_string());
        assert!(
            e["message"]
                .as_str()
                .unwrap_or_default()
                .ends_with("Success! ")
        );
    }

    emu.stop().await;
}

/// A force stop of a job ends the whole run on a local node: the task, puppet, and the exec
/// puppet started in a session of its own. Checked from the exec's side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_stop_ends_the_runs_exec_on_a_local_node() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let emu = LocalNodes::start(&stack, "emu-stop", 1, TOKEN).await;
    let api = Api {
        base: emu.url.clone(),
        http: reqwest::Client::new(),
    };
    let node = &emu.nodes[0];
    node.forget_exec_pid();
    let created = api
        .post(
            "/command/task",
            json!({"task": "psick::puppet_agent", "environment": "production",
                   "params": {"environment": "slow"}, "scope": {"nodes": [node.certname()]}}),
        )
        .await;
    let name = created["job"]["name"].as_str().expect("name").to_owned();
    let exec = tokio::task::block_in_place(|| node.wait_for_exec_pid(Duration::from_secs(90)));
    assert!(kick_e2e::process_alive(exec));
    let stopped = api
        .post("/command/stop", json!({"job": name, "force": true}))
        .await;
    assert!(stopped["job"]["id"].is_string(), "{stopped}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let j = api.get(&format!("/jobs/{name}")).await;
        if matches!(j["state"].as_str(), Some("finished" | "failed" | "stopped")) {
            break j;
        }
        assert!(tokio::time::Instant::now() < deadline, "{j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["state"], "stopped", "{job:#}");
    assert!(
        !kick_e2e::process_alive(exec),
        "the exec {exec} outlived the force stop"
    );
    let left = node.wait_no_puppet_processes(Duration::from_secs(5));
    assert!(left.is_empty(), "puppet processes left: {left:?}");
    emu.stop().await;
}
