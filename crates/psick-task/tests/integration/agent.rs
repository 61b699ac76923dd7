//! Exit codes, argv, noop, summaries and output of psick::puppet_agent.

use crate::harness::{Node, SUMMARY_NOOP, write_summary_sh};

const FIXED: [&str; 8] = [
    "agent",
    "--onetime",
    "--no-daemonize",
    "--verbose",
    "--no-usecacheonfailure",
    "--no-splay",
    "--detailed-exitcodes",
    "--color=false",
];

#[test]
fn argv_is_exact_and_reported_as_command() {
    let node = Node::new("exit 0");
    let o = node.run(
        r#"{"noop": false, "puppet_master": "pm.example.com:8141", "environment": "dev_2",
            "tags": ["a", "b::c"], "skip_tags": "x", "debug": true, "trace": true,
            "evaltrace": true, "verbose": true, "connect_timeout": 5, "timeout": 60,
            "wait_for_lock": 0, "_task": "psick::puppet_agent", "_installdir": "/tmp"}"#,
    );
    assert_eq!(o.code, 0, "{}", o.json);
    let mut expected: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    expected.extend([
        format!("--confdir={}", node.conf.display()),
        "--no-noop".into(),
        "--server=pm.example.com".into(),
        "--serverport=8141".into(),
        "--environment=dev_2".into(),
        "--tags=a,b::c".into(),
        "--skip_tags=x".into(),
        "--debug".into(),
        "--trace".into(),
        "--evaltrace".into(),
        "--http_connect_timeout=5".into(),
    ]);
    assert_eq!(node.argv().unwrap(), expected);
    let mut command = vec![node.bin.display().to_string()];
    command.extend(expected);
    assert_eq!(o.json["command"], serde_json::json!(command));
    assert_eq!(o.json["server"], "pm.example.com:8141");
    assert_eq!(o.json["environment"], "dev_2");
    assert_eq!(o.json["noop"], false);
}

#[test]
fn minimal_argv_and_configured_server() {
    let node = Node::new("exit 0");
    let o = node.run("{}");
    assert_eq!(o.code, 0);
    let mut expected: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    expected.push(format!("--confdir={}", node.conf.display()));
    assert_eq!(node.argv().unwrap(), expected);
    assert_eq!(o.json["server"], "main.example.com");
    assert_eq!(o.json["environment"], "production");
    assert_eq!(o.json["exitcode"], 0);
    assert_eq!(o.json["status"], "unchanged");
    assert!(o.json["duration"].as_f64().unwrap() >= 0.0);
}

#[test]
fn exit_0_is_unchanged_and_2_is_changed() {
    let node = Node::new("echo 'Notice: Applied catalog in 0.01 seconds'; exit 0");
    let o = node.run("{}");
    assert_eq!((o.code, o.json["status"].as_str()), (0, Some("unchanged")));
    assert_eq!(o.output(), "Notice: Applied catalog in 0.01 seconds\n");
    node.set_fake("exit 2");
    let o = node.run("{}");
    assert_eq!((o.code, o.json["status"].as_str()), (0, Some("changed")));
    assert_eq!(o.json["exitcode"], 2);
}

#[test]
fn exit_1_is_run_failed_with_the_first_error() {
    let node = Node::new(
        "echo 'Info: Using environment production'\n\
         echo 'Error: Could not retrieve catalog from remote server: boom' >&2\n\
         echo 'Error: Could not send report' >&2\nexit 1",
    );
    let o = node.run("{}");
    assert_eq!(o.code, 1);
    assert_eq!(o.kind(), "psick/run-failed");
    assert_eq!(o.json["status"], "failed");
    assert_eq!(o.json["exitcode"], 1);
    assert_eq!(o.json["_error"]["details"]["exitcode"], 1);
    assert!(
        o.msg().contains("Could not retrieve catalog"),
        "{}",
        o.msg()
    );
}

#[test]
fn exit_4_and_6_are_resource_failures() {
    for rc in [4, 6] {
        let node = Node::new("");
        let summary = SUMMARY_NOOP.replace("failed: 0\n  failed_to", "failed: 1\n  failed_to");
        node.set_fake(&format!("{}\nexit {rc}", write_summary_sh(&node, &summary)));
        let o = node.run("{}");
        assert_eq!(o.code, 1);
        assert_eq!(o.kind(), "psick/resource-failures");
        assert_eq!(o.json["exitcode"], rc);
        assert_eq!(o.json["_error"]["details"]["exitcode"], rc);
        assert_eq!(o.json["_error"]["details"]["failed"], 1);
        assert_eq!(o.json["resources"]["failed"], 1);
    }
}

#[test]
fn unexpected_exit_codes_and_signals_are_run_failed() {
    let node = Node::new("exit 3");
    let o = node.run("{}");
    assert_eq!(
        (o.kind(), o.json["exitcode"].as_i64()),
        ("psick/run-failed", Some(3))
    );
    node.set_fake("kill -KILL $$");
    let o = node.run("{}");
    assert_eq!(o.kind(), "psick/run-failed");
    assert!(o.json["exitcode"].is_null());
    assert!(o.msg().contains("killed by signal 9"), "{}", o.msg());
}

#[test]
fn noop_with_pending_changes_is_changed_with_the_summary() {
    let node = Node::new("");
    node.set_fake(&format!(
        "{}\nexit 0",
        write_summary_sh(&node, SUMMARY_NOOP)
    ));
    let o = node.run(r#"{"noop": true}"#);
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["status"], "changed");
    assert_eq!(o.json["noop"], true);
    assert_eq!(
        o.json["resources"],
        serde_json::json!({"total": 9, "changed": 0, "failed": 0, "out_of_sync": 2,
                           "skipped": 0, "noop_pending": 2})
    );
    assert_eq!(o.json["config_version"], "1795460334");
    assert_eq!(o.json["puppet_version"], "7.23.0");
    // The environment the run converged to wins.
    assert_eq!(o.json["environment"], "staging");
}

#[test]
fn noop_from_puppet_conf_counts_as_noop() {
    let node = Node::new("");
    let conf = node.conf.join("puppet.conf");
    let text = std::fs::read_to_string(&conf).unwrap() + "[agent]\nnoop = true\n";
    std::fs::write(&conf, text).unwrap();
    let summary = SUMMARY_NOOP.replace("  noop: 2\n", "");
    node.set_fake(&format!("{}\nexit 0", write_summary_sh(&node, &summary)));
    let o = node.run("{}");
    assert_eq!(o.json["noop"], true);
    // Without events.noop, out_of_sync is what a noop run has pending.
    assert_eq!(o.json["resources"]["noop_pending"], 2);
    assert_eq!(o.json["status"], "changed");
    assert!(!node.argv().unwrap().iter().any(|a| a.contains("noop")));
}

#[test]
fn meta_noop_means_noop() {
    let node = Node::new("exit 0");
    let o = node.run(r#"{"_noop": true}"#);
    assert_eq!(o.code, 0);
    assert_eq!(o.json["noop"], true);
    assert!(node.argv().unwrap().contains(&"--noop".to_owned()));
    // Nothing pending (no summary written): unchanged.
    assert_eq!(o.json["status"], "unchanged");
}

#[test]
fn a_stale_summary_is_not_reported() {
    let node = Node::new("exit 2");
    std::fs::write(node.lastrunfile(), SUMMARY_NOOP).unwrap();
    let o = node.run("{}");
    assert_eq!(o.json["status"], "changed");
    assert!(o.json["resources"].is_null());
    assert!(o.json["config_version"].is_null());
    assert!(o.json["puppet_version"].is_null());
}

#[test]
fn a_summary_rewritten_in_place_is_reported() {
    let node = Node::new("");
    std::fs::write(node.lastrunfile(), "old: true\n").unwrap();
    let src = node.path("s.yaml");
    std::fs::write(&src, SUMMARY_NOOP).unwrap();
    node.set_fake(&format!(
        "sleep 0.05; cat '{}' > '{}'; exit 0",
        src.display(),
        node.lastrunfile().display()
    ));
    let o = node.run(r#"{"noop": true}"#);
    assert_eq!(o.json["resources"]["total"], 9);
}

#[test]
fn output_is_interleaved_and_ansi_free() {
    let node = Node::new(
        "printf '\\033[0;32mInfo: one\\033[0m\\n'\n\
         printf '\\033[1;31mError: two\\033[0m\\n' >&2\n\
         printf '\\033[mNotice: three\\tcol\\033[0m\\n'\nexit 0",
    );
    let o = node.run("{}");
    assert_eq!(o.output(), "Info: one\nError: two\nNotice: three\tcol\n");
    assert!(!o.stdout.contains("\\u001b"));
}
