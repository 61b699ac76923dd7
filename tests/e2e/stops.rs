//! Stopping real agent runs: psick::puppet_unlock with `force` stops the run holding the lock
//! before removing it, and a SIGTERM from outside is reported as the signal.

use std::process::Command;
use std::time::Duration;

use kick_e2e::{SimNode, Stack};
use serde_json::json;

/// Whether any process is left in process group `pgid` (zombies included until reaped).
fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn forced_unlock_stops_the_live_run_then_removes_its_lock() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-force");
    node.bootstrap();
    // A run in its own group, as the daemon's or the task's are; its exec (sleep 20) is in it.
    let mut run = node.spawn_agent_own_group("slow");
    let pid = node.wait_for_lock(Duration::from_secs(90));
    assert_eq!(pid, run.pid(), "the agent itself holds the lock");

    let noop =
        node.run_task(&json!({"_task": "psick::puppet_unlock", "force": true, "_noop": true}));
    assert!(noop.exit.success(), "{}", noop.dump());
    assert_eq!(
        noop.result["catalog_run_lock"]["action"],
        json!("would_remove")
    );
    assert!(run.is_running(), "noop stops nothing");

    let forced = node.run_task(&json!({"_task": "psick::puppet_unlock", "force": true}));
    assert!(forced.exit.success(), "{}", forced.dump());
    let lock = &forced.result["catalog_run_lock"];
    assert_eq!(lock["action"], json!("removed"), "{}", forced.dump());
    assert_eq!(lock["stopped_run"]["pid"], json!(pid), "{}", forced.dump());
    assert_eq!(
        lock["stopped_run"]["process_group"],
        json!(pid),
        "{}",
        forced.dump()
    );
    assert_eq!(
        lock["stopped_run"]["signal"],
        json!("TERM"),
        "{}",
        forced.dump()
    );
    let reason = lock["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("stopped"), "{reason}");
    // When the task answers, the run has ended and the lock is gone.
    assert!(
        !run.is_running(),
        "the run was stopped before the lock was removed"
    );
    assert!(!node.lockfile().exists());
    assert!(!group_alive(pid), "the run's exec went with its group");

    let next = node.run_task(&json!({"environment": "idem", "wait_for_lock": 0}));
    assert!(next.exit.success(), "{}", next.dump());
    assert_eq!(next.status(), "changed");
}

#[test]
fn sigterm_from_outside_reports_the_signal_not_puppets_exit_code() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-term");
    node.bootstrap();
    let task = node.spawn_task(&json!({"environment": "slow"}));
    node.wait_for_lock(Duration::from_secs(90));
    task.terminate();
    let run = task.wait();
    assert_eq!(run.error_kind(), Some("psick/timeout"), "{}", run.dump());
    assert_eq!(run.result["_error"]["details"]["signal"], json!("TERM"));
    // Real puppet exits 0 when it catches TERM; that is not the run's outcome.
    assert_eq!(run.result["exitcode"], json!(null), "{}", run.dump());
    assert_eq!(run.result["_error"]["details"]["exitcode"], json!(null));
    let msg = run.error_msg();
    assert!(msg.contains("stopped by SIGTERM"), "{msg}");
    assert!(!msg.contains("raise `timeout`"), "{msg}");
}
