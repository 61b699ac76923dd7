//! The companion tasks served by the same binary, against real puppet agents:
//! psick::puppet_unlock and psick::puppet_enable_noop.

use std::time::Duration;

use kick_e2e::{SimNode, Stack};
use serde_json::json;

#[test]
fn unlock_keeps_a_live_lock_and_removes_a_stale_one() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-unlock");
    node.bootstrap();
    let lock = node.lockfile();
    let mut holder = node.spawn_agent("slow");
    let pid = node.wait_for_lock(Duration::from_secs(90));

    let live = node.run_task(&json!({"_task": "psick::puppet_unlock"}));
    assert!(live.exit.success(), "{}", live.dump());
    let report = &live.result["catalog_run_lock"];
    assert_eq!(report["action"], json!("kept"), "{}", live.dump());
    assert_eq!(report["pid"], json!(pid), "{}", live.dump());
    assert!(lock.is_file(), "a live holder's lock stays");

    // A crashed agent: SIGKILL leaves its lockfile behind, naming a dead PID.
    holder.kill();
    assert!(lock.is_file(), "SIGKILL leaves the lockfile");

    let noop = node.run_task(&json!({"_task": "psick::puppet_unlock", "_noop": true}));
    assert!(noop.exit.success(), "{}", noop.dump());
    assert_eq!(
        noop.result["catalog_run_lock"]["action"],
        json!("would_remove"),
        "{}",
        noop.dump()
    );
    assert!(lock.is_file(), "noop removes nothing");

    let real = node.run_task(&json!({"_task": "psick::puppet_unlock"}));
    assert!(real.exit.success(), "{}", real.dump());
    assert_eq!(
        real.result["catalog_run_lock"]["action"],
        json!("removed"),
        "{}",
        real.dump()
    );
    assert_eq!(
        real.result["removed"],
        json!([lock.display().to_string()]),
        "{}",
        real.dump()
    );
    assert!(!lock.exists());

    // The node runs again without waiting.
    let run = node.run_task(&json!({"environment": "idem", "wait_for_lock": 0}));
    assert!(run.exit.success(), "{}", run.dump());
    assert_eq!(run.status(), "changed");
}

#[test]
fn enable_noop_makes_later_runs_noop_by_the_nodes_own_config() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-enoop");

    let set = node.run_task(&json!({"_task": "psick::puppet_enable_noop"}));
    assert!(set.exit.success(), "{}", set.dump());
    assert_eq!(set.result["changed"], json!(true), "{}", set.dump());
    // Puppet itself reads the edited file the same way.
    let out = node
        .puppet("config")
        .args(["print", "noop", "--section", "agent"])
        .output()
        .expect("puppet config print");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "true");

    // No noop parameter: the node's setting applies, and the result says so.
    let run = node.run_task(&json!({"environment": "idem"}));
    assert!(run.exit.success(), "{}", run.dump());
    assert_eq!(run.result["noop"], json!(true), "{}", run.dump());
    assert_eq!(run.status(), "changed", "pending changes:\n{}", run.dump());
    assert!(!node.managed_dir().join("idem.txt").exists());

    // An explicit noop: false overrides the node's setting.
    let forced = node.run_task(&json!({"environment": "idem", "noop": false}));
    assert!(forced.exit.success(), "{}", forced.dump());
    assert_eq!(forced.result["noop"], json!(false), "{}", forced.dump());
    assert!(node.managed_dir().join("idem.txt").is_file());

    let again = node.run_task(&json!({"_task": "psick::puppet_enable_noop"}));
    assert!(again.exit.success(), "{}", again.dump());
    assert_eq!(
        again.result["changed"],
        json!(false),
        "idempotent:\n{}",
        again.dump()
    );
}

#[test]
fn unlock_with_enable_re_enables_a_disabled_agent() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-unlock-en");
    node.bootstrap();
    node.disable("maint by e2e");
    let refused = node.run_task(&json!({"environment": "idem"}));
    assert_eq!(
        refused.error_kind(),
        Some("psick/agent-disabled"),
        "{}",
        refused.dump()
    );

    let kept = node.run_task(&json!({"_task": "psick::puppet_unlock"}));
    assert!(kept.exit.success(), "{}", kept.dump());
    assert_eq!(kept.result["disabled_lock"]["action"], json!("kept"));
    assert!(node.disabled_lockfile().is_file());

    let enabled = node.run_task(&json!({"_task": "psick::puppet_unlock", "enable": true}));
    assert!(enabled.exit.success(), "{}", enabled.dump());
    let report = &enabled.result["disabled_lock"];
    assert_eq!(report["action"], json!("removed"), "{}", enabled.dump());
    assert_eq!(report["disabled_message"], json!("maint by e2e"));
    assert!(!node.disabled_lockfile().exists());

    let run = node.run_task(&json!({"environment": "idem"}));
    assert!(run.exit.success(), "{}", run.dump());
    assert_eq!(run.status(), "changed");
}
