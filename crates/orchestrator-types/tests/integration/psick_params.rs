//! The typed `psick::puppet_agent` parameters and `tasks/puppet_agent.json`
//! (and the test modules' copies of it) say the same thing.

use orchestrator_types::psick::params::{AgentParams, Ordering, PARAMS};
use serde_json::{Map, Value, json};

fn read_json(relative: &str) -> Value {
    let path = format!("{}/../../{relative}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `parameters` object the typed definition describes.
fn expected_parameters() -> Map<String, Value> {
    PARAMS
        .iter()
        .map(|p| {
            (
                p.name.to_owned(),
                json!({"description": p.description, "type": p.kind.puppet_type()}),
            )
        })
        .collect()
}

fn parameters(metadata: &Value) -> &Map<String, Value> {
    metadata["parameters"]
        .as_object()
        .expect("metadata has a parameters object")
}

#[test]
fn tasks_puppet_agent_json_declares_exactly_the_typed_parameters() {
    let metadata = read_json("tasks/puppet_agent.json");
    let declared = parameters(&metadata);
    let expected = expected_parameters();
    assert_eq!(
        declared,
        &expected,
        "tasks/puppet_agent.json's parameters differ from orchestrator_types::psick::params::PARAMS; \
         the typed definition's parameters, in order:\n{}",
        serde_json::to_string_pretty(&expected).unwrap()
    );
}

#[test]
fn the_kick_test_module_copy_declares_the_same_parameters() {
    // kick's tests install this copy as the psick module; only its
    // description (a test double's) differs.
    let copy = read_json("crates/kick/tests/fixtures/modules/psick/tasks/puppet_agent.json");
    assert_eq!(parameters(&copy), &expected_parameters());
}

#[test]
fn the_orchestrator_test_module_copy_declares_typed_parameters_only() {
    // The orchestrator's fake task declares a subset; each must be a real
    // parameter of the same type.
    let copy =
        read_json("crates/orchestrator/tests/fixtures/modules/psick/tasks/puppet_agent.json");
    for (name, p) in parameters(&copy) {
        let spec = orchestrator_types::psick::params::param(name)
            .unwrap_or_else(|| panic!("the orchestrator's copy declares unknown parameter {name}"));
        assert_eq!(p["type"], spec.kind.puppet_type(), "{name}");
    }
}

#[test]
fn every_typed_field_is_a_declared_parameter_and_back() {
    let all = AgentParams {
        noop: Some(true),
        no_noop: Some(false),
        puppet_master: Some("puppet.example.com:8140".into()),
        environment: Some("production".into()),
        tags: Some(vec!["ntp".into()]),
        skip_tags: Some(vec!["ssh".into()]),
        verbose: Some(true),
        debug: Some(true),
        trace: Some(true),
        evaltrace: Some(true),
        timeout: Some(600),
        wait_for_lock: Some(0),
        connect_timeout: Some(5),
        http_connect_timeout: Some(5),
        http_keepalive_timeout: Some(0),
        http_read_timeout: Some(60),
        filetimeout: Some(15),
        ordering: Some(Ordering::Manifest),
        use_cached_catalog: Some(false),
        usecacheonfailure: Some(true),
        changes_limit: Some(100),
    };
    let sent = all.to_json();
    let fields: Vec<&str> = sent.keys().map(String::as_str).collect();
    let mut declared: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
    declared.sort_unstable();
    assert_eq!(fields, declared, "AgentParams fields vs PARAMS");
    assert_eq!(AgentParams::from_json(&sent).unwrap(), all);
    // The values each declared type accepts are the ones the field holds.
    let metadata = read_json("tasks/puppet_agent.json");
    for (name, value) in &sent {
        let ty = parameters(&metadata)[name]["type"].as_str().unwrap();
        let ok = match value {
            Value::Bool(_) => ty == "Optional[Boolean]",
            Value::Number(_) => ty.starts_with("Optional[Integer["),
            Value::Array(_) => ty.contains("Array[String[1]]"),
            Value::String(_) => ty == "Optional[String[1]]" || ty.starts_with("Optional[Enum["),
            _ => false,
        };
        assert!(ok, "{name}: {value} does not fit {ty}");
    }
}

#[test]
fn the_result_schema_in_tasks_puppet_agent_json_names_every_result_field() {
    use orchestrator_types::psick::*;
    let metadata = read_json("tasks/puppet_agent.json");
    let schema = &metadata["extensions"]["kick"]["result"];
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let change = Change {
        resource: "File[/x]".into(),
        resource_type: "File".into(),
        title: "/x".into(),
        property: Some("content".into()),
        previous: Some("a".into()),
        desired: Some("b".into()),
        message: "m".into(),
        status: ChangeStatus::Noop,
        corrective: true,
    };
    let full = PuppetAgentResult {
        status: RunStatus::Failed,
        noop: true,
        exitcode: Some(4),
        command: vec!["puppet".into()],
        server: Some("s".into()),
        environment: Some("e".into()),
        duration: 1.0,
        resources: Some(Resources::default()),
        config_version: Some("1".into()),
        puppet_version: Some("7.23.0".into()),
        output: String::new(),
        changes: vec![change.clone()],
        changes_truncated: 1,
        transaction_uuid: Some("u".into()),
        corrective_change: Some(CorrectiveCounts::default()),
        report_error: Some("r".into()),
        error: Some(TaskError {
            kind: kind::RESOURCE_FAILURES.into(),
            msg: "m".into(),
            details: json!({"exitcode": 4}),
        }),
    };
    let full = serde_json::to_value(&full).unwrap();
    assert_eq!(keys(&schema["properties"]), keys(&full), "result fields");
    assert_eq!(
        keys(&schema["$defs"]["change"]["properties"]),
        keys(&serde_json::to_value(&change).unwrap()),
        "change fields"
    );
    assert_eq!(
        keys(&schema["properties"]["resources"]["properties"]),
        keys(&full["resources"]),
        "resource counts"
    );
    // Every field a minimal result always carries is required.
    let minimal = serde_json::to_value(PuppetAgentResult {
        changes: vec![],
        changes_truncated: 0,
        transaction_uuid: None,
        corrective_change: None,
        report_error: None,
        error: None,
        ..serde_json::from_value(full).unwrap()
    })
    .unwrap();
    let mut required: Vec<String> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    required.sort();
    assert_eq!(required, keys(&minimal), "required fields");
}
