use orchestrator_types::command::StopResponse;
use orchestrator_types::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every key of `original` that the type models must survive a round trip
/// with the same JSON type (string stays string, number stays number).
fn assert_same_json_types(original: &Value, reserialised: &Value, path: &str) {
    match (original, reserialised) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                if let Some(vb) = b.get(k) {
                    assert_same_json_types(va, vb, &format!("{path}.{k}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "array length at {path}");
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                assert_same_json_types(va, vb, &format!("{path}[{i}]"));
            }
        }
        (a, b) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "JSON type changed at {path}: {a} became {b}"
        ),
    }
}

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str) -> T {
    let text = fixture(name);
    let original: Value = serde_json::from_str(&text).unwrap();
    let parsed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = serde_json::to_value(&parsed).unwrap();
    assert_same_json_types(&original, &again, name);
    parsed
}

#[test]
fn task_job_with_string_name_and_status_history() {
    let job: Job = roundtrip("job-task.json");
    assert_eq!(job.name, "1");
    assert_eq!(job.state, JobState::Finished);
    assert!(job.state.is_terminal());
    assert_eq!(job.task(), Some("package"));
    assert!(job.noop());
    assert_eq!(job.environment_name(), Some("production"));
    assert_eq!(job.owner.login, "admin");
    let status = job.status.as_ref().unwrap();
    assert_eq!(status.len(), 3);
    assert_eq!(status[0].state, JobState::Ready);
    assert_eq!(job.node_states.as_ref().unwrap()[&NodeState::Errored], 1);
}

#[test]
fn nodes_with_raw_output_and_pagination() {
    let list: NodeList = roundtrip("nodes-raw-output.json");
    let node = &list.items[0];
    assert_eq!(node.name, "linux.vm");
    assert_eq!(node.state, NodeState::Finished);
    assert_eq!(node.duration, Some(0.105));
    assert_eq!(node.latest_event_id, Some(20));
    assert!(
        node.result.as_ref().unwrap()["_output"]
            .as_str()
            .unwrap()
            .contains("wtmp")
    );
    assert!(node.error().is_none());
    assert_eq!(list.next_events.as_ref().unwrap().start(), Some(21));
    assert_eq!(list.pagination.as_ref().unwrap().total, Some(1));
}

#[test]
fn nodes_with_json_results_and_no_pagination() {
    let list: NodeList = roundtrip("nodes-json-result.json");
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.items[1].details["message"], "Message of latest event");
    assert_eq!(
        list.items[0].result.as_ref().unwrap()["status"],
        "out of date"
    );
    assert!(list.pagination.is_none());
    assert_eq!(list.next_events.unwrap().start(), Some(13));
}

#[test]
fn errored_node_without_timestamps() {
    let list: NodeList = roundtrip("nodes-errored.json");
    let node = &list.items[0];
    assert_eq!(node.state, NodeState::Errored);
    assert!(node.start_timestamp.is_none() && node.duration.is_none());
    assert!(
        node.details["message"]
            .as_str()
            .unwrap()
            .contains("not connected")
    );
}

#[test]
fn events_cursor_from_url_when_event_key_is_absent() {
    let list: EventList = roundtrip("events-deploy.json");
    assert_eq!(list.items.len(), 6);
    assert_eq!(list.items[0].event_type, EventType::NodeRunning);
    assert_eq!(list.items[0].number(), 1);
    assert_eq!(
        list.items[5].details.node.as_deref(),
        Some("orchestrator.example.lan")
    );
    assert_eq!(list.items[5].details.detail["metrics"]["out_of_sync"], 3);
    assert_eq!(list.next_events.unwrap().start(), Some(7));
}

#[test]
fn error_bodies_with_and_without_details() {
    let e: ApiError = roundtrip("error-empty-target.json");
    assert_eq!(e.kind, error::kind::EMPTY_TARGET);
    assert_eq!(e.details.unwrap()["target"], "nodes");
    let e: ApiError = roundtrip("error-token-expired.json");
    assert!(e.is_auth());
    assert!(e.details.is_none());
    let e: ApiError = roundtrip("error-unknown-environment.json");
    assert_eq!(e.kind, error::kind::UNKNOWN_ENVIRONMENT);
    let e: ApiError = roundtrip("error-query.json");
    assert!(e.msg.starts_with("PuppetDB query failed"));
}

#[test]
fn command_responses() {
    let created: JobCreated = roundtrip("command-task-created.json");
    assert_eq!(created.job.name, "1234");
    let stop: StopResponse = roundtrip("command-stop.json");
    assert_eq!(stop.job.nodes["running"], 8);
}

#[test]
fn numeric_names_and_ids_are_accepted() {
    let stop: StopRequest = serde_json::from_str(r#"{"job": 42, "force": true}"#).unwrap();
    assert_eq!(stop.job, "42");
    let ev: Event = serde_json::from_str(r#"{"id": 7, "type": "node_teleported"}"#).unwrap();
    assert_eq!(ev.id, "7");
    assert_eq!(ev.event_type, EventType::Unknown);
    let node: JobNode =
        serde_json::from_str(r#"{"name":"a","state":"hibernating","duration":"1.5"}"#).unwrap();
    assert_eq!(node.state, NodeState::Unknown);
    assert_eq!(node.duration, Some(1.5));
}

#[test]
fn job_duration_is_written_as_a_string() {
    let mut job: Job = serde_json::from_str(&fixture("job-task.json")).unwrap();
    job.duration = Some(256.0);
    let v = serde_json::to_value(&job).unwrap();
    assert_eq!(v["duration"], "256.0");
}

#[test]
fn report_accepts_items_or_report() {
    let a: JobReport =
        serde_json::from_str(r#"{"report":[{"node":"a","state":"finished","events":[]}]}"#)
            .unwrap();
    let b: JobReport =
        serde_json::from_str(r#"{"items":[{"node":"a","state":"finished","events":[]}]}"#).unwrap();
    assert_eq!(a, b);
}

#[test]
fn scope_counts_kinds() {
    assert_eq!(Scope::nodes(["a", "b"]).kinds_set(), 1);
    let s: Scope = serde_json::from_str(r#"{"nodes":["a"],"node_group":"x"}"#).unwrap();
    assert_eq!(s.kinds_set(), 2);
}
