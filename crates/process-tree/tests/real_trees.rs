//! Real process trees: a child that leaves for its own session (as puppet's
//! exec resources do) is still found and ended, and the report says how.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use process_tree::{Options, end};

fn wait_for_pid(file: &Path) -> u32 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < until, "{} never written", file.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn running(pid: u32) -> bool {
    process_tree::read(pid).is_some_and(|p| p.state != 'Z')
}

/// `sh` that starts a detached `sleep` in a new session, which writes its
/// own PID, then waits; `trap` decides how the parent takes TERM.
fn spawn_tree(dir: &Path, trap: &str) -> (Child, u32) {
    let file = dir.join("exec.pid");
    let script = format!(
        "{trap} setsid sh -c 'echo $$ > {f}; exec sleep 60' & wait; sleep 60",
        f = file.display()
    );
    let child = Command::new("/bin/sh")
        .args(["-c", &script])
        .process_group(0)
        .spawn()
        .unwrap();
    let exec = wait_for_pid(&file);
    (child, exec)
}

use std::os::unix::process::CommandExt;

#[test]
fn a_detached_grandchild_in_its_own_session_is_ended_with_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, exec) = spawn_tree(dir.path(), "");
    let info = process_tree::read(exec).unwrap();
    assert_ne!(info.sid, child.id(), "the exec left the session");
    assert!(running(exec));

    let report = end(
        &[child.id()],
        Options {
            grace: Duration::from_secs(5),
            ..Options::default()
        },
        || false,
    );
    child.wait().unwrap();
    assert!(!running(exec), "the detached exec {exec} is still alive");
    assert!(report.survivors.is_empty(), "{report:?}");
    assert!(!report.killed, "TERM was enough: {report:?}");
    let pids: Vec<u32> = report.ended.iter().map(|e| e.pid).collect();
    assert!(pids.contains(&exec), "{report:?}");
    assert!(pids.contains(&child.id()), "{report:?}");
    let exec_line = report.ended.iter().find(|e| e.pid == exec).unwrap();
    assert!(exec_line.command.contains("sleep 60"), "{exec_line:?}");
}

#[test]
fn members_that_ignore_term_are_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    // The parent ignores TERM, and so does the exec it starts (inherited).
    let (mut child, exec) = spawn_tree(dir.path(), "trap '' TERM;");
    let t0 = Instant::now();
    let report = end(
        &[child.id()],
        Options {
            grace: Duration::from_millis(300),
            ..Options::default()
        },
        || false,
    );
    child.wait().unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(report.killed, "{report:?}");
    assert!(!running(exec));
    assert!(report.survivors.is_empty(), "{report:?}");
    assert!(
        report.ended.iter().all(|e| e.signal == "KILL"),
        "{report:?}"
    );
}

#[test]
fn a_second_request_cuts_the_grace_short() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, exec) = spawn_tree(dir.path(), "trap '' TERM;");
    let t0 = Instant::now();
    let mut asked = 0;
    let report = end(&[child.id()], Options::default(), || {
        asked += 1;
        asked > 3
    });
    child.wait().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(report.killed);
    assert!(!running(exec));
}

#[test]
fn without_the_roots_only_what_is_below_them_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, exec) = spawn_tree(dir.path(), "trap '' TERM;");
    // The root survives TERM (trap) and is left out: only the exec ends.
    let report = end(
        &[child.id()],
        Options {
            include_roots: false,
            grace: Duration::from_millis(200),
            ..Options::default()
        },
        || false,
    );
    assert!(!running(exec));
    assert!(running(child.id()), "the root was spared");
    assert!(report.ended.iter().all(|e| e.pid != child.id()));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn without_a_grace_nothing_gets_term_first() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("got-term");
    // The root would write a marker on TERM; a force stop must not let it.
    let (mut child, exec) = spawn_tree(
        dir.path(),
        &format!("trap 'touch {}; exit 0' TERM;", marker.display()),
    );
    let report = end(
        &[child.id()],
        Options {
            grace: Duration::ZERO,
            ..Options::default()
        },
        || false,
    );
    child.wait().unwrap();
    assert!(report.killed, "{report:?}");
    assert!(!running(exec));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!marker.exists(), "TERM was sent before KILL");
}
