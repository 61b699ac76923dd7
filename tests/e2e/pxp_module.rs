//! The task binary as pxp-agent's `pxp-module-puppet`: the `run` action doing real agent runs
//! against the real puppetserver, non-blocking (output_files) and blocking.

use kick_e2e::{ModuleRun, SimNode, Stack};
use serde_json::{Value, json};

fn assert_run_result(v: &Value, status: &str) {
    assert_eq!(v["status"], json!(status), "{v}");
    assert_eq!(v["environment"], json!("idem"), "{v}");
    assert_eq!(v["exitcode"], json!(0), "{v}");
    assert_eq!(v["version"], json!(1), "{v}");
    let uuid = v["transaction_uuid"].as_str().unwrap_or_default();
    assert_eq!(uuid.len(), 36, "a real transaction uuid: {v}");
    assert!(
        v["time"].as_str().is_some_and(|t| t.starts_with("20")),
        "{v}"
    );
    assert!(v["metrics"]["total"].as_u64().is_some_and(|t| t > 0), "{v}");
    assert!(
        v.get("error").is_none() && v.get("error_type").is_none(),
        "{v}"
    );
}

#[test]
fn module_run_does_a_real_agent_run_and_writes_the_output_files() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-pxp");
    node.bootstrap();
    let spool = tempfile::tempdir().expect("spool dir");
    let file = |name: &str| spool.path().join(name);
    let request = json!({
        "input": {"flags": ["--environment", "idem"], "env": [], "job": "7"},
        "configuration": {"puppet_bin": Stack::PUPPET_BIN},
        "output_files": {"stdout": file("stdout"), "stderr": file("stderr"), "exitcode": file("exitcode")}
    });
    let run = ModuleRun::run(
        &kick_e2e::task_bin(),
        &node.task_env(),
        "run",
        &request.to_string(),
    );
    assert!(run.exit.success(), "{run:?}");
    assert!(run.stdout.is_empty(), "the results go to the file: {run:?}");
    assert_eq!(std::fs::read_to_string(file("exitcode")).unwrap(), "0\n");
    let text = std::fs::read_to_string(file("stdout")).unwrap();
    let v: Value = serde_json::from_str(&text).expect("results file is JSON");
    assert_run_result(&v, "changed");
    let log = std::fs::read_to_string(file("stderr")).unwrap();
    assert!(log.contains("Applied catalog"), "puppet's output: {log}");
    assert!(node.managed_dir().join("idem.txt").is_file());

    // Blocking: the results on stdout; the node is converged now.
    let request = json!({"input": {"flags": ["--environment", "idem"]}});
    let again = ModuleRun::run(
        &kick_e2e::task_bin(),
        &node.task_env(),
        "run",
        &request.to_string(),
    );
    assert!(again.exit.success(), "{again:?}");
    assert_run_result(&again.json(), "unchanged");
}

#[test]
fn module_run_refuses_a_flag_outside_the_whitelist_and_help_never_runs_puppet() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-pxp-bad");
    let request = json!({"input": {"flags": ["--server_list", "evil.example.com"]}});
    let run = ModuleRun::run(
        &kick_e2e::task_bin(),
        &node.task_env(),
        "run",
        &request.to_string(),
    );
    assert_eq!(run.exit.code(), Some(1), "{run:?}");
    assert_eq!(run.json()["error_type"], json!("invalid_json"));
    let help = ModuleRun::run(&kick_e2e::task_bin(), &node.task_env(), "--help", "");
    assert_eq!(help.exit.code(), Some(2), "{help:?}");
    assert!(help.stderr.contains("usage"), "{help:?}");
    // Neither started puppet for this node: it never asked for a certificate.
    assert!(!node.cert_pem().exists());
    assert!(!node.last_run_summary().exists());
}

#[test]
fn module_run_takes_server_unless_the_configuration_sets_allow_server_false() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-pxp-server");
    let port = Stack::PORT.to_string();
    let flags = [
        "--environment",
        "idem",
        "--server",
        Stack::SERVER,
        "--serverport",
        &port,
    ];
    let request = |configuration: Value| {
        json!({"input": {"flags": flags, "job": "9"}, "configuration": configuration}).to_string()
    };

    // allow_server false: refused as other flags off the whitelist are, puppet not started.
    let refused = ModuleRun::run(
        &kick_e2e::task_bin(),
        &node.task_env(),
        "run",
        &request(json!({"puppet_bin": Stack::PUPPET_BIN, "allow_server": false})),
    );
    assert_eq!(refused.exit.code(), Some(1), "{refused:?}");
    let v = refused.json();
    assert_eq!(v["error_type"], json!("invalid_json"), "{v}");
    assert_eq!(v["exitcode"], json!(-1), "{v}");
    assert_eq!(
        v["error"],
        json!(
            "The json received on STDIN included a non-permitted flag: --server \
             (allow_server is false in the module configuration)"
        )
    );
    assert!(
        !node.cert_pem().exists(),
        "puppet ran for the refused request"
    );
    assert!(!node.last_run_summary().exists());

    // The default (and allow_server true): a real run against the server the flags name.
    node.bootstrap();
    for configuration in [
        json!({"puppet_bin": Stack::PUPPET_BIN}),
        json!({"puppet_bin": Stack::PUPPET_BIN, "allow_server": true}),
    ] {
        let run = ModuleRun::run(
            &kick_e2e::task_bin(),
            &node.task_env(),
            "run",
            &request(configuration.clone()),
        );
        assert!(run.exit.success(), "{configuration}: {run:?}");
        let v = run.json();
        assert_eq!(v["environment"], json!("idem"), "{v}");
        assert_eq!(v["exitcode"], json!(0), "{v}");
        assert!(v.get("error_type").is_none(), "{v}");
    }
}
