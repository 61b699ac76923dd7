//! The psick module as it ships, for both CPU architectures, through the orchestrator: each run's
//! install directory gets the entry `tasks/puppet_agent` (POSIX sh) and both binaries of the
//! metadata's `files`, as pxp-agent's does, and each local node runs its own architecture's
//! binary with the job's input untouched.
//!
//! The module is the repository's own files (entry, metadata, `make task`'s binaries) copied to
//! a temporary modulepath. An "aarch64 node" is a local node whose environment names its
//! architecture (`PSICK_ARCH`, which the entry takes before asking the kernel; how the entry
//! finds it on a real node is tested in psick-task's `entry.rs`), and since this machine
//! cannot exec an aarch64 binary without binfmt_misc, the module's `files/aarch64/psick-task`
//! is a stand-in that runs the real aarch64 build under `qemu-aarch64-static`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kick_orchestrator::{Config, NodeSpec};
use serde_json::{Value, json};

use crate::common::{Server, TOKEN};

const QEMU: &str = "/usr/bin/qemu-aarch64-static";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn write_exe(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The staged binaries and qemu, or `None` (skipped, unless `make test` requires them).
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let x86 = repo().join("files/x86_64/psick-task");
    let arm = repo().join("files/aarch64/psick-task");
    if x86.is_file() && arm.is_file() && Path::new(QEMU).is_file() {
        return Some((x86, arm));
    }
    assert!(
        std::env::var("KICK_REQUIRE_STACK").as_deref() != Ok("1"),
        "files/<arch>/psick-task or {QEMU} missing: run `make deps task`"
    );
    eprintln!("skipped: files/<arch>/psick-task or {QEMU} missing (make deps task)");
    None
}

/// A node of the given architecture (`None`: this machine's): its own puppet.conf and a fake
/// puppet that records its argv and the process that started it.
fn node(dir: &Path, name: &str, arch: Option<&str>) -> NodeSpec {
    let root = dir.join(name);
    for d in ["conf", "var/state", "public"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("conf/puppet.conf"),
        format!(
            "[main]\nvardir = {r}/var\npublicdir = {r}/public\n",
            r = root.display()
        ),
    )
    .unwrap();
    write_exe(
        &root.join("fake-puppet"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{r}/argv'\n\
             readlink /proc/$PPID/exe > '{r}/parent-exe'\n\
             tr '\\0' ' ' < /proc/$PPID/cmdline > '{r}/parent-cmdline'\nexit 0\n",
            r = root.display()
        ),
    );
    let mut n = NodeSpec::new(name);
    if let Some(a) = arch {
        n.env.insert("PSICK_ARCH".into(), a.into());
    }
    n.env.insert(
        "PSICK_PUPPET_BIN".into(),
        root.join("fake-puppet").display().to_string(),
    );
    n.env.insert(
        "PSICK_PUPPET_CONFDIR".into(),
        root.join("conf").display().to_string(),
    );
    n.env
        .insert("PSICK_TEST_SYSROOT".into(), root.display().to_string());
    n
}

fn read(dir: &Path, node: &str, file: &str) -> String {
    std::fs::read_to_string(dir.join(node).join(file))
        .unwrap_or_else(|e| panic!("{node}/{file}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_runs_its_own_architectures_binary_from_the_shipped_files() {
    let Some((x86, arm)) = binaries() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let psick = dir.path().join("modules/psick");
    std::fs::create_dir_all(psick.join("tasks")).unwrap();
    std::fs::copy(
        repo().join("tasks/puppet_agent"),
        psick.join("tasks/puppet_agent"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("tasks/puppet_agent.json"),
        psick.join("tasks/puppet_agent.json"),
    )
    .unwrap();
    std::fs::create_dir_all(psick.join("files/x86_64")).unwrap();
    std::fs::copy(&x86, psick.join("files/x86_64/psick-task")).unwrap();
    // The stand-in notes where it ran from, then runs the aarch64 build under qemu.
    write_exe(
        &psick.join("files/aarch64/psick-task"),
        &format!(
            "#!/bin/sh\necho \"$0\" > \"$PSICK_TEST_SYSROOT/ran\"\nexec {QEMU} '{}' \"$@\"\n",
            arm.display()
        ),
    );
    let nodes = [
        ("amd.example", None),
        ("arm.example", Some("aarch64")),
        ("riscv.example", Some("riscv64")),
    ];
    let mut b = Config::builder()
        .token(TOKEN)
        .modulepath(dir.path().join("modules"))
        .state_dir(dir.path().join("state"));
    for (name, uname) in nodes {
        b = b.node(node(dir.path(), name, uname));
    }
    let s = Server::start(b.build()).await;

    // The task's files: the entry first, then both binaries under the names `files` gives.
    let (_, t) = s.get("/tasks/psick/puppet_agent").await;
    let names: Vec<&str> = t["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "puppet_agent",
            "psick/files/x86_64/psick-task",
            "psick/files/aarch64/psick-task"
        ],
        "{t}"
    );

    let job = s
        .task(
            "psick::puppet_agent",
            json!({"noop": true, "tags": ["ntp", "ssh"]}),
            &["amd.example", "arm.example", "riscv.example"],
        )
        .await;
    let j = s.wait(&job).await;
    let items = s.nodes(&job).await;
    let result = |name: &str| -> Value {
        items
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {items:#?}"))["result"]
            .clone()
    };
    for name in ["amd.example", "arm.example"] {
        let r = result(name);
        assert_eq!(r["status"], "unchanged", "{name}: {r:#}");
        assert_eq!(r["noop"], true, "{name}: {r:#}");
        // The parameters reached the binary as sent.
        let argv = read(dir.path(), name, "argv");
        assert!(argv.lines().any(|l| l == "--noop"), "{name}: {argv}");
        assert!(
            argv.lines().any(|l| l == "--tags=ntp,ssh"),
            "{name}: {argv}"
        );
    }
    // amd: the x86_64 binary of the run's install directory started puppet.
    let exe = read(dir.path(), "amd.example", "parent-exe");
    assert!(
        exe.contains("/temp_task_") && exe.trim_end().ends_with("/psick/files/x86_64/psick-task"),
        "{exe}"
    );
    // arm: the install directory's aarch64 file ran, and the aarch64 build under qemu started
    // puppet.
    let ran = read(dir.path(), "arm.example", "ran");
    assert!(
        ran.contains("/temp_task_") && ran.trim_end().ends_with("/psick/files/aarch64/psick-task"),
        "{ran}"
    );
    let cmdline = read(dir.path(), "arm.example", "parent-cmdline");
    assert!(
        cmdline.starts_with(&format!("{QEMU} {} ", arm.display())),
        "{cmdline}"
    );
    // riscv64: no binary for it, a psick error in the task's shape; nothing ran.
    let r = result("riscv.example");
    assert_eq!(
        r["_error"]["kind"], "psick/unsupported-architecture",
        "{r:#}"
    );
    assert_eq!(r["_error"]["details"]["arch"], "riscv64", "{r:#}");
    assert!(!dir.path().join("riscv.example/argv").exists());
    assert_eq!(j["state"], "failed", "one node failed: {j:#}");
    s.stop().await;
}
