//! The `--format json` document against the committed JSON Schema.

use serde_json::Value;

pub fn schema() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/kick-output.schema.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Panics with every violation when `doc` does not match the schema.
pub fn assert_valid(doc: &Value) {
    let schema = schema();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}\n{doc:#}");
}

/// The schema must reject what kick must never print, or the checks above
/// prove nothing.
#[test]
fn the_schema_rejects_malformed_documents() {
    let schema = schema();
    let v = jsonschema::validator_for(&schema).unwrap();
    let good = serde_json::json!({
        "job": {"name": "1", "state": "finished", "environment": "production", "task": null, "noop": false, "duration": 1.0},
        "nodes": [{"name": "a", "state": "finished", "outcome": "unchanged", "duration": null, "exitcode": null,
                   "resources": null, "output": "plain", "error": null,
                   "changes": [{"resource": "File[/etc/motd]", "type": "File", "title": "/etc/motd",
                                "property": "content", "previous": "{md5}a", "desired": "{md5}b",
                                "message": "would change", "status": "noop", "corrective": true}],
                   "changes_truncated": 0, "result": {}}],
        "drift": [{"resource": "File[/etc/motd]", "property": "content", "desired": "{md5}b",
                   "status": "noop", "message": "would change", "nodes": ["a"]}],
        "summary": {"total": 1, "unchanged": 1, "changed": 0, "failed": 0, "errored": 0, "skipped": 0, "stopped": 0},
        "exit_code": 0
    });
    assert!(v.is_valid(&good));
    let mut ansi = good.clone();
    ansi["nodes"][0]["output"] = "\u{1b}[0;32mcoloured".into();
    assert!(!v.is_valid(&ansi));
    let mut bad_outcome = good.clone();
    bad_outcome["nodes"][0]["outcome"] = "success".into();
    assert!(!v.is_valid(&bad_outcome));
    let mut bad_code = good.clone();
    bad_code["exit_code"] = 1.into();
    assert!(!v.is_valid(&bad_code));
    let mut no_drift = good.clone();
    no_drift.as_object_mut().unwrap().remove("drift");
    assert!(!v.is_valid(&no_drift));
    let mut empty_group = good.clone();
    empty_group["drift"][0]["nodes"] = serde_json::json!([]);
    assert!(!v.is_valid(&empty_group));
    let mut bad_status = good.clone();
    bad_status["nodes"][0]["changes"][0]["status"] = "changed".into();
    assert!(!v.is_valid(&bad_status));
    let mut no_changes = good.clone();
    no_changes["nodes"][0]
        .as_object_mut()
        .unwrap()
        .remove("changes");
    assert!(!v.is_valid(&no_changes));
}

/// The schema's members are exactly what kick's types serialize, and every
/// outcome kick has is in its enum: the hand-kept schema and the types
/// cannot drift apart unnoticed.
#[test]
fn the_schema_names_exactly_the_members_of_kicks_types() {
    use kick::outcome::{NodeReport, Outcome, Reading};
    use kick::summary::Summary;
    use kick::watch::JobInfo;
    use std::collections::BTreeSet;

    let schema = schema();
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let job: orchestrator_types::Job = serde_json::from_value(serde_json::json!({
        "id": "u", "name": "1", "state": "finished", "type": "task",
        "options": {"task": "t::x"}, "node_count": 1
    }))
    .unwrap();
    let info = serde_json::to_value(JobInfo::from_job(&job)).unwrap();
    assert_eq!(
        keys(&info),
        keys(&schema["properties"]["job"]["properties"])
    );
    let node = NodeReport::new(Reading {
        name: "a".into(),
        state: orchestrator_types::NodeState::Finished,
        duration: None,
        payload: None,
        message: None,
        job_noop: false,
    });
    let node = serde_json::to_value(node).unwrap();
    assert_eq!(keys(&node), keys(&schema["$defs"]["node"]["properties"]));
    let summary = serde_json::to_value(Summary {
        running: 1,
        ..Summary::default()
    })
    .unwrap();
    assert_eq!(
        keys(&summary),
        keys(&schema["properties"]["summary"]["properties"])
    );
    let outcomes: BTreeSet<String> = Outcome::ALL.iter().map(|o| o.as_str().to_owned()).collect();
    let in_schema: BTreeSet<String> = schema["$defs"]["node"]["properties"]["outcome"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, in_schema);
}
