//! The exact result documents, as the orchestrator and kick see them, with
//! the per-test temp dir and the duration redacted.

use crate::harness::{
    FakeHolder, Node, Outcome, SUMMARY_NOOP, assert_result_schema, report_fixture, write_report_sh,
    write_summary_sh,
};

/// The result with the node's temp dir replaced by `[node]`, the
/// duration by `[duration]` and PIDs by `[pid]`.
fn redacted(node: &Node, o: &Outcome, pids: &[u32]) -> serde_json::Value {
    if o.json.get("_output").is_some() {
        assert_result_schema(&o.json);
    }
    let mut text = o
        .stdout
        .replace(&node.dir.path().display().to_string(), "[node]");
    for pid in pids {
        text = text.replace(&format!("PID {pid}"), "PID [pid]");
    }
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    if let Some(pid) = v
        .pointer_mut("/_error/details/pid")
        .filter(|_| !pids.is_empty())
    {
        *pid = "[pid]".into();
    }
    if v.get("duration").is_some() {
        v["duration"] = "[duration]".into();
    }
    if let Some(held) = v.pointer_mut("/_error/details/held_for") {
        let secs = held.to_string();
        *held = "[seconds]".into();
        let msg = v["_error"]["msg"].as_str().unwrap_or_default();
        v["_error"]["msg"] = msg
            .replace(&format!(" for {secs}s;"), " for [seconds]s;")
            .into();
    }
    v
}

#[test]
fn noop_run_with_pending_changes() {
    let node = Node::new("");
    node.set_fake(&format!(
        "echo 'Notice: /Stage[main]/Main/Notify[x]/message: current_value absent (noop)'\n{}\n{}\nexit 0",
        write_summary_sh(&node, SUMMARY_NOOP),
        write_report_sh(&node, &report_fixture("puppet-7.23-noop.yaml"))
    ));
    let o = node.run(r#"{"noop": true, "environment": "production"}"#);
    insta::assert_json_snapshot!(redacted(&node, &o, &[]));
}

#[test]
fn resource_failures() {
    let node = Node::new("");
    node.set_fake(&format!(
        "echo 'Error: /Stage[main]/Main/Exec[x]/returns: change failed' >&2\n{}\nexit 4",
        write_report_sh(&node, &report_fixture("puppet-7.23-failmixed.yaml"))
    ));
    let o = node.run("{}");
    insta::assert_json_snapshot!(redacted(&node, &o, &[]));
}

#[test]
fn agent_locked() {
    let node = Node::new("exit 0");
    let holder = FakeHolder::start(node.dir.path(), "60");
    std::fs::write(node.catalog_lock(), holder.pid().to_string()).unwrap();
    let o = node.run(r#"{"wait_for_lock": 0}"#);
    insta::assert_json_snapshot!(redacted(&node, &o, &[holder.pid()]));
}

#[test]
fn invalid_params() {
    let node = Node::new("exit 0");
    let o = node.run(r#"{"puppet_master": "pm; reboot"}"#);
    insta::assert_json_snapshot!(redacted(&node, &o, &[]));
}

#[test]
fn unlock_report() {
    let node = Node::new("exit 0");
    std::fs::write(node.catalog_lock(), "999999999").unwrap();
    std::fs::write(node.disabled_lock(), r#"{"disabled_message":"maint"}"#).unwrap();
    let o = node.run(r#"{"_task": "psick::puppet_unlock"}"#);
    let mut v = redacted(&node, &o, &[]);
    for lock in ["catalog_run_lock", "disabled_lock"] {
        v[lock]["age_seconds"] = "[seconds]".into();
    }
    insta::assert_json_snapshot!(v);
}
