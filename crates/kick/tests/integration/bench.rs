//! The benchmarks' scripts, run with stand-ins for what they start.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/usr/bin/env bash\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Alive, and not a zombie waiting for a parent that is gone.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let state = s.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state != 'Z')
        })
        .unwrap_or(false)
}

#[test]
fn the_rollout_bench_stops_the_puppetdb_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let scripts = dir.path().join("scripts");
    let state = dir.path().join("pdb");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&scripts).unwrap();
    // No build: the stand-in PuppetDB is all the PQL bench reaches before
    // it fails (nothing answers at its address).
    script(&bin.join("cargo"), "exit 0\n");
    // Starts "PuppetDB" as puppetdb-up.sh does: its PID recorded, and the
    // `started` marker written because this call started it.
    script(
        &scripts.join("puppetdb-up.sh"),
        "mkdir -p \"$PDB_STATE\"\n\
         sleep 300 < /dev/null > /dev/null 2>&1 &\n\
         echo $! > \"$PDB_STATE/puppetdb.pid\"\n\
         echo $! > \"$PDB_STATE/started\"\n\
         echo KICK_TEST_PUPPETDB_URL=http://127.0.0.1:9\n",
    );
    script(
        &scripts.join("puppetdb-down.sh"),
        "kill \"$(cat \"$PDB_STATE/puppetdb.pid\")\"\nrm -f \"$PDB_STATE/started\"\n",
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(root.join("bench/rollout.sh"))
        .env("PATH", path)
        .env("KICK_BENCH_ONLY", "pql")
        .env("KICK_BENCH_SCRIPTS", &scripts)
        .env("PDB_STATE", &state)
        .output()
        .unwrap();
    let pid = std::fs::read_to_string(state.join("puppetdb.pid")).unwrap();
    let pid = pid.trim();
    let running = alive(pid);
    if running {
        let _ = Command::new("kill").arg(pid).status();
    }
    assert!(!out.status.success(), "nothing answers: the bench fails");
    assert!(
        !running,
        "the PuppetDB the bench started (pid {pid}) is still running: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
