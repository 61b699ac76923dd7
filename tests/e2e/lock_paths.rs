//! A FIFO at either of a real node's lock paths: puppet itself would block reading it, so the
//! task refuses the run at once (no timeout needed), and psick::puppet_unlock removes it.

use std::process::Command;
use std::time::Duration;

use kick_e2e::{SimNode, Stack};
use serde_json::json;

#[test]
fn a_fifo_at_either_lock_path_never_blocks_and_unlock_removes_it() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-fifo");
    std::fs::create_dir_all(node.vardir().join("state")).unwrap();
    for lock in [node.lockfile(), node.disabled_lockfile()] {
        let st = Command::new("mkfifo").arg(&lock).status().expect("mkfifo");
        assert!(st.success());
        let run = node.run_task(&json!({"environment": "idem"}));
        assert_eq!(
            run.error_kind(),
            Some("psick/invalid-lockfile"),
            "{}",
            run.dump()
        );
        assert!(run.error_msg().contains("a FIFO"), "{}", run.dump());
        assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
        let unlock = node.run_task(&json!({"_task": "psick::puppet_unlock", "enable": true}));
        assert!(unlock.exit.success(), "{}", unlock.dump());
        assert!(
            !lock.exists(),
            "{} removed: {}",
            lock.display(),
            unlock.dump()
        );
        assert!(node.puppet_processes().is_empty());
    }
}
