//! Where the built artefacts live.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The repository root (also the Puppet module `psick`).
pub fn workspace_root() -> PathBuf {
    // tests/ is one level below the root; the manifest dir is fixed at compile time.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// The static task binary under test: `PSICK_TASK_BIN`, else the copy `make task` stages for
/// this machine's architecture at `files/<arch>/psick-task`. Panics (failing the test) with what
/// to run when it is missing. Runners start it through [`task_entry`].
pub fn task_bin() -> PathBuf {
    let bin = std::env::var_os("PSICK_TASK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root().join(format!("files/{}/psick-task", std::env::consts::ARCH))
        });
    assert!(
        bin.is_file(),
        "task binary {} not found: run `make task` (or set PSICK_TASK_BIN)",
        bin.display()
    );
    bin
}

/// The tasks' entry `tasks/puppet_agent` (POSIX sh, in git): what the metadata names and the
/// runners start; it execs the node's architecture's binary from `files/<arch>/`.
pub fn task_entry() -> PathBuf {
    workspace_root().join("tasks/puppet_agent")
}

/// Lower-case hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("cannot read {} for hashing: {e}", path.display()));
    hex::encode(Sha256::digest(&bytes))
}

/// A modulepath directory holding this repository as module `psick` (a symlink named after
/// the module, as Puppet and the orchestrator look modules up by directory name). Removed on drop.
pub fn repo_modulepath() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("kick-modulepath-")
        .tempdir()
        .expect("create a modulepath dir");
    std::os::unix::fs::symlink(workspace_root(), dir.path().join("psick"))
        .expect("link the repository as module psick");
    dir
}
