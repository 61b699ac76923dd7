//! The rest of the v1 API: plan jobs, scheduled jobs, usage, task targets,
//! and which validation kind each kind of bad input answers.

use std::time::Duration;

use kick_orchestrator::TokenSpec;
use serde_json::{Value, json};

use crate::common::{Server, config};

const VALIDATORS: &str = "puppetlabs.validators/validation-error";

async fn wait_plan(s: &Server, name: &str) -> Value {
    for _ in 0..600 {
        let (st, p) = s.get(&format!("/plan_jobs/{name}")).await;
        assert_eq!(st, 200, "{p}");
        if ["success", "failure"].contains(&p["state"].as_str().unwrap()) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("plan job {name} did not end");
}

#[tokio::test]
async fn body_and_query_validation_answer_their_kinds() {
    let s = Server::start(config(1).build()).await;
    let (st, e) = s.post("/inventory", json!({})).await;
    assert_eq!((st, e["kind"].as_str()), (400, Some(VALIDATORS)), "{e}");
    let (st, e) = s
        .post(
            "/command/task",
            json!({"task": "Bad", "params": {}, "scope": {"nodes": ["x"]}}),
        )
        .await;
    assert_eq!((st, e["kind"].as_str()), (400, Some(VALIDATORS)), "{e}");
    let (st, e) = s.get("/jobs?limit=x").await;
    assert_eq!(
        (st, e["kind"].as_str()),
        (400, Some("puppetlabs.orchestrator/validation-error"))
    );
    s.stop().await;
}

#[tokio::test]
async fn plan_run_runs_task_steps_as_plan_task_jobs() {
    let s = Server::start(config(2).build()).await;
    let (st, c) = s
        .post(
            "/command/plan_run",
            json!({"plan_name": "fixture::two_steps", "description": "two",
                   "params": {"targets": ["node-0000.example", "node-0001.example"], "message": "hi"}}),
        )
        .await;
    assert_eq!(st, 202, "{c}");
    let name = c["name"].as_str().unwrap().to_owned();
    let p = wait_plan(&s, &name).await;
    assert_eq!(p["state"], "success", "{p}");
    assert_eq!(p["options"]["plan_name"], "fixture::two_steps");
    assert_eq!(p["result"]["node-0001.example"]["pt_message"], "hi", "{p}");
    let states: Vec<&str> = p["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending", "running", "success"]);
    let (_, ev) = s.get(&format!("/plan_jobs/{name}/events")).await;
    let types: Vec<&str> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["plan_start", "task_start", "task_start", "plan_finished"]
    );
    let first = ev["items"][1]["details"]["job-id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, j) = s.get(&format!("/jobs/{first}")).await;
    assert_eq!(
        (j["type"].as_str(), j["command"].as_str()),
        (Some("plan_task"), Some("plan_task"))
    );
    assert_eq!(j["options"]["plan_job"], name.as_str());
    let (_, list) = s.get("/jobs?type=plan_task").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (st, one) = s.get(&format!("/plan_jobs/{name}/events/2")).await;
    assert_eq!((st, one["type"].as_str()), (200, Some("task_start")));
    let (_, all) = s.get("/plan_jobs?results=exclude").await;
    assert_eq!(all["items"][0]["name"], name.as_str());
    assert!(all["items"][0].get("result").is_none(), "{all}");
    assert_eq!(all["pagination"]["total"], 1);

    let (_, c) = s
        .post(
            "/command/plan_run",
            json!({"plan_name": "fixture::failing", "params": {"targets": "node-0000.example"}}),
        )
        .await;
    let p = wait_plan(&s, c["name"].as_str().unwrap()).await;
    assert_eq!(p["state"], "failure");
    assert_eq!(p["result"]["kind"], "bolt/run-failure", "{p}");

    for (plan, status, kind) in [
        ("fixture::with_command", 400, VALIDATORS),
        ("fixture::in_puppet", 400, VALIDATORS),
        ("fixture::nope", 404, "puppetlabs.orchestrator/unknown-plan"),
    ] {
        let (st, e) = s
            .post(
                "/command/plan_run",
                json!({"plan_name": plan, "params": {}}),
            )
            .await;
        assert_eq!(
            (st, e["kind"].as_str()),
            (status, Some(kind)),
            "{plan}: {e}"
        );
    }
    let (st, e) = s
        .post(
            "/command/plan_run",
            json!({"plan_name": "fixture::two_steps", "params": {}}),
        )
        .await;
    assert_eq!(st, 400, "missing parameters: {e}");
    s.stop().await;
}

#[tokio::test]
async fn bolt_drives_a_plan_job() {
    let s = Server::start(config(1).build()).await;
    let (st, c) = s
        .post(
            "/command/plan_start",
            json!({"plan_name": "site::deploy", "description": "bolt", "params": {}}),
        )
        .await;
    assert!(st == 202, "{c}");
    let plan = c["name"].as_str().unwrap().to_owned();
    let (st, j) = s
        .post(
            "/command/plan_task",
            json!({"plan_job": plan.parse::<u64>().unwrap(), "task": "fixture::trivial", "params": {},
                   "scope": {"nodes": ["node-0000.example"]}, "environment": "production", "noop": null}),
        )
        .await;
    assert_eq!(st, 202, "{j}");
    let job = j["job"]["name"].as_str().unwrap().to_owned();
    let done = s.wait(&job).await;
    assert_eq!(done["type"], "plan_task");
    let (st, f) = s
        .post(
            "/command/plan_finish",
            json!({"plan_job": plan, "result": {"ok": true}, "status": "success"}),
        )
        .await;
    assert_eq!((st, f["name"].as_str()), (200, Some(plan.as_str())), "{f}");
    let (_, p) = s.get(&format!("/plan_jobs/{plan}")).await;
    assert_eq!(
        (p["state"].as_str(), &p["result"]),
        (Some("success"), &json!({"ok": true}))
    );
    for (path, body) in [
        (
            "/command/plan_finish",
            json!({"plan_job": plan, "result": {}, "status": "failure"}),
        ),
        (
            "/command/plan_task",
            json!({"plan_job": plan, "task": "fixture::trivial", "params": {}, "scope": {"nodes": ["node-0000.example"]}}),
        ),
    ] {
        let (st, e) = s.post(path, body).await;
        assert_eq!(
            (st, e["kind"].as_str()),
            (400, Some("puppetlabs.orchestrator/plan-already-finished")),
            "{path}: {e}"
        );
    }
    let (_, c) = s
        .post(
            "/command/plan_start",
            json!({"plan_name": "site::other", "params": {}}),
        )
        .await;
    let other = c["name"].as_str().unwrap();
    let (st, _) = s
        .post("/command/stop_plan", json!({"plan_job": other}))
        .await;
    assert_eq!(st, 202);
    let (_, p) = s.get(&format!("/plan_jobs/{other}")).await;
    assert_eq!(p["state"], "failure", "{p}");
    let (st, e) = s
        .post("/command/stop_plan", json!({"plan_job": "999"}))
        .await;
    assert_eq!(
        (st, e["kind"].as_str()),
        (404, Some("puppetlabs.orchestrator/unknown-job"))
    );
    s.stop().await;
}

fn in_secs(s: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(s))
        .to_string()
}

#[tokio::test]
async fn scheduled_jobs_run_when_due_and_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(1).state_dir(dir.path()).build()).await;
    let input = json!({"task": "fixture::trivial", "params": {}, "scope": {"nodes": ["node-0000.example"]}});
    let (st, c) = s
        .post(
            "/scheduled_jobs/environment_jobs",
            json!({"type": "task", "input": input, "environment": "production",
                   "schedule": {"start_time": in_secs(1), "interval": null}, "description": "soon"}),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    let id = c["scheduled_job"]["name"].as_str().unwrap().to_owned();
    let mut ran = Value::Null;
    for _ in 0..100 {
        let (_, sj) = s
            .get(&format!("/scheduled_jobs/environment_jobs/{id}"))
            .await;
        if !sj["last_job"].is_null() {
            ran = sj;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ran["next_run_time"],
        Value::Null,
        "a one-off runs once: {ran}"
    );
    let job = ran["last_job"]["name"].as_str().unwrap().to_owned();
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "finished");
    assert_eq!(j["options"]["scheduled-job-id"], id.as_str());

    let (st, c) = s
        .post(
            "/scheduled_jobs/environment_jobs",
            json!({"type": "deploy", "input": {"scope": {"nodes": ["node-0000.example"]}},
                   "environment": "production",
                   "schedule": {"start_time": in_secs(3600), "interval": {"units": "seconds", "value": 86400}}}),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    let later = c["scheduled_job"]["name"].as_str().unwrap().to_owned();
    let (st, e) = s
        .post(
            "/scheduled_jobs/environment_jobs",
            json!({"type": "task", "input": input, "environment": "production",
                   "schedule": {"start_time": "2001-01-01T00:00:00Z", "interval": null}}),
        )
        .await;
    assert_eq!(
        (st, e["kind"].as_str()),
        (400, Some("puppetlabs.orchestrator/invalid-time"))
    );
    let (st, e) = s
        .post(
            "/scheduled_jobs/environment_jobs",
            json!({"type": "task", "input": input, "environment": "production",
                   "schedule": {"start_time": in_secs(60), "interval": {"units": "hours", "value": 1}}}),
        )
        .await;
    assert_eq!((st, e["kind"].as_str()), (400, Some(VALIDATORS)), "{e}");
    s.stop().await;

    // Kept across a restart; edited, then removed.
    let s = Server::start(config(1).state_dir(dir.path()).build()).await;
    let (_, list) = s
        .get("/scheduled_jobs/environment_jobs?order_by=name")
        .await;
    assert_eq!(list["pagination"]["total"], 2, "{list}");
    assert_eq!(list["items"][1]["schedule"]["interval"]["value"], 86400);
    let r = s
        .client
        .put(s.url(&format!("/scheduled_jobs/environment_jobs/{later}")))
        .header("X-Authentication", crate::common::TOKEN)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let edited: Value = r.json().await.unwrap();
    assert_eq!(edited["enabled"], false);
    let r = s
        .client
        .delete(s.url(&format!("/scheduled_jobs/environment_jobs/{later}")))
        .header("X-Authentication", crate::common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, e) = s
        .get(&format!("/scheduled_jobs/environment_jobs/{later}"))
        .await;
    assert_eq!(
        (st, e["kind"].as_str()),
        (404, Some("puppetlabs.orchestrator/unknown-scheduled-job"))
    );
    s.stop().await;
}

#[tokio::test]
async fn usage_counts_nodes_per_day() {
    let s = Server::start(config(2).build()).await;
    let job = s
        .task(
            "fixture::trivial",
            json!({}),
            &["node-0000.example", "node-0001.example"],
        )
        .await;
    s.wait(&job).await;
    let (st, u) = s.get("/usage?events=include").await;
    assert_eq!(st, 200, "{u}");
    let items = u["items"].as_array().unwrap();
    assert_eq!(items.len(), 30);
    let today = items.last().unwrap();
    assert_eq!(today["date"], u["pagination"]["end_date"]);
    assert_eq!(today["total_nodes"], 2, "{today}");
    assert_eq!(today["nodes_with_agent"], 2);
    assert_eq!(today["nodes_affected_by_task_runs"], 2);
    assert_eq!(items[0]["total_nodes"], 0);
    let (_, u) = s
        .get("/usage?start_date=2026-01-01&end_date=2026-01-03")
        .await;
    assert_eq!(u["items"].as_array().unwrap().len(), 3);
    assert!(u["items"][0].get("nodes_affected_by_task_runs").is_none());
    for bad in [
        "/usage?start_date=2026-1-1",
        "/usage?start_date=2026-02-02&end_date=2026-02-01",
    ] {
        let (st, e) = s.get(bad).await;
        assert_eq!(
            (st, e["kind"].as_str()),
            (400, Some("puppetlabs.orchestrator/validation-error")),
            "{bad}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn task_targets_limit_what_a_token_may_run() {
    let mut limited = TokenSpec::new("target-token");
    limited.login = "helpdesk".into();
    limited.task_target = Some("1".into());
    let s = Server::start(config(2).token_spec(limited).build()).await;
    let (st, c) = s
        .post(
            "/command/task_target",
            json!({"display_name": "helpdesk", "tasks": ["fixture::trivial"],
                   "nodes": ["node-0000.example"], "node_groups": []}),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["task_target"]["name"], "1");
    assert!(
        c["task_target"]["id"]
            .as_str()
            .unwrap()
            .ends_with("/scopes/task_targets/1")
    );
    let (_, list) = s.get("/scopes/task_targets").await;
    assert_eq!(list["items"][0]["display_name"], "helpdesk");
    let (st, one) = s.get("/scopes/task_targets/1").await;
    assert_eq!(
        (st, one["tasks"].clone()),
        (200, json!(["fixture::trivial"]))
    );
    let (st, e) = s.get("/scopes/task_targets/9").await;
    assert_eq!(
        (st, e["kind"].as_str()),
        (404, Some("puppetlabs.orchestrator/unknown-task-target"))
    );
    let (st, e) = s
        .post(
            "/command/task_target",
            json!({"display_name": "x", "nodes": [], "node_groups": []}),
        )
        .await;
    assert_eq!((st, e["kind"].as_str()), (400, Some(VALIDATORS)), "{e}");

    let as_limited = |path: &str, body: Value| {
        s.client
            .post(s.url(path))
            .header("X-Authentication", "target-token")
            .json(&body)
            .send()
    };
    let r = as_limited(
        "/command/task",
        json!({"task": "fixture::trivial", "params": {},
               "scope": {"nodes": ["node-0000.example", "node-0001.example"]}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let job = r.json::<Value>().await.unwrap()["job"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    s.wait(&job).await;
    let names: Vec<String> = s
        .nodes(&job)
        .await
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["node-0000.example"],
        "nodes outside the target are left out"
    );
    for (path, body) in [
        (
            "/command/task",
            json!({"task": "fixture::plain", "params": {}, "scope": {"nodes": ["node-0000.example"]}}),
        ),
        (
            "/command/task",
            json!({"task": "fixture::trivial", "params": {}, "scope": {"nodes": ["node-0001.example"]}}),
        ),
        (
            "/command/deploy",
            json!({"environment": "production", "scope": {"nodes": ["node-0000.example"]}}),
        ),
    ] {
        let r = as_limited(path, body.clone()).await.unwrap();
        assert_eq!(r.status(), 403, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["kind"], "puppetlabs.orchestrator/not-permitted");
    }
    s.stop().await;
}
