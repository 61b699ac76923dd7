//! `kick schedule ...` and `kick agent --at`: scheduled jobs on the
//! orchestrator, which starts them when due.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::harness::{Emu, node};

const NODE: &str = "a.example.com";

fn in_secs(s: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(s)).to_string()
}

async fn emu() -> Emu {
    Emu::start(vec![node(NODE, "changed", 0.0)]).await
}

/// Schedules with `parts` and returns the new scheduled job's id.
async fn add(emu: &Emu, parts: &[&str]) -> String {
    let r = emu.kick(parts).await;
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_owned();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "{r:?}"
    );
    id
}

async fn show_json(emu: &Emu, id: &str) -> Value {
    let r = emu
        .kick(&["schedule", "show", id, "--format", "json"])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    r.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn add_list_show_disable_enable_remove_round_trip() {
    let emu = emu().await;
    let at = in_secs(3600);
    let id = add(
        &emu,
        &[
            "schedule",
            "add",
            "task",
            "fixture::echo",
            "message=hi",
            "--nodes",
            NODE,
            "--at",
            &at,
            "--every",
            "12h",
            "--description",
            "twice a day",
        ],
    )
    .await;
    let j = show_json(&emu, &id).await;
    assert_eq!(j["type"], "task");
    assert_eq!(j["environment"], "production");
    assert_eq!(j["input"]["task"], "fixture::echo");
    assert_eq!(j["input"]["params"]["message"], "hi");
    assert_eq!(j["input"]["scope"]["nodes"][0], NODE);
    assert!(j["input"].get("environment").is_none(), "{j}");
    assert_eq!(j["schedule"]["start_time"], at.as_str());
    assert_eq!(
        j["schedule"]["interval"],
        serde_json::json!({"units": "seconds", "value": 43200})
    );
    assert_eq!(j["next_run_time"], at.as_str());
    assert_eq!(j["description"], "twice a day");
    assert_eq!(j["enabled"], true);

    let list = emu.kick(&["schedule", "list", "--format", "json"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let items = list.json();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(items[0]["name"], id.as_str());

    let human = emu.kick(&["schedule", "show", &id]).await;
    assert_eq!(human.code, 0, "{human:?}");
    for want in [
        format!("Scheduled job {id}"),
        "fixture::echo".into(),
        "12h".into(),
        format!("Next run:    {at}"),
        "Enabled:     yes".into(),
        "{\"message\":\"hi\"}".into(),
        format!("1 node(s): {NODE}"),
    ] {
        assert!(human.stdout.contains(&want), "{want}: {}", human.stdout);
    }

    let off = emu.kick(&["schedule", "disable", &id]).await;
    assert_eq!(off.code, 0, "{off:?}");
    assert!(off.stdout.contains("disabled"), "{off:?}");
    assert_eq!(show_json(&emu, &id).await["enabled"], false);
    let on = emu
        .kick(&["schedule", "enable", &id, "--format", "json"])
        .await;
    assert_eq!(on.code, 0, "{on:?}");
    assert_eq!(on.json()["enabled"], true);

    let rm = emu.kick(&["schedule", "remove", &id]).await;
    assert_eq!(rm.code, 0, "{rm:?}");
    assert!(rm.stdout.contains("removed"), "{rm:?}");
    let gone = emu.kick(&["schedule", "show", &id]).await;
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr
            .contains(&format!("no scheduled job {id}; see `kick schedule list`")),
        "{gone:?}"
    );
    let empty = emu.kick(&["schedule", "list"]).await;
    assert_eq!(empty.code, 0);
    assert!(empty.stderr.contains("No scheduled jobs"), "{empty:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kick_agent_at_schedules_the_agent_task_instead_of_running_it() {
    let emu = emu().await;
    let at = in_secs(7200);
    let r = emu
        .kick(&[
            "agent", "--nodes", NODE, "--noop", "--tags", "ntp", "--at", &at, "--every", "1day",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_owned();
    assert!(
        r.stderr.contains(&format!(
            "Scheduled job {id}: psick::puppet_agent, first run {at}, every 1day."
        )),
        "{r:?}"
    );
    assert!(r.stderr.contains("`kick schedule list`"), "{r:?}");
    assert!(
        r.stderr.contains(&format!("`kick schedule remove {id}`")),
        "{r:?}"
    );
    let j = show_json(&emu, &id).await;
    assert_eq!(j["input"]["task"], "psick::puppet_agent");
    assert_eq!(j["input"]["noop"], true);
    assert_eq!(
        j["input"]["params"],
        serde_json::json!({"noop": true, "tags": ["ntp"]})
    );
    assert_eq!(j["schedule"]["interval"]["value"], 86400);
    // Nothing ran now.
    let jobs = emu.kick(&["job", "list", "--format", "json"]).await;
    assert_eq!(jobs.json(), serde_json::json!([]));

    // `schedule add agent` is the long form of the same.
    let json = emu
        .kick(&[
            "schedule", "add", "agent", "--nodes", NODE, "--at", &at, "--format", "json",
        ])
        .await;
    assert_eq!(json.code, 0, "{json:?}");
    let doc = json.json();
    assert_eq!(doc["schedule"]["start_time"], at.as_str());
    assert_eq!(doc["schedule"]["interval"], Value::Null);
    let other = doc["scheduled_job"]["name"].as_str().unwrap().to_owned();
    assert_ne!(other, id);
    assert!(
        doc["scheduled_job"]["id"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scheduled_jobs/environment_jobs/{other}")),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_job_due_now_is_run_by_the_orchestrator() {
    let emu = emu().await;
    let id = add(&emu, &["agent", "--nodes", NODE, "--at", "now"]).await;
    let mut job = Value::Null;
    for _ in 0..150 {
        let jobs = emu.kick(&["job", "list", "--format", "json"]).await;
        assert_eq!(jobs.code, 0, "{jobs:?}");
        if let Some(j) = jobs.json().as_array().and_then(|a| {
            a.iter()
                .find(|j| j["options"]["scheduled-job-id"] == id.as_str())
        }) {
            job = j.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(job.is_object(), "no job was started by scheduled job {id}");
    let name = job["name"].as_str().unwrap().to_owned();
    // The run is a real agent job: following it ends with the node changed.
    let watch = emu.kick(&["job", "watch", &name, "--format", "json"]).await;
    assert_eq!(watch.code, 2, "{watch:?}");
    assert_eq!(watch.json()["summary"]["changed"], 1);
    // A one-off schedule has no next run once it ran, and names its job.
    let j = show_json(&emu, &id).await;
    assert_eq!(j["next_run_time"], Value::Null, "{j}");
    assert_eq!(j["last_job"]["name"], name.as_str(), "{j}");
    let human = emu.kick(&["schedule", "show", &id]).await;
    assert!(
        human.stdout.contains(&format!("Last run:    job {name}")),
        "{human:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_times_intervals_and_ids_are_clear_errors() {
    let emu = emu().await;
    let cases: [(&[&str], &str); 8] = [
        (
            &["agent", "--nodes", NODE, "--at", "now", "--batch", "1"],
            "a scheduled job is one job",
        ),
        (
            &[
                "schedule",
                "add",
                "agent",
                "--nodes-from",
                "1",
                "--at",
                "now",
            ],
            "--nodes-from cannot be scheduled",
        ),
        (
            &["agent", "--nodes", NODE, "--at", "2001-01-01T00:00:00Z"],
            "--at 2001-01-01T00:00:00Z is in the past",
        ),
        (
            &["agent", "--nodes", NODE, "--at", "in 10m"],
            "is not a time; give RFC 3339",
        ),
        (
            &["agent", "--nodes", NODE, "--every", "0s"],
            "--every must be longer than zero",
        ),
        (
            &["agent", "--nodes", NODE, "--every", "400days"],
            "longer than a year",
        ),
        (
            &["schedule", "disable", "999"],
            "no scheduled job 999; see `kick schedule list`",
        ),
        (
            &["schedule", "remove", "../jobs"],
            "is not a scheduled job id",
        ),
    ];
    for (parts, want) in cases {
        let r = emu.kick(parts).await;
        assert_eq!(r.code, 1, "{parts:?}: {r:?}");
        assert!(r.stderr.contains(want), "{parts:?}: {r:?}");
    }
    let r = emu.kick(&["schedule", "remove", "999"]).await;
    assert!(
        r.stderr
            .contains("no scheduled job 999; see `kick schedule list`"),
        "{r:?}"
    );
    // Nothing was scheduled or run by the refused commands.
    let list = emu.kick(&["schedule", "list", "--format", "json"]).await;
    assert_eq!(list.json(), serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_list_table() {
    let emu = emu().await;
    add(
        &emu,
        &[
            "agent",
            "--nodes",
            NODE,
            "--at",
            &in_secs(600),
            "--every",
            "1h",
            "--description",
            "hourly",
        ],
    )
    .await;
    let once = add(
        &emu,
        &[
            "schedule",
            "add",
            "task",
            "fixture::echo",
            "--nodes",
            NODE,
            "--at",
            &in_secs(1200),
        ],
    )
    .await;
    let off = emu.kick(&["schedule", "disable", &once]).await;
    assert_eq!(off.code, 0, "{off:?}");
    let r = emu.kick(&["schedule", "list"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
        (r"(?m)^\d+ +", "[ID]   "),
    ]}, {
        insta::assert_snapshot!("schedule_list", r.stdout);
    });
}
