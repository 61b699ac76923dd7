//! The outcome rules and both ways of reading results.
use orchestrator_types::{EventType, JobNode};

use super::*;
use super::{needs_no_stripping, pre_serialize, prepare};
use raw::compact;

/// A report from a raw result, as `--format json` makes it.
fn from_raw_node(
    node: JobNode<RawResult>,
    noop: bool,
    keep: impl Fn(Outcome) -> bool,
) -> NodeReport {
    prepare(read_raw(node, noop, keep))
}

fn node(state: &str, result: Value, details: Value) -> JobNode {
    serde_json::from_value(json!({
        "name": "n1", "state": state, "result": result, "details": details, "duration": 1.5
    }))
    .unwrap()
}

/// `node` with its result read from the JSON text `text`, as the
/// client reads it.
fn raw_node(state: &str, text: &str, details: Value) -> JobNode<RawResult> {
    let mut n = node(state, Value::Null, details).map_result(|_: Option<Value>| None);
    n.result = serde_json::from_str(text).unwrap();
    n
}

/// The report's JSON from the raw result and from the parsed one.
fn both_ways(
    state: &str,
    result: &Value,
    details: Value,
    noop: bool,
    keep: fn(Outcome) -> bool,
) -> (NodeReport, Vec<u8>, Vec<u8>) {
    let raw = from_raw_node(
        raw_node(state, &result.to_string(), details.clone()),
        noop,
        keep,
    );
    let mut parsed =
        NodeReport::from_node_keeping(node(state, result.clone(), details), noop, keep);
    assert_eq!(raw.outcome, parsed.outcome, "{result}");
    pre_serialize(&mut parsed);
    let (a, b) = (raw.json.clone().unwrap(), parsed.json.unwrap());
    (raw, a, b)
}

fn member(json: &[u8], key: &str) -> Value {
    serde_json::from_slice::<Value>(json).unwrap()[key].clone()
}

#[test]
fn raw_results_give_the_same_reports_as_parsed_ones() {
    let cases = [
        (
            "finished",
            json!({"status": "changed", "noop": false, "exitcode": 2,
            "resources": {"total": 9, "changed": 2, "failed": 0, "out_of_sync": 2, "skipped": 0, "noop_pending": 0},
            "_output": "\u{1b}[0;32mNotice: applied\u{1b}[0m"}),
            json!({}),
            false,
        ),
        (
            "finished",
            json!({"status": "unchanged", "noop": true,
            "resources": {"total": 9, "noop_pending": 3}}),
            json!({}),
            false,
        ),
        (
            "finished",
            json!({"status": "unchanged",
            "metrics": {"total": 171, "noop": 3}}),
            json!({}),
            true,
        ),
        (
            "failed",
            json!({"status": "failed", "exitcode": 4,
            "_error": {"kind": "psick/resource-failures", "msg": "1 failed", "details": {"exitcode": 4}}}),
            json!({}),
            false,
        ),
        (
            "finished",
            json!({"_output": "hi\n", "duration": 3.25}),
            json!({}),
            false,
        ),
        (
            "finished",
            json!({"changed": true, "other": [1, {"x": "y"}]}),
            json!({}),
            false,
        ),
        (
            "finished",
            json!({"_error": null, "status": null, "noop": null}),
            json!({}),
            true,
        ),
        (
            "finished",
            json!({"_error": {"kind": "k", "msg": "m"}}),
            json!({}),
            false,
        ),
        (
            "failed",
            json!({"_error": {"kind": "puppetlabs.tasks/task-error", "msg": "x",
            "details": {"exit_code": 3}}}),
            json!({}),
            false,
        ),
        (
            "errored",
            json!({}),
            json!({"message": "n1 is not connected"}),
            false,
        ),
        ("stopped", json!({"_output": 5}), json!({}), false),
        (
            "finished",
            json!({"_output": {"lines": ["a"]}, "status": 7}),
            json!({}),
            false,
        ),
        // Not objects, or nothing: the general path.
        ("finished", json!("just text"), json!({}), false),
        ("finished", json!([1, 2]), json!({}), false),
        (
            "finished",
            json!([{"a": [1.5, null]}, "b"]),
            json!({}),
            false,
        ),
        ("finished", json!(-5), json!({}), false),
        ("finished", json!(true), json!({}), false),
        (
            "finished",
            Value::Null,
            json!({"status": "changed", "metrics": {"total": 1}}),
            false,
        ),
        ("errored", Value::Null, json!({"message": "gone"}), false),
    ];
    for (state, result, details, noop) in cases {
        for keep in [(|_| true) as fn(Outcome) -> bool, |_| false] {
            let (_, raw, parsed) = both_ways(state, &result, details.clone(), noop, keep);
            assert_eq!(
                String::from_utf8_lossy(&raw),
                String::from_utf8_lossy(&parsed),
                "{state} {result}"
            );
        }
    }
}

#[test]
fn ansi_free_output_is_copied_as_sent_and_other_output_cleaned() {
    // `\/` is an escape serde_json never writes: its presence shows the
    // token was copied.
    let r = from_raw_node(
        raw_node(
            "finished",
            r#"{"_output":"a\/b\n\"q\" \\u001b","x":1}"#,
            json!({}),
        ),
        false,
        |_| true,
    );
    let json = String::from_utf8(r.json.unwrap()).unwrap();
    assert!(json.contains(r#""output":"a\/b\n\"q\" \\u001b""#), "{json}");
    assert!(
        json.contains(r#""result":{"_output":"a\/b\n\"q\" \\u001b","x":1}"#),
        "{json}"
    );

    for (text, clean) in [
        (r#""\u001b[1;31mError:\u001B[0m x""#, "Error: x"),
        // However the stripper reads a C1 CSI, the same way.
        (r#""\u009b0mtail""#, &strip_ansi("\u{9b}0mtail")),
        ("\"Kněžice \\u001b[0m\"", "Kněžice "),
        ("\"Kněžice\"", "Kněžice"),
        (r#""\u00db\ud83d\ude00""#, "Û😀"),
    ] {
        let r = from_raw_node(
            raw_node("finished", &format!(r#"{{"_output":{text}}}"#), json!({})),
            false,
            |_| true,
        );
        assert_eq!(member(r.json.as_ref().unwrap(), "output"), clean, "{text}");
    }
}

#[test]
fn escape_checks_and_compaction_handle_odd_input() {
    assert!(needs_no_stripping(br#""plain \n\t\"\\ \u0041""#));
    // An escaped backslash before `u001b` is text, not an escape.
    assert!(needs_no_stripping(br#""\\u001b""#));
    assert!(needs_no_stripping(br#""\\\\u001b \u007f""#));
    for risky in [
        &br#""\u001b""#[..],
        br#""\u001B""#,
        br#""\u009b""#,
        br#""\u00DB""#,
        br#""\u12""#,
        br#""\u+7f0""#,
        br#""\\\u001b""#,
        b"\"\x1b\"",
        b"\"\xc4\x9b\"",
    ] {
        assert!(!needs_no_stripping(risky), "{risky:?}");
    }
    assert_eq!(compact(r#"{"a": "b c", "d": [1, 2]}"#), None);
    assert_eq!(
        compact("{\n  \"a\\\"\\\\\": \"x\\ny\",\n\t\"b\": [1,\r\n 2]\n}").as_deref(),
        Some(r#"{"a\"\\":"x\ny","b":[1,2]}"#)
    );
    // Truncated input does not panic.
    let _ = compact("{\n\"a");
    let _ = compact("{\n\"a\\");
}

#[test]
fn pretty_printed_results_stay_on_one_line() {
    let text = "{\n  \"_output\": \"done\\n\",\n  \"status\": \"changed\",\n  \"resources\": {\n    \"total\": 1\n  }\n}";
    let r = from_raw_node(raw_node("finished", text, json!({})), false, |_| true);
    assert_eq!(r.outcome, Outcome::Changed);
    let json = r.json.unwrap();
    assert!(!json.contains(&b'\n'));
    assert_eq!(
        member(&json, "result"),
        json!({"_output": "done\n", "status": "changed", "resources": {"total": 1}})
    );
    assert_eq!(member(&json, "output"), "done\n");
}

#[test]
fn results_the_lean_reading_refuses_take_the_general_path() {
    // Duplicate keys: the last one counts, as when parsed.
    let r = from_raw_node(
        raw_node(
            "finished",
            r#"{"status":"failed","status":"changed"}"#,
            json!({}),
        ),
        false,
        |_| true,
    );
    assert_eq!(r.outcome, Outcome::Changed);
    // A number no f64 holds: the result is dropped, nothing panics.
    let r = from_raw_node(
        raw_node("finished", r#"{"exitcode":1e999}"#, json!({})),
        false,
        |_| true,
    );
    assert_eq!(r.outcome, Outcome::Unchanged);
    assert!(r.json.is_some());
}

#[test]
fn ansi_is_stripped_and_plain_text_kept() {
    assert_eq!(strip_ansi("\u{1b}[1;31mError:\u{1b}[0m x\n"), "Error: x\n");
    assert_eq!(strip_ansi("plain\ttext\r\n"), "plain\ttext\r\n");
    // Text whose UTF-8 holds a 0x9b byte ("ě" is c4 9b) comes through
    // whole, with or without escapes elsewhere.
    assert_eq!(strip_ansi("Kněžice \u{1b}[0m"), "Kněžice ");
    assert_eq!(strip_ansi("Kněžice"), "Kněžice");
}

#[test]
fn whitespace_survives_stripping_in_coloured_output() {
    // A psick shell task's output under PE: Puppet's diff headers carry a
    // tab before the time stamp, and the lines may end in CR LF.
    let coloured = "\u{1b}[mNotice: /Stage[main]/Resolv/File[/etc/resolv.conf]/content: \r\n\
                    --- /etc/resolv.conf\t2018-07-04 09:12:01.000000000 +0000\r\n\
                    +++ /tmp/puppet-file20180704\t2018-07-04 09:14:22.000000000 +0000\r\n\
                    \u{1b}[0;32m+nameserver 10.0.0.2\u{1b}[0m\r\n";
    assert_eq!(
        strip_ansi(coloured),
        "Notice: /Stage[main]/Resolv/File[/etc/resolv.conf]/content: \r\n\
         --- /etc/resolv.conf\t2018-07-04 09:12:01.000000000 +0000\r\n\
         +++ /tmp/puppet-file20180704\t2018-07-04 09:14:22.000000000 +0000\r\n\
         +nameserver 10.0.0.2\r\n"
    );
}

#[test]
fn a_result_duration_beats_whole_second_event_timestamps() {
    let with = json!({"status": "changed", "duration": 7.64});
    let r = NodeReport::from_event(
        "n".into(),
        EventType::NodeFinished,
        &with,
        "",
        Some(9.0),
        false,
    );
    assert_eq!(r.duration, Some(7.64));
    let without = json!({"status": "changed"});
    let r = NodeReport::from_event(
        "n".into(),
        EventType::NodeFinished,
        &without,
        "",
        Some(9.0),
        false,
    );
    assert_eq!(r.duration, Some(9.0));
}

#[test]
fn outcome_discriminants_index_all() {
    for (i, o) in Outcome::ALL.iter().enumerate() {
        assert_eq!(*o as usize, i, "{o:?}");
    }
}

#[test]
fn output_is_kept_only_for_wanted_outcomes() {
    let result = json!({"status": "changed", "_output": "\u{1b}[0;32mNotice: applied\u{1b}[0m"});
    let shown =
        NodeReport::from_node_keeping(node("finished", result.clone(), json!({})), false, |o| {
            o == Outcome::Changed
        });
    assert_eq!(shown.output.as_deref(), Some("Notice: applied"));
    let hidden =
        NodeReport::from_node_keeping(node("finished", result.clone(), json!({})), false, |o| {
            o != Outcome::Changed
        });
    assert_eq!(hidden.outcome, Outcome::Changed);
    assert_eq!(hidden.output, None);
    assert_eq!(hidden.result, Some(result));
}

#[test]
fn psick_results_map_to_outcomes() {
    let changed = json!({"status": "changed", "noop": false, "exitcode": 2,
        "resources": {"total": 9, "changed": 2, "failed": 0, "out_of_sync": 2, "skipped": 0, "noop_pending": 0},
        "_output": "\u{1b}[0;32mNotice: applied\u{1b}[0m"});
    let r = NodeReport::from_node(node("finished", changed, json!({})), false);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.exitcode, Some(2));
    assert_eq!(r.output.as_deref(), Some("Notice: applied"));
    assert_eq!(r.resources.unwrap()["changed"], 2);
    assert!(r.error.is_none());

    let pending = json!({"status": "unchanged", "noop": true,
        "resources": {"total": 9, "noop_pending": 3}});
    let r = NodeReport::from_node(node("finished", pending, json!({})), false);
    assert_eq!(r.outcome, Outcome::Changed);

    let failed = json!({"status": "failed", "exitcode": 4,
        "_error": {"kind": "psick/resource-failures", "msg": "1 failed", "details": {"exitcode": 4}}});
    let r = NodeReport::from_node(node("failed", failed, json!({})), false);
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.error_line().unwrap(), "psick/resource-failures: 1 failed");
}

#[test]
fn generic_results_are_unchanged_unless_they_say_changed() {
    let r = NodeReport::from_node(
        node("finished", json!({"_output": "hi\n"}), json!({})),
        false,
    );
    assert_eq!(r.outcome, Outcome::Unchanged);
    let r = NodeReport::from_node(node("finished", json!({"changed": true}), json!({})), false);
    assert_eq!(r.outcome, Outcome::Changed);
    let r = NodeReport::from_node(
        node(
            "failed",
            json!({"_error": {"kind": "puppetlabs.tasks/task-error", "msg": "x", "details": {"exit_code": 3}}}),
            json!({}),
        ),
        false,
    );
    assert_eq!(r.exitcode, Some(3));
}

#[test]
fn nodes_that_did_not_run_get_an_explaining_error() {
    let r = NodeReport::from_node(
        node(
            "errored",
            Value::Null,
            json!({"message": "n1 is not connected"}),
        ),
        false,
    );
    assert_eq!(r.outcome, Outcome::Errored);
    assert_eq!(r.error.as_ref().unwrap()["kind"], "kick/node-errored");
    assert_eq!(
        r.error_line().unwrap(),
        "kick/node-errored: n1 is not connected"
    );
    assert_eq!(classify(NodeState::New, None, false), Outcome::Skipped);
    assert_eq!(classify(NodeState::Running, None, false), Outcome::Stopped);
}

#[test]
fn deploy_summaries_in_events_use_status_and_metrics() {
    let detail = json!({"status": "unchanged", "noop": true,
        "metrics": {"total": 171, "changed": 0, "failed": 0, "out_of_sync": 3, "skipped": 0, "noop": 3}});
    let r = NodeReport::from_event("a".into(), EventType::NodeFinished, &detail, "", None, true);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.resources.unwrap()["noop_pending"], 3);
    let r = NodeReport::from_event(
        "a".into(),
        EventType::NodeFinished,
        &json!({"status": "unchanged", "metrics": {"total": 5}}),
        "",
        Some(2.0),
        false,
    );
    assert_eq!(r.outcome, Outcome::Unchanged);
    assert_eq!(r.duration, Some(2.0));
}
