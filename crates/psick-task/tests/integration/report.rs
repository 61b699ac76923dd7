//! The result's `changes`, from the report the run wrote, and
//! `report_error` whenever that report cannot be used.

use crate::harness::{
    Node, SUMMARY_NOOP, assert_result_schema, report_fixture, write_report_sh, write_summary_sh,
};

/// A node whose fake puppet writes the noop summary and `report`, then
/// exits `rc`.
fn node_writing(report: &str, rc: i32) -> Node {
    let node = Node::new("");
    node.set_fake(&format!(
        "{}\n{}\nexit {rc}",
        write_summary_sh(&node, SUMMARY_NOOP),
        write_report_sh(&node, report)
    ));
    node
}

#[test]
fn a_noop_run_lists_its_pending_changes_from_the_report() {
    let node = node_writing(&report_fixture("puppet-7.23-noop.yaml"), 0);
    let o = node.run(r#"{"noop": true}"#);
    assert_eq!(o.code, 0, "{}", o.json);
    assert_result_schema(&o.json);
    assert_eq!(o.json["status"], "changed");
    assert_eq!(
        o.json["transaction_uuid"],
        "30daa2f6-30a0-4568-8e0c-48817dcb21bc"
    );
    let changes = o.json["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3);
    assert_eq!(
        changes[1],
        serde_json::json!({
            "resource": "Notify[hello from kick-e2e on node1.example.com]",
            "type": "Notify",
            "title": "hello from kick-e2e on node1.example.com",
            "property": "message",
            "previous": "absent",
            "desired": "hello from kick-e2e on node1.example.com",
            "message": "current_value 'absent', should be 'hello from kick-e2e on node1.example.com' (noop)",
            "status": "noop",
            "corrective": false
        })
    );
    assert_eq!(
        o.json["corrective_change"],
        serde_json::json!({"corrective": 0, "intentional": 3})
    );
    assert!(o.json.get("changes_truncated").is_none());
    assert!(o.json.get("report_error").is_none());
}

#[test]
fn changes_limit_caps_the_list_and_counts_the_rest() {
    let node = node_writing(&report_fixture("puppet-7.23-noop.yaml"), 0);
    let o = node.run(r#"{"changes_limit": 1}"#);
    assert_result_schema(&o.json);
    assert_eq!(o.json["changes"].as_array().unwrap().len(), 1);
    assert_eq!(o.json["changes_truncated"], 2);
    let o = node.run(r#"{"changes_limit": "0"}"#);
    assert!(o.json.get("changes").is_none(), "{}", o.json);
    assert_eq!(o.json["changes_truncated"], 3);
    let o = node.run(r#"{"changes_limit": 2001}"#);
    assert_result_schema(&o.json);
    assert_eq!(o.kind(), "psick/invalid-params");
    assert!(o.msg().contains("`changes_limit`"), "{}", o.msg());
}

#[test]
fn a_report_from_an_older_run_is_not_read() {
    let node = Node::new("");
    std::fs::write(
        node.lastrunreport(),
        report_fixture("puppet-7.23-noop.yaml"),
    )
    .unwrap();
    node.set_fake(&format!(
        "{}\nexit 2",
        write_summary_sh(&node, SUMMARY_NOOP)
    ));
    let o = node.run("{}");
    assert_result_schema(&o.json);
    assert_eq!((o.code, o.json["status"].as_str()), (0, Some("changed")));
    assert!(o.json.get("changes").is_none(), "{}", o.json);
    assert!(o.json.get("transaction_uuid").is_none());
    let why = o.json["report_error"].as_str().unwrap();
    assert!(why.contains("from an earlier run"), "{why}");
    assert!(
        why.contains(node.lastrunreport().to_str().unwrap()),
        "{why}"
    );
}

#[test]
fn no_report_at_all_is_said_so() {
    let node = Node::new("exit 0");
    let o = node.run("{}");
    assert_eq!(o.code, 0);
    let why = o.json["report_error"].as_str().unwrap();
    assert!(why.contains("wrote no report"), "{why}");
}

#[test]
fn a_truncated_or_garbage_report_never_fails_the_run() {
    let real = report_fixture("puppet-7.23-noop.yaml");
    for (report, expect) in [
        (&real[..real.len() / 2], "cut short"),
        ("\u{0}\u{1}binary junk", "cut short"),
        ("- just\n- a list\n", "not a Puppet run report"),
    ] {
        let node = node_writing(report, 0);
        let o = node.run(r#"{"noop": true}"#);
        assert_eq!(o.code, 0, "{}", o.json);
        assert_eq!(o.json["status"], "changed");
        assert_eq!(o.json["resources"]["noop_pending"], 2);
        assert!(o.json.get("changes").is_none());
        let why = o.json["report_error"].as_str().unwrap();
        assert!(why.contains(expect), "{why}");
    }
}

#[test]
fn a_failed_run_still_lists_its_changes() {
    let node = node_writing(&report_fixture("puppet-7.23-failmixed.yaml"), 6);
    let o = node.run("{}");
    assert_result_schema(&o.json);
    assert_eq!(o.kind(), "psick/resource-failures");
    let statuses: Vec<&str> = o.json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["success", "failure"]);
}
