//! psick::puppet_unlock and psick::puppet_enable_noop.

use crate::harness::{FakeHolder, Node};

fn unlock(node: &Node, params: &str) -> crate::harness::Outcome {
    let params = params.replacen('{', r#"{"_task": "psick::puppet_unlock", "#, 1);
    node.run(&params.replace(", }", "}"))
}

#[test]
fn unlock_removes_a_stale_lock_but_keeps_the_disabled_one() {
    let node = Node::new("exit 0");
    std::fs::write(node.catalog_lock(), "999999999").unwrap();
    std::fs::write(node.disabled_lock(), r#"{"disabled_message":"maint"}"#).unwrap();
    let o = unlock(&node, "{}");
    assert_eq!(o.code, 0, "{}", o.json);
    let lock = node.catalog_lock().display().to_string();
    assert_eq!(o.json["removed"], serde_json::json!([lock]));
    assert_eq!(o.json["catalog_run_lock"]["action"], "removed");
    assert_eq!(o.json["catalog_run_lock"]["pid"], 999999999u32);
    assert_eq!(o.json["disabled_lock"]["action"], "kept");
    assert_eq!(o.json["disabled_lock"]["disabled_message"], "maint");
    assert!(!node.catalog_lock().exists());
    assert!(node.disabled_lock().exists());
    assert_eq!(node.argv(), None, "unlock never runs puppet");
}

#[test]
fn unlock_keeps_a_live_lock_unless_forced() {
    let node = Node::new("exit 0");
    let holder = FakeHolder::start(node.dir.path(), "60");
    std::fs::write(node.catalog_lock(), holder.pid().to_string()).unwrap();
    let o = unlock(&node, "{}");
    assert_eq!(o.json["catalog_run_lock"]["action"], "kept");
    assert!(
        o.json["catalog_run_lock"]["reason"]
            .as_str()
            .unwrap()
            .contains("force=true")
    );
    assert!(node.catalog_lock().exists());
    let o = unlock(&node, r#"{"force": true}"#);
    assert_eq!(o.json["catalog_run_lock"]["action"], "removed");
    assert!(!node.catalog_lock().exists());
}

#[test]
fn unlock_enable_removes_the_disabled_lock_and_noop_removes_nothing() {
    let node = Node::new("exit 0");
    std::fs::write(node.catalog_lock(), "garbage").unwrap();
    std::fs::write(node.disabled_lock(), r#"{"disabled_message":"maint"}"#).unwrap();
    let o = unlock(&node, r#"{"enable": "true", "_noop": true}"#);
    assert_eq!(o.json["noop"], true);
    assert_eq!(o.json["catalog_run_lock"]["action"], "would_remove");
    assert_eq!(o.json["disabled_lock"]["action"], "would_remove");
    assert_eq!(o.json["removed"].as_array().unwrap().len(), 2);
    assert!(node.catalog_lock().exists() && node.disabled_lock().exists());
    let o = unlock(&node, r#"{"enable": true}"#);
    assert_eq!(o.json["disabled_lock"]["action"], "removed");
    assert!(!node.catalog_lock().exists() && !node.disabled_lock().exists());
    let o = unlock(&node, "{}");
    assert_eq!(o.json["removed"], serde_json::json!([]));
    assert_eq!(o.json["catalog_run_lock"]["action"], "absent");
    assert_eq!(o.json["disabled_lock"]["action"], "absent");
}

#[test]
fn unlock_rejects_unknown_parameters() {
    let node = Node::new("exit 0");
    let o = unlock(&node, r#"{"all": true}"#);
    assert_eq!(o.kind(), "psick/invalid-params");
}

#[test]
fn enable_noop_edits_puppet_conf_and_supports_noop() {
    let node = Node::new("exit 0");
    let conf = node.conf.join("puppet.conf");
    let before = std::fs::read_to_string(&conf).unwrap();
    let o = node.run(r#"{"_task": "psick::puppet_enable_noop", "_noop": true}"#);
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["changed"], true);
    assert_eq!(o.json["noop"], true);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);

    let o = node.run(r#"{"_task": "psick::puppet_enable_noop"}"#);
    assert_eq!(o.json["changed"], true);
    assert_eq!(o.json["puppet_conf"], conf.display().to_string());
    let after = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(after, format!("{before}\n[agent]\nnoop = true\n"));

    let o = node.run(r#"{"_task": "psick::puppet_enable_noop"}"#);
    assert_eq!(o.json["changed"], false);
    assert_eq!(o.json["previous"], "true");

    // The next agent run sees noop from the node's config.
    let o = node.run("{}");
    assert_eq!(o.json["noop"], true);

    let o = node.run(r#"{"_task": "psick::puppet_enable_noop", "section": "main"}"#);
    assert_eq!(o.kind(), "psick/invalid-params");
}
