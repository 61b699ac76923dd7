//! Stopping real agent runs: psick::puppet_unlock with `force` stops the run holding the lock
//! before removing it, and a SIGTERM from outside is reported as the signal. Each test checks
//! from the exec's side: the `slow` environment's exec writes its own PID, and puppet starts
//! it in a session of its own, so only a stop that ends the run's whole tree ends it.

use std::time::Duration;

use kick_e2e::{SimNode, Stack, process_alive};
use serde_json::json;

#[test]
fn forced_unlock_stops_the_live_run_then_removes_its_lock() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-force");
    node.bootstrap();
    node.forget_exec_pid();
    // A run in its own group, as the daemon's or the task's are; its exec (sleep 20) is in a
    // session of its own (puppet's setsid), outside that group.
    let mut run = node.spawn_agent_own_group("slow");
    let pid = node.wait_for_lock(Duration::from_secs(90));
    assert_eq!(pid, run.pid(), "the agent itself holds the lock");
    let exec = node.wait_for_exec_pid(Duration::from_secs(60));

    let noop =
        node.run_task(&json!({"_task": "psick::puppet_unlock", "force": true, "_noop": true}));
    assert!(noop.exit.success(), "{}", noop.dump());
    assert_eq!(
        noop.result["catalog_run_lock"]["action"],
        json!("would_remove")
    );
    assert!(run.is_running(), "noop stops nothing");
    assert!(process_alive(exec), "noop stops nothing");

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
    assert!(
        !process_alive(exec),
        "the run's exec {exec} outlived the forced unlock: {}",
        forced.dump()
    );
    let processes = lock["stopped_run"]["processes"].as_array().unwrap();
    assert!(
        processes.iter().any(|p| p["pid"] == json!(exec)),
        "{}",
        forced.dump()
    );
    assert!(
        processes.iter().any(|p| p["pid"] == json!(pid)),
        "{}",
        forced.dump()
    );

    let left = node.wait_no_puppet_processes(Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "processes of the run left behind: {left:?}"
    );

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
    node.forget_exec_pid();
    let task = node.spawn_task(&json!({"environment": "slow"}));
    node.wait_for_lock(Duration::from_secs(90));
    let exec = node.wait_for_exec_pid(Duration::from_secs(60));
    task.terminate();
    let run = task.wait();
    assert!(!process_alive(exec), "the exec {exec} outlived the SIGTERM");
    assert_eq!(run.error_kind(), Some("psick/timeout"), "{}", run.dump());
    assert_eq!(run.result["_error"]["details"]["signal"], json!("TERM"));
    assert!(
        run.stopped_pids().contains(&u64::from(exec)),
        "the exec is listed in details.stopped: {}",
        run.dump()
    );
    // Real puppet exits 0 when it catches TERM; that is not the run's outcome.
    assert_eq!(run.result["exitcode"], json!(null), "{}", run.dump());
    assert_eq!(run.result["_error"]["details"]["exitcode"], json!(null));
    let msg = run.error_msg();
    assert!(msg.contains("stopped by SIGTERM"), "{msg}");
    assert!(!msg.contains("raise `timeout`"), "{msg}");
}

/// pxp-agent's module mode: the module configuration's `timeout` ends the run and its exec.
#[test]
fn module_timeout_ends_the_run_and_its_exec() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-pxp-timeout");
    node.bootstrap();
    node.forget_exec_pid();
    // `slow` sleeps 20 s in an exec; 15 s for the whole run leaves margin for the catalog
    // under load (the exec must have started for the check below), as the task's own
    // timeout test does.
    let request = json!({
        "input": {"flags": ["--environment", "slow"]},
        "configuration": {"puppet_bin": Stack::PUPPET_BIN, "timeout": 15}
    });
    let run = kick_e2e::ModuleRun::run(
        &kick_e2e::task_bin(),
        &node.task_env(),
        "run",
        &request.to_string(),
    );
    let v = run.json();
    let exec = node.exec_pid_written();
    assert!(
        !process_alive(exec),
        "the exec {exec} outlived the module's timeout: {v}"
    );
    assert_eq!(v["exitcode"], json!(-1), "{v}");
    assert_eq!(v["error_type"], json!("agent_exit_non_zero"), "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("timeout of 15s"), "{error}");
    assert!(error.contains("exec resources included"), "{error}");
    let stopped = v["stopped"].as_array().cloned().unwrap_or_default();
    assert!(
        stopped.iter().any(|p| p["pid"] == json!(exec)),
        "the exec is listed in stopped: {v}"
    );
    let left = node.wait_no_puppet_processes(Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "processes of the run left behind: {left:?}"
    );
}
