//! Timeouts, signals sent to the task, and output volume.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::harness::{Daemon, Node, emulated, finish, read_pid, running};

#[test]
fn timeout_stops_the_whole_process_group() {
    // The child sleep is in puppet's group too and must die with it.
    let node = Node::new("echo 'Info: starting'; sleep 30 & wait; exit 0");
    let mut cmd = node.command();
    cmd.env("PSICK_KILL_GRACE", "5");
    let o = node.run_cmd(cmd, r#"{"timeout": 1}"#);
    assert_eq!(o.code, 1);
    assert_eq!(o.kind(), "psick/timeout");
    let d = &o.json["_error"]["details"];
    assert_eq!(d["timeout"], 1);
    assert_eq!(d["killed"], false);
    assert!(d["signal"].is_null());
    assert!(o.output().contains("Info: starting"));
    assert!(o.elapsed < Duration::from_secs(5), "{:?}", o.elapsed);
}

#[test]
fn a_puppet_that_ignores_sigterm_is_killed_after_the_grace() {
    let node = Node::new("trap '' TERM; echo ignoring; while :; do sleep 0.1; done");
    let mut cmd = node.command();
    cmd.env("PSICK_KILL_GRACE", "1");
    let o = node.run_cmd(cmd, r#"{"timeout": 1}"#);
    assert_eq!(o.kind(), "psick/timeout");
    assert_eq!(o.json["_error"]["details"]["killed"], true);
    assert!(o.msg().contains("killed"), "{}", o.msg());
    assert!(o.elapsed >= Duration::from_secs(2), "{:?}", o.elapsed);
    assert!(o.elapsed < Duration::from_secs(8), "{:?}", o.elapsed);
}

#[test]
fn a_puppet_that_traps_sigterm_gets_to_clean_up() {
    let node = Node::new("trap 'echo cleaning up; exit 143' TERM; sleep 30 & wait");
    let o = node.run(r#"{"timeout": 1}"#);
    assert_eq!(o.kind(), "psick/timeout");
    assert_eq!(o.json["_error"]["details"]["killed"], false);
    // Whatever puppet exits with after the TERM (real puppet: 0), the run
    // did not finish: the timeout is the outcome, not the exit code.
    assert!(o.json["exitcode"].is_null(), "{}", o.json);
    assert!(o.json["_error"]["details"]["exitcode"].is_null());
    assert!(o.output().contains("cleaning up"), "{}", o.output());
}

/// A fake puppet that starts an "exec" the way puppet does, in a new session
/// (out of reach of puppet's group), which writes its own PID to `exec.pid`;
/// `exec_trap` decides how the exec takes TERM. Puppet itself exits 0 on TERM,
/// as real puppet does after "Caught TERM".
fn detached_exec_puppet(exec_trap: &str) -> (Node, PathBuf) {
    let node = Node::new("");
    let pidfile = node.path("exec.pid");
    node.set_fake(&format!(
        "trap 'exit 0' TERM; echo 'Info: applying'; \
         setsid sh -c '{exec_trap} echo $$ > {f}; while :; do sleep 0.1; done' & wait",
        f = pidfile.display()
    ));
    (node, pidfile)
}

#[test]
fn a_timeout_ends_the_execs_puppet_started_in_their_own_session() {
    let (node, pidfile) = detached_exec_puppet("");
    let mut cmd = node.command();
    cmd.env("PSICK_KILL_GRACE", "5");
    let o = node.run_cmd(cmd, r#"{"timeout": 2}"#);
    let exec = read_pid(&pidfile);
    // Checked the moment the task answers: no polling, the task waited.
    assert!(!running(exec), "the exec {exec} outlived the stopped run");
    assert_eq!(o.kind(), "psick/timeout", "{}", o.json);
    assert!(o.json["exitcode"].is_null(), "{}", o.json);
    let stopped = o.json["_error"]["details"]["stopped"].as_array().unwrap();
    let listed = stopped.iter().find(|p| p["pid"] == exec);
    assert!(listed.is_some(), "the exec is listed: {stopped:?}");
    assert_eq!(listed.unwrap()["signal"], "TERM");
    assert!(
        stopped.len() >= 2,
        "puppet and the exec at least: {stopped:?}"
    );
    assert_eq!(o.json["_error"]["details"]["killed"], false);
}

#[test]
fn an_exec_that_ignores_term_is_killed_after_the_grace() {
    let (node, pidfile) = detached_exec_puppet("trap \"\" TERM;");
    let mut cmd = node.command();
    cmd.env("PSICK_KILL_GRACE", "1");
    let o = node.run_cmd(cmd, r#"{"timeout": 1}"#);
    let exec = read_pid(&pidfile);
    assert!(!running(exec), "the exec {exec} outlived the stopped run");
    assert_eq!(o.json["_error"]["details"]["killed"], true, "{}", o.json);
    let stopped = o.json["_error"]["details"]["stopped"].as_array().unwrap();
    let listed = stopped.iter().find(|p| p["pid"] == exec).unwrap();
    assert_eq!(listed["signal"], "KILL", "{stopped:?}");
}

#[test]
fn sigterm_to_the_task_ends_the_detached_exec_too() {
    let (node, pidfile) = detached_exec_puppet("");
    let start = Instant::now();
    let child = node.spawn(node.command(), "{}");
    while !pidfile.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let exec = read_pid(&pidfile);
    assert!(running(exec));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let o = finish(child, start);
    assert!(!running(exec), "the exec {exec} outlived the stopped run");
    assert_eq!(o.json["_error"]["details"]["signal"], "TERM");
    assert!(
        o.json["_error"]["details"]["stopped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == exec),
        "{}",
        o.json
    );
}

/// Asserts that the stop in `stopped` (the result's list) ended `daemon`:
/// it is gone the moment the task answered, and listed. Under qemu-user,
/// which has no PR_SET_CHILD_SUBREAPER, the stopped run's `output` must say
/// instead that such a process may be left (the daemon's guard ends it).
fn assert_daemon_stopped(daemon: &Daemon, stopped: &serde_json::Value, output: &str) {
    if crate::harness::emulated() {
        crate::harness::assert_says_no_subreaper(output);
        return;
    }
    let pid = daemon.pid();
    assert!(
        !running(pid),
        "the daemon {pid} outlived the stopped run (its parent is now {:?}): {stopped}",
        daemon.parent()
    );
    let listed = stopped.as_array().unwrap().iter().any(|p| p["pid"] == pid);
    assert!(listed, "the daemon {pid} is listed: {stopped}");
}

#[test]
fn a_timeout_ends_a_daemon_the_run_started_whose_parent_exited() {
    // Its parent exits, so without the task as the run's subreaper the
    // daemon goes to init and no stop can tell it was the run's.
    let (node, daemon) = Node::daemonizing();
    let mut cmd = node.command();
    cmd.env("PSICK_KILL_GRACE", "5");
    let o = node.run_cmd(cmd, r#"{"timeout": 3}"#);
    assert_eq!(o.kind(), "psick/timeout", "{}", o.json);
    // The stop came after its intermediate parent was gone.
    assert!(daemon.orphaned.exists(), "{}", o.output());
    assert_daemon_stopped(&daemon, &o.json["_error"]["details"]["stopped"], o.output());
    assert_eq!(
        o.json["_error"]["details"]["survivors"],
        serde_json::json!([])
    );
    // The details as tasks/puppet_agent.json documents them.
    crate::harness::assert_result_schema(&o.json);
}

#[test]
fn sigterm_to_the_task_ends_a_daemon_the_run_started_whose_parent_exited() {
    let (node, daemon) = Node::daemonizing();
    let start = Instant::now();
    let child = node.spawn(node.command(), "{}");
    // Stopped only once its intermediate parent is gone: before, the run's
    // tree would still lead to it without the task as subreaper.
    while !daemon.orphaned.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(running(daemon.pid()), "the daemon runs before the stop");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let o = finish(child, start);
    assert_eq!(o.json["_error"]["details"]["signal"], "TERM", "{}", o.json);
    assert_daemon_stopped(&daemon, &o.json["_error"]["details"]["stopped"], o.output());
}

#[test]
fn sigterm_to_the_task_is_forwarded_and_still_yields_json() {
    let node = Node::new("");
    let marker = node.path("got-term");
    node.set_fake(&format!(
        "trap 'touch {m}; exit 143' TERM; echo started; sleep 30 & wait",
        m = marker.display()
    ));
    let start = Instant::now();
    let child = node.spawn(node.command(), "{}");
    // Wait until puppet is running, then stop the task as an orchestrator would.
    while node.argv().is_none() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let o = finish(child, start);
    assert_eq!(o.kind(), "psick/timeout");
    assert_eq!(o.json["_error"]["details"]["signal"], "TERM");
    // The fake exits 143 on TERM (real puppet exits 0): neither is reported.
    assert!(o.json["exitcode"].is_null(), "{}", o.json);
    assert!(o.json["_error"]["details"]["exitcode"].is_null());
    assert!(o.msg().contains("stopped by SIGTERM"), "{}", o.msg());
    assert!(!o.msg().contains("raise `timeout`"), "{}", o.msg());
    assert!(marker.exists(), "puppet's group got SIGTERM");
    assert!(o.elapsed < Duration::from_secs(8));
}

/// Kills a process group when dropped, so a failing test leaves no fake
/// puppet behind.
struct GroupGuard(rustix::process::Pid);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process_group(self.0, rustix::process::Signal::KILL);
    }
}

/// Whether `pid` is a live process; a zombie waiting for whoever adopted it
/// counts as gone.
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may hold spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// Polls `check` every 20 ms until it holds or `limit` passes.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_to_the_task_still_stops_puppet() {
    // Puppet is in its own process group, so nothing aimed at the task's group
    // reaches it and a SIGKILLed task cannot forward anything: only the
    // parent-death signal stops it.
    let node = Node::new("");
    let pidfile = node.path("puppet.pid");
    let marker = node.path("got-term");
    // The trap is set before the PID file appears, so the kill below always
    // finds it in place.
    node.set_fake(&format!(
        r#"on_term() {{ touch '{m}'; kill "$sleeper"; exit 143; }}
trap on_term TERM
sleep 120 & sleeper=$!
echo $$ > '{p}.tmp' && mv '{p}.tmp' '{p}'
wait"#,
        m = marker.display(),
        p = pidfile.display()
    ));
    let mut child = node.spawn(node.command(), r#"{"timeout": 600}"#);
    let mut puppet = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            puppet = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok());
            puppet.is_some()
        }),
        "the fake puppet never started"
    );
    let puppet = puppet.unwrap();
    let _guard = GroupGuard(rustix::process::Pid::from_raw(puppet).unwrap());
    assert!(alive(puppet));

    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );

    assert!(
        eventually(Duration::from_secs(10), || marker.exists()
            && !alive(puppet)),
        "puppet (PID {puppet}) outlived the SIGKILLed task: got TERM {}, alive {}",
        marker.exists(),
        alive(puppet)
    );
}

#[test]
fn sigterm_while_waiting_for_a_lock_still_yields_json() {
    let node = Node::new("exit 0");
    let holder = crate::harness::FakeHolder::start(node.dir.path(), "60");
    std::fs::write(node.catalog_lock(), holder.pid().to_string()).unwrap();
    let start = Instant::now();
    let child = node.spawn(node.command(), r#"{"wait_for_lock": 60}"#);
    std::thread::sleep(Duration::from_millis(500));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let o = finish(child, start);
    assert_eq!(o.kind(), "psick/timeout");
    assert_eq!(o.json["_error"]["details"]["signal"], "INT");
    assert_eq!(node.argv(), None);
}

/// Peak RSS of a running process, in KiB.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Asserts the peak RSS of a run that read a large output. Natively the bound is the task's own
/// figure: under 24 MiB. Under an emulator (qemu-user) the process is the emulator, whose
/// translation cache and heap count in its RSS, so no native figure is claimed there: the bound
/// is on the growth over a trivial run's peak under the same emulator, which still fails a task
/// that holds the output in memory (20 or 50 MiB here).
fn assert_bounded_memory(peak_kib: u64) {
    if emulated() {
        let (o, trivial_kib) = run_sampled(&Node::new("exit 0"));
        assert_eq!(o.code, 0, "{}", o.json);
        assert!(
            peak_kib.saturating_sub(trivial_kib) < 16 * 1024,
            "peak RSS {peak_kib} KiB under emulation, {trivial_kib} KiB for a trivial run"
        );
    } else {
        assert!(peak_kib < 24 * 1024, "peak RSS {peak_kib} KiB");
    }
}

/// Runs the task with `{}` and returns its outcome and peak RSS in KiB.
fn run_sampled(node: &Node) -> (crate::harness::Outcome, u64) {
    let start = Instant::now();
    let child = node.spawn(node.command(), "{}");
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while let Some(kib) = vm_hwm(pid) {
            peak = peak.max(kib);
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    });
    let o = finish(child, start);
    (o, sampler.join().unwrap())
}

#[test]
fn an_unterminated_escape_string_swallows_neither_memory_nor_output() {
    // ESC ] opens an OSC string that nothing closes, then 20 MiB without a
    // newline: a naive stripper buffers all of it and drops what follows.
    let node = Node::new(
        "printf 'START\\033]0;'
         yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | tr -d '\\n' | head -c 20971520
         printf '\\nEND\\n'
exit 0",
    );
    let (o, peak_kib) = run_sampled(&node);
    assert_eq!(o.code, 0, "{}", o.json);
    let out = o.output();
    assert!(out.starts_with("START"), "{}", &out[..out.len().min(100)]);
    assert!(
        out.ends_with("\nEND\n"),
        "{}",
        &out[out.len().saturating_sub(100)..]
    );
    assert_bounded_memory(peak_kib);
}

#[test]
fn fifty_mib_of_output_is_capped_with_head_and_tail_in_bounded_memory() {
    let node = Node::new(
        "echo 'FIRST LINE'\n\
         yes 'Notice: a line of puppet output that repeats' | head -c 52428800\n\
         echo 'Error: LAST LINE' >&2\nexit 2",
    );
    let (o, peak_kib) = run_sampled(&node);
    assert_eq!(o.code, 0);
    let out = o.output();
    assert!(out.len() <= 1024 * 1024, "{}", out.len());
    assert!(out.len() > 1000 * 1024, "{}", out.len());
    assert!(out.starts_with("FIRST LINE\nNotice: a line"));
    assert!(
        out.ends_with("Error: LAST LINE\n"),
        "{}",
        &out[out.len() - 100..]
    );
    assert!(out.contains("[psick: output truncated: "));
    // A buffer of the whole output alone would be 50 MiB.
    assert_bounded_memory(peak_kib);
}
