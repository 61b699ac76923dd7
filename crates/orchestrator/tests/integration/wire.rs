//! Wire fidelity: our responses carry the keys and JSON types of the real
//! PE responses captured in `crates/orchestrator-types/tests/fixtures`, and
//! parse with the shared types.

use orchestrator_types::{
    EventList, InventoryList, InventoryNode, Job, JobCreated, JobList, JobReport, NodeList,
    StopResponse, TaskDetails, TaskList,
};
use serde_json::json;

use crate::common::{Server, assert_covers, capture, config};

#[tokio::test]
async fn command_task_and_job_match_the_captures() {
    let s = Server::start(config(2).build()).await;
    let (st, created) = s
        .post(
            "/command/task",
            json!({"task": "fixture::echo_json", "params": {"message": "hi"}, "noop": true,
                   "scope": {"nodes": ["node-0000.example"]}, "environment": "production",
                   "description": "wire"}),
        )
        .await;
    assert_eq!(st, 202);
    assert_covers(&created, &capture("command-task-created.json"), &[]);
    serde_json::from_value::<JobCreated>(created.clone()).unwrap();
    let name = created["job"]["name"].as_str().unwrap();
    assert!(
        created["job"]["id"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/orchestrator/v1/jobs/{name}"))
    );

    let job = s.wait(name).await;
    assert_covers(
        &job,
        &capture("job-task.json"),
        &[
            "$.node_states.",
            "$.options.params.",
            "$.options.scheduled-job-id",
        ],
    );
    let parsed: Job = serde_json::from_value(job.clone()).unwrap();
    assert_eq!(parsed.state.as_str(), "finished");
    assert!(
        job["duration"].is_string(),
        "job duration is a string: {job}"
    );
    assert_eq!(job["node_states"], json!({"finished": 1}));
    let states: Vec<&str> = job["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["new", "ready", "running", "finished"]);
    assert!(job["status"][3]["exit_time"].is_null());
    let ts = job["timestamp"].as_str().unwrap();
    assert!(
        ts.len() == 20 && ts.ends_with('Z'),
        "second precision: {ts}"
    );

    let mut redacted = job.clone();
    for k in [
        "id",
        "timestamp",
        "started_timestamp",
        "finished_timestamp",
        "duration",
        "name",
    ] {
        redacted[k] = json!("[redacted]");
    }
    redacted["owner"]["last_login"] = json!("[time]");
    for k in ["nodes", "report", "events"] {
        redacted[k]["id"] = json!("[url]");
    }
    for st in redacted["status"].as_array_mut().unwrap() {
        st["enter_time"] = json!("[time]");
        if !st["exit_time"].is_null() {
            st["exit_time"] = json!("[time]");
        }
    }
    insta::assert_json_snapshot!("job_document", redacted);

    let (_, list) = s.get("/jobs").await;
    let list: JobList = serde_json::from_value(list).unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.items[0].status.is_none());
    s.stop().await;
}

#[tokio::test]
async fn nodes_match_the_captures() {
    let mut c = config(2).build();
    let mut off = crate::common::node("offline.example");
    off.connected = false;
    c.inventory.nodes.push(off);
    let s = Server::start(c).await;
    let raw = s
        .task("fixture::plain", json!({}), &["node-0000.example"])
        .await;
    s.wait(&raw).await;
    let (_, page) = s.get(&format!("/jobs/{raw}/nodes")).await;
    assert_covers(
        &page,
        &capture("nodes-raw-output.json"),
        &["$.items[].result._output"],
    );
    assert_eq!(
        page["items"][0]["result"]["_output"],
        "hello from node-0000.example\nsecond line\n"
    );
    assert!(page["items"][0]["duration"].is_number());
    assert!(page["items"][0]["latest-event-id"].is_u64());
    serde_json::from_value::<NodeList>(page).unwrap();

    let js = s
        .task("fixture::echo_json", json!({}), &["node-0001.example"])
        .await;
    s.wait(&js).await;
    let (_, page) = s.get(&format!("/jobs/{js}/nodes")).await;
    assert_covers(
        &page,
        &capture("nodes-json-result.json"),
        &["$.items[].result.", "$.items[].details."],
    );
    let next = &page["next-events"];
    assert_eq!(
        next["event"], "4",
        "three events (running, finished, job_finished), next is 4: {page}"
    );
    assert!(
        next["id"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/jobs/{js}/events?start=4"))
    );

    let off = s
        .task("fixture::plain", json!({}), &["offline.example"])
        .await;
    let job = s.wait(&off).await;
    assert_eq!(job["state"], "failed");
    let (_, page) = s.get(&format!("/jobs/{off}/nodes")).await;
    assert_covers(&page, &capture("nodes-errored.json"), &[]);
    assert_eq!(
        page["items"][0]["details"]["message"],
        "Error running task fixture::plain on offline.example: offline.example is not connected to the PCP broker"
    );
    s.stop().await;
}

#[tokio::test]
async fn deploy_events_match_the_capture() {
    let s = Server::start(
        config(2)
            .module("psick", crate::common::fixtures().join("modules/psick"))
            .build(),
    )
    .await;
    let (st, created) = s
        .post("/command/deploy", json!({"environment": "production", "scope": {"nodes": ["node-0000.example", "node-0001.example"]}, "noop": true, "tags": "a,b"}))
        .await;
    assert_eq!(st, 202, "{created}");
    let name = created["job"]["name"].as_str().unwrap();
    let job = s.wait(name).await;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(job["type"], "deploy");
    let (_, events) = s.get(&format!("/jobs/{name}/events")).await;
    let cap = capture("events-deploy.json");
    assert_covers(&events, &cap, &["$.items[].details.detail."]);
    serde_json::from_value::<EventList>(events.clone()).unwrap();
    let items = events["items"].as_array().unwrap();
    let running = items.iter().find(|e| e["type"] == "node_running").unwrap();
    assert_eq!(running["details"]["detail"], json!({"noop": true}));
    let finished = items.iter().find(|e| e["type"] == "node_finished").unwrap();
    assert_covers(
        &finished["details"]["detail"],
        &cap["items"][3]["details"]["detail"],
        &[],
    );
    assert_eq!(finished["details"]["detail"]["metrics"]["changed"], 2);
    assert_eq!(
        finished["details"]["detail"]["configuration_version"],
        "1700000000"
    );
    assert!(
        finished["message"]
            .as_str()
            .unwrap()
            .starts_with("Finished puppet run on node-000")
    );
    // The deploy flags reached the task as psick::puppet_agent parameters.
    let (_, nodes) = s.get(&format!("/jobs/{name}/nodes")).await;
    let r = &nodes["items"][0]["result"];
    assert_eq!(r["noop"], true, "{r}");
    let last = items.last().unwrap();
    assert_eq!(last["type"], "job_finished");
    assert_eq!(last["id"], items.len().to_string());
    assert_eq!(
        events["next-events"]["event"],
        (items.len() + 1).to_string()
    );
    s.stop().await;
}

#[tokio::test]
async fn root_document_links_answer() {
    let s = Server::start(config(1).build()).await;
    let (st, root) = s.get("").await;
    assert_eq!(st, 200, "{root}");
    let status = root["status"]["id"].as_str().unwrap();
    let path = status.split("/orchestrator/v1").nth(1).unwrap();
    let (st, body) = s.get(path).await;
    assert_eq!(
        (st, body["state"].as_str()),
        (200, Some("running")),
        "{body}"
    );
    // PE also lists an `environments` collection, with no documented shape;
    // the orchestrator leaves it unanswered.
    for c in root["collections"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        if c["name"] == "environments" {
            continue;
        }
        let path = id.split("/orchestrator/v1").nth(1).unwrap();
        let (st, body) = s.get(path).await;
        assert_eq!(st, 200, "{id}: {body}");
    }
    s.stop().await;
}

#[tokio::test]
async fn stop_errors_inventory_tasks_and_report_have_pe_shapes() {
    let mut c = config(1).build();
    let mut off = crate::common::node("offline.example");
    off.connected = false;
    c.inventory.nodes.push(off);
    let s = Server::start(c).await;
    let job = s
        .task(
            "fixture::sleep",
            json!({"seconds": 0.2}),
            &["node-0000.example"],
        )
        .await;
    let (st, stop) = s.post("/command/stop", json!({"job": job})).await;
    assert_eq!(st, 202);
    assert_covers(&stop, &capture("command-stop.json"), &["$.job.nodes."]);
    serde_json::from_value::<StopResponse>(stop).unwrap();
    s.wait(&job).await;

    let (st, e) = s
        .post(
            "/command/task",
            json!({"task": "fixture::plain", "params": {}, "scope": {"nodes": []}}),
        )
        .await;
    assert_eq!(st, 400);
    assert_covers(&e, &capture("error-empty-target.json"), &[]);
    let (st, e) = s.post("/command/task", json!({"task": "fixture::plain", "params": {}, "environment": "nope", "scope": {"nodes": ["x"]}})).await;
    assert_eq!(st, 404);
    assert_covers(&e, &capture("error-unknown-environment.json"), &[]);
    let (st, e) = s
        .post(
            "/command/task",
            json!({"task": "fixture::plain", "params": {}, "scope": {"query": "nodes {}"}}),
        )
        .await;
    assert_eq!(st, 400);
    assert_covers(&e, &capture("error-query.json"), &[]);

    let (st, inv) = s.get("/inventory").await;
    assert_eq!(st, 200);
    let inv: InventoryList = serde_json::from_value(inv).unwrap();
    assert_eq!(inv.items.len(), 1, "only connected nodes");
    let ts = inv.items[0].timestamp.clone().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z'),
        "millisecond precision: {ts}"
    );
    let (_, inv) = s
        .post(
            "/inventory",
            json!({"nodes": ["node-0000.example", "offline.example"]}),
        )
        .await;
    assert_eq!(
        inv["items"][1],
        json!({"name": "offline.example", "connected": false})
    );
    let (_, one) = s.get("/inventory/node-0000.example").await;
    assert!(
        serde_json::from_value::<InventoryNode>(one)
            .unwrap()
            .connected
    );

    let (_, tasks) = s.get("/tasks").await;
    let tasks: TaskList = serde_json::from_value(tasks).unwrap();
    let names: Vec<&str> = tasks.items.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"fixture::typed") && names.contains(&"fixture"),
        "{names:?}"
    );
    let (st, t) = s.get("/tasks/fixture/sleep").await;
    assert_eq!(st, 200);
    let t: TaskDetails = serde_json::from_value(t).unwrap();
    let file = crate::common::fixtures().join("modules/fixture/tasks/sleep.sh");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(t.files[0].size_bytes, bytes.len() as u64);
    use sha2::Digest;
    assert_eq!(t.files[0].sha256, hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(t.files[0].filename, "sleep.sh");
    let (st, e) = s.get("/tasks/fixture/nope").await;
    assert_eq!(
        (st, e["kind"].as_str().unwrap()),
        (404, "puppetlabs.orchestrator/unknown-task")
    );

    let (st, report) = s.get(&format!("/jobs/{job}/report")).await;
    assert_eq!(st, 200);
    assert!(report.get("report").is_some());
    serde_json::from_value::<JobReport>(report).unwrap();

    let (st, root) = s.get("").await;
    assert_eq!(st, 200);
    assert_eq!(root["info"]["version"], "0.1");
    assert_eq!(root["commands"][0]["name"], "deploy");
    s.stop().await;
}

#[tokio::test]
async fn rendered_nodes_events_and_errors() {
    let s = Server::start(config(2).concurrency(1).build()).await;
    let job = s
        .task(
            "fixture::exit3",
            json!({}),
            &["node-0000.example", "node-0001.example"],
        )
        .await;
    s.wait(&job).await;
    let (_, mut nodes) = s.get(&format!("/jobs/{job}/nodes")).await;
    nodes["next-events"]["id"] = json!("[url]");
    insta::assert_json_snapshot!("nodes_failed_task", nodes, {
        ".items[].timestamp" => "[time]",
        ".items[].start_timestamp" => "[time]",
        ".items[].finish_timestamp" => "[time]",
        ".items[].duration" => "[duration]",
    });
    let (_, mut events) = s.get(&format!("/jobs/{job}/events?start=3")).await;
    events["next-events"]["id"] = json!("[url]");
    insta::assert_json_snapshot!("events_from_3", events, {
        ".items[].timestamp" => "[time]",
    });
    let (_, e) = s
        .post(
            "/command/task",
            json!({"task": "fixture::typed", "params": {"name": "x", "count": 0},
                   "scope": {"nodes": ["node-0000.example"]}}),
        )
        .await;
    insta::assert_json_snapshot!("error_param_type", e);
    s.stop().await;
}
