//! The aarch64 task binary (`make task` builds it with Debian's rustc-web) against the real puppet
//! and puppetserver, run under qemu-user on this x86_64 machine: qemu-aarch64-static is called
//! explicitly (no binfmt_misc registration), and puppet, which the task starts, runs natively.

use std::path::{Path, PathBuf};

use kick_e2e::{SimNode, Stack, workspace_root};
use serde_json::json;

const QEMU: &str = "/usr/bin/qemu-aarch64-static";

fn aarch64_bin() -> PathBuf {
    workspace_root().join("files/aarch64/psick-task")
}

/// The binary and qemu, or `None` (skipped, unless the stack is required) without them.
fn available() -> Option<PathBuf> {
    let bin = aarch64_bin();
    let present = bin.is_file() && Path::new(QEMU).is_file();
    if !present {
        assert!(
            std::env::var("KICK_REQUIRE_STACK").as_deref() != Ok("1"),
            "{} or {QEMU} is missing: run `make deps task`",
            bin.display()
        );
        eprintln!("skipped: {} or {QEMU} missing", bin.display());
        return None;
    }
    let head = std::fs::read(&bin).expect("read the aarch64 binary");
    assert_eq!(&head[..4], b"\x7fELF");
    assert_eq!(head[18..20], [0xb7, 0], "EM_AARCH64");
    Some(bin)
}

#[test]
fn the_aarch64_task_under_qemu_converges_a_node_against_the_real_server() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let Some(bin) = available() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-aarch64");
    let run = |params| node.run_task_with(Some(Path::new(QEMU)), &bin, &params);
    let managed = node.managed_dir().join("idem.txt");

    let noop = run(json!({"noop": true, "environment": "idem"}));
    assert!(noop.exit.success(), "noop run:\n{}", noop.dump());
    assert_eq!(noop.status(), "changed", "{}", noop.dump());
    assert_eq!(noop.result["noop"], json!(true));
    assert!(
        noop.resource("noop_pending").unwrap_or(0) > 0,
        "{}",
        noop.dump()
    );
    assert!(!managed.exists(), "noop changed nothing");
    // The run's report was read by the aarch64 parser: its events are the changes.
    assert!(
        noop.result["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{}",
        noop.dump()
    );

    let real = run(json!({"environment": "idem", "noop": false}));
    assert!(real.exit.success(), "real run:\n{}", real.dump());
    assert_eq!(real.status(), "changed", "{}", real.dump());
    assert_eq!(real.result["exitcode"], json!(2));
    real.assert_real_agent_ran();
    let content = std::fs::read_to_string(&managed).expect("the real run wrote the file");
    assert!(content.contains(node.certname()), "{content}");

    let again = run(json!({"environment": "idem"}));
    assert!(again.exit.success(), "{}", again.dump());
    assert_eq!(again.status(), "unchanged", "{}", again.dump());
    assert_eq!(again.result["exitcode"], json!(0));

    // The other tasks of the same binary: puppet_unlock finds nothing to unlock.
    let unlock = run(json!({"_task": "psick::puppet_unlock"}));
    assert!(unlock.exit.success(), "{}", unlock.dump());
}
