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
    let o = unlock(&node, r#"{"force": true, "_noop": true}"#);
    assert_eq!(o.json["catalog_run_lock"]["action"], "would_remove");
    assert!(o.json["catalog_run_lock"]["stopped_run"]["signal"].is_null());
    assert!(node.catalog_lock().exists());
    let mut holder = holder;
    assert!(holder.0.try_wait().unwrap().is_none(), "noop stops nothing");
    let o = unlock(&node, r#"{"force": true}"#);
    assert_eq!(o.json["catalog_run_lock"]["action"], "removed");
    let stopped = &o.json["catalog_run_lock"]["stopped_run"];
    assert_eq!(stopped["pid"], holder.pid(), "{}", o.json);
    assert_eq!(stopped["signal"], "TERM", "{}", o.json);
    assert!(!node.catalog_lock().exists());
    // The run was stopped before the task answered.
    let status = holder.0.try_wait().unwrap().expect("the holder is gone");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15));
}

#[test]
fn unlock_force_kills_a_run_group_that_ignores_sigterm() {
    use std::os::unix::process::CommandExt;
    let node = Node::new("exit 0");
    // A "puppet" run in its own process group that traps TERM, with a child.
    let bin = node.path("holder/puppet");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy("/bin/sh", &bin).unwrap();
    let child_pid = node.path("child.pid");
    let mut holder = std::process::Command::new(&bin)
        .args([
            "-c",
            &format!(
                "trap '' TERM; sleep 60 & echo $! > '{}'; wait; sleep 60",
                child_pid.display()
            ),
        ])
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = holder.id();
    std::fs::write(node.catalog_lock(), pid.to_string()).unwrap();
    while !child_pid.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let reaper = std::thread::spawn(move || holder.wait().unwrap());
    let mut cmd = node.command();
    cmd.env("PSICK_KILL_GRACE", "0.5");
    let o = node.run_cmd(cmd, r#"{"_task": "psick::puppet_unlock", "force": true}"#);
    assert_eq!(o.code, 0, "{}", o.json);
    let stopped = &o.json["catalog_run_lock"]["stopped_run"];
    assert_eq!(stopped["signal"], "KILL", "{}", o.json);
    assert_eq!(stopped["process_group"], pid, "{}", o.json);
    assert!(stopped["waited"].as_f64().unwrap() >= 0.5, "{}", o.json);
    assert!(!node.catalog_lock().exists());
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(reaper.join().unwrap().signal(), Some(9));
    // The whole group went, the child too.
    let child: i32 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{child}")).exists()
        && std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|s| !s.contains(") Z"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "child {child} survived"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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

#[test]
fn a_noop_parameter_works_like_the_metaparameter_for_unlock_and_enable_noop() {
    let node = Node::new("exit 0");
    std::fs::write(node.catalog_lock(), "999999999").unwrap();
    let o = unlock(&node, r#"{"noop": true}"#);
    assert_eq!(o.json["noop"], true, "{}", o.json);
    assert_eq!(o.json["catalog_run_lock"]["action"], "would_remove");
    assert!(node.catalog_lock().exists());
    let conf = node.conf.join("puppet.conf");
    let before = std::fs::read_to_string(&conf).unwrap();
    let o = node.run(r#"{"_task": "psick::puppet_enable_noop", "noop": true}"#);
    assert_eq!(o.json["noop"], true, "{}", o.json);
    assert_eq!(o.json["changed"], true);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);
}
